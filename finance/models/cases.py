"""The finance center's business records: agreements, deposits, customer loans, settlements, reimbursements.

Every amount is integer fen (``*_amount``), every rate a Decimal (``*_rate``). State moves by
conditional UPDATE (``WHERE status = …``) so that of two clerks acting at once exactly one wins.
The money itself is in the ledger (:mod:`finance.models.ledger`); these rows point at their entries.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "AGREEMENT_STATUS_LABELS", "DEPOSIT_STATUS_LABELS", "DISCOUNT_KIND_LABELS", "FUNDER_KIND_LABELS",
    "METHOD_LABELS", "REFUND_STATUS_LABELS", "REIMBURSEMENT_STATUS_LABELS", "SETTLEMENT_STATUS_LABELS",
    "Agreement", "Amendment", "CustomerLoan", "Deposit", "DepositRefund", "FeeType", "Reimbursement",
    "Settlement", "SettlementFee", "SettlementPayment", "SettlementRebate",
]

RATE = Numeric(12, 8)

# Payment methods; each is also the code of its cash/bank account in the ledger.
METHOD_LABELS = {"cash": "现金", "alipay": "支付宝", "wechat": "微信", "bank": "银行转账", "withholding": "代扣"}
AGREEMENT_STATUS_LABELS = {
    "draft": "待合同确认", "confirmed": "待主管审批", "approved": "待收定金", "working": "做单中",
    "disbursed": "待结算", "settled": "已结算", "cancelled": "已取消",
}
DEPOSIT_STATUS_LABELS = {"received": "待确认", "confirmed": "已确认", "voided": "已作废"}
REFUND_STATUS_LABELS = {"requested": "待财务确认", "refunding": "原路退款中", "confirmed": "已退款", "rejected": "已驳回",
                        "failed": "退款失败"}
SETTLEMENT_STATUS_LABELS = {"pending": "待结算", "charged": "待确认凭证", "settled": "已结算"}
DISCOUNT_KIND_LABELS = {"none": "无优惠", "percent": "按比例", "fixed": "固定金额"}
# 资方类型 for a funder recorded by hand (an outside funder).
FUNDER_KIND_LABELS = {"bank": "银行", "consumer_finance": "消金", "guarantee": "信保", "microloan": "小贷",
                      "other": "其他"}
REIMBURSEMENT_STATUS_LABELS = {"submitted": "待财务确认", "confirmed": "已确认待付", "paid": "已支付",
                               "voided": "已作废"}

_METHODS_SQL = "('cash', 'alipay', 'wechat', 'bank', 'withholding')"


class Agreement(Base):
    """居间服务协议 (签单): the fee terms agreed with a customer; locked once finance confirms them."""

    __tablename__ = "finance_agreement"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'confirmed', 'approved', 'working', 'disbursed', 'settled', "
                        "'cancelled')", name="status_known"),
        CheckConstraint("loan_amount > 0 AND deposit_amount >= 0 AND service_fee_fixed_amount >= 0 "
                        "AND other_fees_amount >= 0 AND funder_fee_amount >= 0", name="amounts_valid"),
        CheckConstraint("service_fee_rate >= 0 AND service_fee_rate < 1", name="fee_rate_valid"),
        Index("ix_finance_agreement_status", "status", "id"),
        Index("ix_finance_agreement_signed", "signed_date", "sales_staff_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # 协议编号
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("lending_application.id"), unique=True)
    sales_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)  # 营销专员
    case_officer_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)  # 做单专员
    signed_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    version: Mapped[int] = mapped_column(default=1)  # +1 per confirmed amendment
    # The loan sought and the funder's terms (for the all-in annualised cost).
    loan_amount: Mapped[int]
    term_months: Mapped[int]
    funder_annual_rate: Mapped[Decimal] = mapped_column(RATE)
    repayment_method: Mapped[str] = mapped_column(String(20))
    funder_fee_amount: Mapped[int] = mapped_column(default=0)  # the funder's own fees, upfront
    # This facilitator's terms.
    service_fee_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    service_fee_fixed_amount: Mapped[int] = mapped_column(default=0)
    deposit_amount: Mapped[int] = mapped_column(default=0)
    other_fees: Mapped[list[Any] | None] = mapped_column(JSON)  # [{"name": 评估费, "amount": fen}]
    other_fees_amount: Mapped[int] = mapped_column(default=0)
    apr_rate: Mapped[Decimal] = mapped_column(RATE)  # 综合年化成本 (all-in, IRR) as last checked
    note: Mapped[str | None] = mapped_column(String(300))
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    confirmed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    approved_at: Mapped[datetime | None]
    approved_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    cancelled_at: Mapped[datetime | None]


class Amendment(Base):
    """A change to a confirmed agreement's amounts: proposed, then confirmed (applied) or rejected by finance."""

    __tablename__ = "finance_amendment"
    __table_args__ = (CheckConstraint("status IN ('pending', 'confirmed', 'rejected')", name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("finance_agreement.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    before: Mapped[dict[str, Any]]
    after: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(String(300))
    proposed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    proposed_at: Mapped[datetime]
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]


class Deposit(Base):
    """定金: money received from the customer, held (a liability) until applied at settlement or refunded."""

    __tablename__ = "finance_deposit"
    __table_args__ = (
        CheckConstraint("status IN ('received', 'confirmed', 'voided')", name="status_known"),
        CheckConstraint(f"method IN {_METHODS_SQL}", name="method_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refund_within_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("finance_agreement.id"), index=True)
    amount: Mapped[int]
    refunded_amount: Mapped[int] = mapped_column(default=0)  # confirmed refunds
    method: Mapped[str] = mapped_column(String(12))
    received_date: Mapped[date]
    reference: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="received")
    entered_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    confirmed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    confirmed_at: Mapped[datetime | None]
    journal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("finance_journal_entry.id"))
    # paid by the customer through WeChat Pay (purpose finance.fee): the payment it came from, once
    payment_order_id: Mapped[int | None] = mapped_column(ForeignKey("payment_order.id"), unique=True)
    voided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(200))


class DepositRefund(Base):
    """退定金: requested by the case officer, confirmed (paid back) or rejected by finance. A deposit paid
    through WeChat Pay is refunded the way it came (原路退回): ``refunding`` until the provider's result,
    then ``confirmed``, or ``failed`` (the money did not go back; it is still held)."""

    __tablename__ = "finance_deposit_refund"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'refunding', 'confirmed', 'rejected', 'failed')",
                        name="status_known"),
        CheckConstraint(f"method IN {_METHODS_SQL}", name="method_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deposit_id: Mapped[int] = mapped_column(ForeignKey("finance_deposit.id"), index=True)
    amount: Mapped[int]
    method: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="requested")
    requested_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    requested_at: Mapped[datetime]
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    journal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("finance_journal_entry.id"))
    out_refund_no: Mapped[str | None] = mapped_column(String(64), unique=True)  # 原路退回 through payments


class CustomerLoan(Base):
    """借款: a short-term loan from the facilitator to the customer, repaid at settlement."""

    __tablename__ = "finance_customer_loan"
    __table_args__ = (
        CheckConstraint("status IN ('outstanding', 'repaid')", name="status_known"),
        CheckConstraint(f"method IN {_METHODS_SQL}", name="method_known"),
        CheckConstraint("principal_amount > 0 AND interest_amount >= 0 AND cost_amount >= 0", name="amounts_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("finance_agreement.id"), index=True)
    principal_amount: Mapped[int]
    interest_amount: Mapped[int] = mapped_column(default=0)
    cost_amount: Mapped[int] = mapped_column(default=0)
    loan_date: Mapped[date]
    method: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default="outstanding")
    note: Mapped[str | None] = mapped_column(String(200))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    journal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("finance_journal_entry.id"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("finance_settlement.id"))


class FeeType(Base):
    """A configurable added fee (下户费, 渠道管理费, 评估费 …)."""

    __tablename__ = "finance_fee_type"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    active: Mapped[bool] = mapped_column(default=True)


class Settlement(Base):
    """结算: one per agreement, after the loan is disbursed; charged by finance, confirmed, closed (结单)."""

    __tablename__ = "finance_settlement"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'charged', 'settled')", name="status_known"),
        CheckConstraint("source IN ('lending', 'manual')", name="source_known"),
        CheckConstraint("discount_kind IN ('none', 'percent', 'fixed')", name="discount_kind_known"),
        CheckConstraint("disbursed_amount > 0", name="disbursed_positive"),
        CheckConstraint("discount_amount >= 0 AND discount_amount <= service_fee_amount", name="discount_within_fee"),
        CheckConstraint("total_due_amount >= 0", name="total_non_negative"),
        CheckConstraint("fee_refunded_amount >= 0", name="fee_refunded_non_negative"),
        Index("ix_finance_settlement_status", "status", "id"),
        Index("ix_finance_settlement_disbursed", "disbursed_date"),
        Index("ix_finance_settlement_settled", "settled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("finance_agreement.id"), unique=True)
    source: Mapped[str] = mapped_column(String(8))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("lending_loan.id"), unique=True)
    funder_name: Mapped[str] = mapped_column(String(80))
    funder_type: Mapped[str] = mapped_column(String(20))
    disbursed_amount: Mapped[int]
    disbursed_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(12), default="pending")
    revision: Mapped[int] = mapped_column(default=0)  # +1 per charge: confirmations name the revision they saw
    service_fee_amount: Mapped[int] = mapped_column(default=0)
    discount_kind: Mapped[str] = mapped_column(String(8), default="none")
    discount_rate: Mapped[Decimal | None] = mapped_column(RATE)
    discount_amount: Mapped[int] = mapped_column(default=0)
    installment_fee_amount: Mapped[int] = mapped_column(default=0)
    extra_fees_amount: Mapped[int] = mapped_column(default=0)
    loan_repaid_amount: Mapped[int] = mapped_column(default=0)  # the customer's 借款: principal + interest + cost
    deposit_applied_amount: Mapped[int] = mapped_column(default=0)
    total_due_amount: Mapped[int] = mapped_column(default=0)
    rebate_amount: Mapped[int] = mapped_column(default=0)
    fee_refunded_amount: Mapped[int] = mapped_column(default=0)  # fees refunded after 结单
    charged_at: Mapped[datetime | None]
    charged_agreement_version: Mapped[int | None]  # the agreement's version the charge was computed from
    charged_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    officer_confirmed_at: Mapped[datetime | None]  # 做单专员
    officer_confirmed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    supervisor_confirmed_at: Mapped[datetime | None]  # 做单主管
    supervisor_confirmed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    sales_confirmed_at: Mapped[datetime | None]  # 营销专员
    sales_confirmed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    settled_at: Mapped[datetime | None]
    settled_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    journal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("finance_journal_entry.id"))
    created_at: Mapped[datetime]


class SettlementFee(Base):
    """An added fee on a settlement (下户费 …), by configured fee type."""

    __tablename__ = "finance_settlement_fee"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("finance_settlement.id"), index=True)
    fee_type_id: Mapped[int] = mapped_column(ForeignKey("finance_fee_type.id"))
    amount: Mapped[int]


class SettlementPayment(Base):
    """How the customer paid the settlement: one row per method (split payment)."""

    __tablename__ = "finance_settlement_payment"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"method IN {_METHODS_SQL}", name="method_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("finance_settlement.id"), index=True)
    method: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int]
    # paid by the customer through WeChat Pay before 结单 (purpose finance.fee): the payment, once
    payment_order_id: Mapped[int | None] = mapped_column(ForeignKey("payment_order.id"), unique=True)


class SettlementRebate(Base):
    """返点: part of the fee owed to a partner (channel, referrer), payable once the case is settled."""

    __tablename__ = "finance_settlement_rebate"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("finance_settlement.id"), index=True)
    partner: Mapped[str] = mapped_column(String(80))
    amount: Mapped[int]


class Reimbursement(Base):
    """做单报销 (per case) or a marketing cost (per customer): submitted, confirmed by finance, paid; or voided."""

    __tablename__ = "finance_reimbursement"
    __table_args__ = (
        CheckConstraint("status IN ('submitted', 'confirmed', 'paid', 'voided')", name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("kind IN ('case', 'marketing')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="case")
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("finance_agreement.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int]
    spent_date: Mapped[date]
    approved_by_manager_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    note: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="submitted")
    entered_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime]
    confirmed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    confirmed_at: Mapped[datetime | None]
    paid_method: Mapped[str | None] = mapped_column(String(12))
    paid_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    paid_at: Mapped[datetime | None]
    journal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("finance_journal_entry.id"))
    voided_at: Mapped[datetime | None]
    resubmitted_from_id: Mapped[int | None] = mapped_column(ForeignKey("finance_reimbursement.id"))
