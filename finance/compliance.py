"""综合年化成本 of an agreement: the funder's interest and fees plus this facilitator's charges, IRR method.

The borrower receives the loan less every upfront charge (the funder's fee, our service fee and the
other agreed fees, all paid out of the money received) and repays the funder's schedule; the
annualised IRR of those flows (``lending.schedule.apr``) is the all-in cost. Above the configured cap
(``SCRM_APR_CAP_RATE``, 24% by default) an agreement is refused with the figure shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from core import clock
from core.errors import ValidationFailed
from finance.exceptions import AprAboveCap
from lending.schedule.apr import annualised_cost, percent
from lending.schedule.cap import apr_cap
from lending.schedule.engine import build_schedule
from lending.schedule.terms import FeeTiming, LoanTerms


@dataclass(frozen=True)
class Terms:
    loan_amount: int
    term_months: int
    funder_annual_rate: Decimal
    repayment_method: str
    funder_fee_amount: int
    service_fee_rate: Decimal
    service_fee_fixed_amount: int
    other_fees_amount: int

    @property
    def service_fee_amount(self) -> int:
        return service_fee(self.loan_amount, self.service_fee_rate, self.service_fee_fixed_amount)

    @property
    def charges_amount(self) -> int:
        return self.funder_fee_amount + self.service_fee_amount + self.other_fees_amount


def service_fee(base_amount: int, rate: Decimal, fixed_amount: int) -> int:
    """服务费: base × rate (rounded half up, once, to the fen) + the fixed amount."""
    return int((Decimal(base_amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)) + fixed_amount


def all_in_cost(terms: Terms, start: date | None = None) -> Decimal:
    """The all-in annualised cost as a fraction (0.1834 is 18.34%)."""
    if terms.charges_amount >= terms.loan_amount:
        raise ValidationFailed("各项费用合计不能达到或超过贷款金额", field="service_fee_fixed_amount")
    loan = LoanTerms(principal=terms.loan_amount, annual_rate=terms.funder_annual_rate, periods=terms.term_months,
                     method=terms.repayment_method, start_date=start or clock.today(),
                     service_fee_amount=terms.charges_amount, service_fee_timing=FeeTiming.UPFRONT)
    return annualised_cost(build_schedule(loan))


@dataclass(frozen=True)
class Quote:
    """试算: the all-in cost of terms and the cap, before anything is saved."""

    apr: Decimal
    cap: Decimal
    charges_amount: int
    service_fee_amount: int

    @property
    def within_cap(self) -> bool:
        return self.apr <= self.cap

    @property
    def apr_text(self) -> str:
        return shown_percent(self.apr, self.cap)

    @property
    def cap_text(self) -> str:
        return percent(self.cap)


def shown_percent(cost: Decimal, cap: Decimal) -> str:
    """The cost in percent; with four decimals when two would read as the cap itself."""
    return percent(cost, 4) if percent(cost) == percent(cap) else percent(cost)


def quote(terms: Terms, start: date | None = None) -> Quote:
    return Quote(apr=all_in_cost(terms, start), cap=apr_cap(), charges_amount=terms.charges_amount,
                 service_fee_amount=terms.service_fee_amount)


def check_quote(quoted: Quote, *, refused: str = "不能签约", field: str = "service_fee_rate") -> Quote:
    """The quote as it is; refused with the figure and the cap when above the cap."""
    if not quoted.within_cap:
        raise AprAboveCap(f"综合年化成本 {quoted.apr_text}%（资方利息与费用 + 本公司服务费及其他费用，IRR 法）"
                          f"超过上限 {quoted.cap_text}%，{refused}", field=field, apr=str(quoted.apr),
                          cap=str(quoted.cap))
    return quoted


def check(terms: Terms, start: date | None = None, *, refused: str = "不能签约",
          field: str = "service_fee_rate") -> Decimal:
    """The all-in cost; refused with the figure and the cap when above the cap."""
    return check_quote(quote(terms, start), refused=refused, field=field).apr
