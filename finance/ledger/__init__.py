"""The double-entry ledger (总账): posting, reversal, period close and the invariant check."""

from finance.ledger.chart import ACCOUNTS, PAYMENT_ACCOUNTS, method_account
from finance.ledger.check import CheckResult, run_check
from finance.ledger.periods import close_period, closed_months, open_months
from finance.ledger.posting import Line, accounts_by_code, ensure_open, entry_lines, month_of, post, reverse

__all__ = ["ACCOUNTS", "PAYMENT_ACCOUNTS", "CheckResult", "Line", "accounts_by_code", "close_period", "closed_months",
           "ensure_open", "entry_lines", "method_account", "month_of", "open_months", "post", "reverse", "run_check"]
