"""Contracts (合同) with their fee snapshot (费息落地), disbursements and the loans they start.

- ``Contract`` — one per application. Drafted when the application reaches the signing node (number and
  parties decided); signing (``draft`` → ``signed`` by a conditional UPDATE) freezes the product version's
  terms, fees and the whole schedule into ``snapshot`` and ``ContractLine`` rows. Neither ever changes
  afterwards, whatever happens to the product (before_update refuses changes of a signed snapshot's lines).
- ``NumberSequence`` — per (prefix, day) counters decided by the database (INSERT … ON CONFLICT DO UPDATE
  … RETURNING), for numbers such as ``HT20261123-000001``.
- ``Disbursement`` — the money out (放款): one per contract (unique), a unique funder reference.
- ``Loan`` / ``LoanInstallment`` — the active loan and its repayment schedule, copied from the contract lines.
  Servicing (``lending.servicing``) keeps the ``paid_*`` columns (the sums of the repayment allocations),
  the penalty interest (罚息), the installment status, the loan's overdue days and bucket (C/M1/M2/M3/M3+)
  and its collections assignee.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "BUCKETS", "BUCKET_LABELS", "CONTRACT_STATUS_LABELS", "INSTALLMENT_STATUS_LABELS", "LOAN_STATUS_LABELS",
    "Contract", "ContractLine", "Disbursement", "Loan", "LoanInstallment", "NumberSequence",
]

CONTRACT_STATUS_LABELS = {"draft": "待签署", "signed": "已签署", "disbursed": "已放款", "cancelled": "已作废"}


class NumberSequence(Base):
    __tablename__ = "lending_number_sequence"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    last_value: Mapped[int]


class Contract(Base):
    __tablename__ = "lending_contract"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'signed', 'disbursed', 'cancelled')", name="status_known"),
        CheckConstraint("principal_amount > 0", name="principal_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("lending_application.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    product_version_id: Mapped[int] = mapped_column(ForeignKey("lending_product_version.id"))
    funder_id: Mapped[int] = mapped_column(ForeignKey("lending_funder.id"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    principal_amount: Mapped[int]
    term_months: Mapped[int]
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(12, 8))
    apr_rate: Mapped[Decimal | None] = mapped_column(Numeric(12, 8))
    # parties, masked: {"customer_name", "customer_id_number_masked", "customer_phone_masked", "funder_name"}
    parties: Mapped[dict[str, Any]]
    snapshot: Mapped[dict[str, Any] | None]  # terms, fees, totals and the schedule, frozen at signing
    start_date: Mapped[date | None]
    maturity_date: Mapped[date | None]
    created_at: Mapped[datetime]
    signed_at: Mapped[datetime | None]
    signed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class ContractLine(Base):
    __tablename__ = "lending_contract_line"
    __table_args__ = (UniqueConstraint("contract_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("lending_contract.id"))
    number: Mapped[int]
    due_date: Mapped[date]
    principal_amount: Mapped[int]
    interest_amount: Mapped[int]
    fee_amount: Mapped[int]
    total_amount: Mapped[int]
    balance_amount: Mapped[int]


class Disbursement(Base):
    __tablename__ = "lending_disbursement"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("lending_contract.id"), unique=True)
    amount: Mapped[int]  # fen = the contract principal
    disbursement_date: Mapped[date]
    funder_reference: Mapped[str] = mapped_column(String(64), unique=True)
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


LOAN_STATUS_LABELS = {"active": "还款中", "closed": "已结清"}
INSTALLMENT_STATUS_LABELS = {"pending": "待还", "paid": "已还清", "overdue": "已逾期"}
BUCKETS = ("C", "M1", "M2", "M3", "M3+")
BUCKET_LABELS = {"C": "C 正常", "M1": "M1（1–30 天）", "M2": "M2（31–60 天）", "M3": "M3（61–90 天）",
                 "M3+": "M3+（90 天以上）"}


class Loan(Base):
    __tablename__ = "lending_loan"
    __table_args__ = (
        CheckConstraint("principal_amount > 0", name="principal_positive"),
        CheckConstraint("status IN ('active', 'closed')", name="status_known"),
        CheckConstraint("bucket IN ('C', 'M1', 'M2', 'M3', 'M3+')", name="bucket_known"),
        CheckConstraint("overdue_days >= 0", name="overdue_days_non_negative"),
        Index("ix_lending_loan_status_bucket", "status", "bucket"),
        {"postgresql_with": {"fillfactor": 85}},  # room for the nightly rewrite (heap-only updates): 0030
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("lending_contract.id"), unique=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("lending_application.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    disbursement_id: Mapped[int] = mapped_column(ForeignKey("lending_disbursement.id"), unique=True)
    principal_amount: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | closed
    start_date: Mapped[date]
    servicing_started_at: Mapped[datetime | None]  # set by the task lending.loan_disbursed
    created_at: Mapped[datetime]
    # servicing (贷后), kept by lending.servicing.state.refresh
    overdue_days: Mapped[int] = mapped_column(default=0)  # from the first unpaid due date, 0 when current
    bucket: Mapped[str] = mapped_column(String(4), default="C")  # C | M1 | M2 | M3 | M3+
    rolled_over_date: Mapped[date | None]  # the business date of the last bill rollover (账单结转)
    closed_at: Mapped[datetime | None]
    collector_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)  # 催收员


class LoanInstallment(Base):
    __tablename__ = "lending_loan_installment"
    __table_args__ = (
        UniqueConstraint("loan_id", "number"),
        CheckConstraint("status IN ('pending', 'paid', 'overdue')", name="status_known"),
        CheckConstraint("paid_principal_amount >= 0 AND paid_principal_amount <= principal_amount",
                        name="paid_principal_in_range"),
        CheckConstraint("paid_interest_amount >= 0 AND paid_interest_amount <= interest_amount",
                        name="paid_interest_in_range"),
        CheckConstraint("paid_fee_amount >= 0 AND paid_fee_amount <= fee_amount", name="paid_fee_in_range"),
        CheckConstraint("paid_penalty_amount >= 0 AND paid_penalty_amount <= penalty_amount",
                        name="paid_penalty_in_range"),
        # the nightly close of business reads the unpaid bills due before the business date
        Index("ix_lending_loan_installment_unpaid_due", "due_date", "loan_id",
              postgresql_where=text("status <> 'paid'"), sqlite_where=text("status <> 'paid'")),
        {"postgresql_with": {"fillfactor": 85}},  # room for the nightly rewrite (heap-only updates): 0030
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    number: Mapped[int]
    due_date: Mapped[date] = mapped_column(index=True)
    principal_amount: Mapped[int]
    interest_amount: Mapped[int]
    fee_amount: Mapped[int]
    paid_principal_amount: Mapped[int] = mapped_column(default=0)
    paid_interest_amount: Mapped[int] = mapped_column(default=0)
    paid_fee_amount: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | paid | overdue
    # 罚息: overdue principal × daily penalty rate × days, recomputed exactly and rounded once (lending.servicing)
    penalty_amount: Mapped[int] = mapped_column(default=0)
    paid_penalty_amount: Mapped[int] = mapped_column(default=0)
    penalty_through_date: Mapped[date | None]  # the business date the penalty is computed up to
    paid_off_date: Mapped[date | None]  # the value date of the repayment that cleared it

    @property
    def due_amount(self) -> int:
        return self.principal_amount + self.interest_amount + self.fee_amount + self.penalty_amount

    @property
    def paid_amount(self) -> int:
        return (self.paid_principal_amount + self.paid_interest_amount + self.paid_fee_amount
                + self.paid_penalty_amount)

    @property
    def outstanding_amount(self) -> int:
        return self.due_amount - self.paid_amount


@event.listens_for(ContractLine, "before_update")
@event.listens_for(ContractLine, "before_delete")
def _refuse_line_change(*_: Any) -> None:
    raise RuntimeError("lending_contract_line is frozen at signing")
