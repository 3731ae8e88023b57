"""The chart of accounts (科目表), seeded by the migration. Payment methods map to their cash/bank accounts."""

from __future__ import annotations

# code, number, name, kind
ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("cash", "1001", "库存现金", "asset"),
    ("bank", "1002.01", "银行存款", "asset"),
    ("alipay", "1002.02", "支付宝账户", "asset"),
    ("wechat", "1002.03", "微信账户", "asset"),
    ("withholding", "1002.04", "代扣账户", "asset"),
    ("customer_loans", "1221", "客户借款", "asset"),
    ("deposits_held", "2241.01", "客户定金（代收）", "liability"),
    ("rebates_payable", "2241.02", "应付返点", "liability"),
    ("reimbursements_payable", "2241.03", "应付报销款", "liability"),
    ("fee_revenue", "6001", "服务费收入", "revenue"),
    ("loan_income", "6051", "借款利息及费用收入", "revenue"),
    ("rebate_expense", "6601.01", "返点支出", "expense"),
    ("reimbursement_expense", "6601.02", "做单报销费用", "expense"),
    ("marketing_expense", "6601.03", "营销费用", "expense"),
)

PAYMENT_ACCOUNTS = ("cash", "bank", "alipay", "wechat", "withholding")


def method_account(method: str) -> str:
    """The cash/bank account a payment method moves money through (method codes are account codes)."""
    if method not in PAYMENT_ACCOUNTS:
        raise ValueError(f"unknown payment method {method!r}")
    return method
