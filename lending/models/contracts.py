"""Contracts (合同) with their fee snapshot (费息落地), disbursements and the loans they start.

- ``Contract`` — one per application. Drafted when the application reaches the signing node (number and
  parties decided); signing (``draft`` → ``signed`` by a conditional UPDATE) freezes the product version's
  terms, fees and the whole schedule into ``snapshot`` and ``ContractLine`` rows. Neither ever changes
  afterwards, whatever happens to the product (before_update refuses changes of a signed snapshot's lines).
- ``NumberSequence`` — per (prefix, day) counters decided by the database (INSERT … ON CONFLICT DO UPDATE
  … RETURNING), for numbers such as ``HT20261123-000001``.
- ``Disbursement`` — the money out (放款): one per contract (unique), a unique funder reference.
- ``Loan`` / ``LoanInstallment`` — the active loan and its repayment schedule, copied from the contract lines.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "CONTRACT_STATUS_LABELS", "Contract", "ContractLine", "Disbursement", "Loan", "LoanInstallment",
    "NumberSequence",
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


class Loan(Base):
    __tablename__ = "lending_loan"
    __table_args__ = (CheckConstraint("principal_amount > 0", name="principal_positive"),)

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


class LoanInstallment(Base):
    __tablename__ = "lending_loan_installment"
    __table_args__ = (UniqueConstraint("loan_id", "number"),)

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


@event.listens_for(ContractLine, "before_update")
@event.listens_for(ContractLine, "before_delete")
def _refuse_line_change(*_: Any) -> None:
    raise RuntimeError("lending_contract_line is frozen at signing")
