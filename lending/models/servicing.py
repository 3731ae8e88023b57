"""Servicing (贷后): repayments with their allocations, schedule versions, waivers, the close of business, reminders.
(The collections tables, actions and promises to pay included, live in ``postloan.models``.)

- ``Repayment`` — APPEND-ONLY. A repayment (还款) booked by finance, or the reversal (冲正) of one.
  ``external_reference`` (the bank slip / channel serial) is unique: the same slip cannot be booked twice.
  A reversal points at the repayment it undoes through ``reversal_of_id``, unique: once.
- ``RepaymentAllocation`` — APPEND-ONLY. How a repayment was written off (冲销): per installment and
  component (penalty, fee, interest, principal), positive; a reversal writes the same rows negated. A
  backdated correction (``servicing.corrections``) appends to each later entry whose split changed the rows of the
  difference, marked with ``replay_id`` (the reversal that caused it); an entry's net rows are its split.
  An installment's ``paid_*`` columns are the sums of its standing allocations.
- ``RepaymentRefund`` — money of a reversed repayment given back (退款): through ``payments`` (a refund of the
  WeChat Pay / withholding order the money came by) or recorded as paid out by finance (bank transfer, cash),
  once per repayment.
- ``ScheduleVersion`` — APPEND-ONLY. Every version of a loan's schedule (还款计划版本): the original, and one
  per change (prepayment, payoff, extension, restructure), with its rows. ``LoanInstallment`` holds the current
  version's rows with what is paid on them; a change rewrites the unpaid rows there and appends a version here,
  so no version is ever lost.
- ``Waiver`` — a waiver (减免) of penalty, interest or fee, maker-checker: requested, then approved (posted as
  its own ``Repayment`` of kind ``waiver``) or rejected, once (conditional UPDATE on the status).
- ``Restructure`` — an extension (展期: the not-yet-due principal over more periods) or restructure (重组: over a
  chosen number of periods), maker-checker: requested with the new terms' schedule checked against the cost
  cap, then approved once (conditional UPDATE) — the rows rewritten and a schedule version appended — or
  rejected.
- ``WaiverLimit`` — per role: the most one approval of that role may waive (fen); no row, no authority.
- ``CobStep`` — the nightly close of business (日终批处理): one row per business date and step done, written in
  the same transaction as the step's work, so a killed run resumes at the first step not recorded.
- ``InterestAccrual`` — the interest accrued (计提) on a business date per product version, by the close of
  business: each active loan's current period interest spread evenly over the period's days.
- ``Reminder`` — one reminder of one bill (还款提醒): ``offset_days`` from its due date (-3 = T-3, 1 = T+1) to one
  audience (``borrower`` by the mini-program subscription message, ``staff`` — the salesperson, or the collector
  once assigned — in WeCom). Unique per (bill, offset, audience): created by the close of business, never twice;
  ``pending`` until the channel reports ``sent`` (or ``failed``); ``skipped`` when the borrower opted out.
- ``ReminderOptOut`` — a borrower who asked for no repayment reminders (退订).

The ORM refuses UPDATE and DELETE of the append-only tables; the migration adds database triggers too.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "COMPONENT_LABELS", "REPAYMENT_CHANNEL_LABELS", "REPAYMENT_PURPOSE_LABELS", "Repayment", "RepaymentAllocation",
    "CobStep", "InterestAccrual", "REFUND_KIND_LABELS", "REFUND_STATUS_LABELS", "RESTRUCTURE_KIND_LABELS", "Reminder", "RepaymentRefund",
    "Restructure", "ReminderOptOut", "SCHEDULE_REASON_LABELS", "ScheduleVersion", "WAIVER_COMPONENTS",
    "WAIVER_STATUS_LABELS", "Waiver", "WaiverLimit",
]

REPAYMENT_CHANNEL_LABELS = {
    "bank_transfer": "银行转账", "withholding": "代扣", "wechat": "微信支付", "alipay": "支付宝", "cash": "现金",
    "other": "其他",
}
COMPONENT_LABELS = {"penalty": "罚息", "fee": "费用", "interest": "利息", "principal": "本金"}
REPAYMENT_PURPOSE_LABELS = {"installment": "还款", "prepayment": "部分提前还款", "payoff": "提前结清", "waiver": "减免",
                            "capitalisation": "逾期资本化"}
SCHEDULE_REASON_LABELS = {"original": "原始计划", "prepayment": "部分提前还款", "payoff": "提前结清",
                          "extension": "展期", "restructure": "重组"}
WAIVER_COMPONENTS = ("penalty", "interest", "fee")
WAIVER_STATUS_LABELS = {"requested": "待审批", "approved": "已批准", "rejected": "已拒绝"}
REFUND_STATUS_LABELS = {"submitted": "退款处理中", "succeeded": "已退款", "failed": "退款失败"}
REFUND_KIND_LABELS = {"reversed": "冲正退款", "overpayment": "溢缴款退款"}
RESTRUCTURE_KIND_LABELS = {"extension": "展期", "restructure": "重组"}


class Repayment(Base):
    __tablename__ = "lending_repayment"
    __table_args__ = (
        CheckConstraint("kind IN ('repayment', 'reversal', 'waiver', 'capitalisation')", name="kind_known"),
        CheckConstraint("purpose IN ('installment', 'prepayment', 'payoff', 'waiver', 'capitalisation')",
                        name="purpose_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(kind = 'reversal') = (reversal_of_id IS NOT NULL)", name="reversal_iff_target"),
        CheckConstraint("kind = 'reversal' OR external_reference IS NOT NULL", name="repayment_has_reference"),
        Index("ix_lending_repayment_loan_date", "loan_id", "repayment_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    # repayment | reversal | waiver | capitalisation (a restructure's overdue amounts moved into the new principal)
    kind: Mapped[str] = mapped_column(String(16), default="repayment")
    # installment (还款) | prepayment (部分提前还款) | payoff (提前结清) | waiver (减免) | capitalisation (逾期资本化);
    # a reversal repeats its target's
    purpose: Mapped[str] = mapped_column(String(16), default="installment", server_default="installment")
    amount: Mapped[int]  # fen, always positive; a reversal undoes its target's amount
    repayment_date: Mapped[date]  # value date (Asia/Shanghai business date)
    channel: Mapped[str] = mapped_column(String(20))
    external_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    reversal_of_id: Mapped[int | None] = mapped_column(ForeignKey("lending_repayment.id"), unique=True)
    note: Mapped[str | None] = mapped_column(String(300))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class RepaymentAllocation(Base):
    __tablename__ = "lending_repayment_allocation"
    __table_args__ = (
        CheckConstraint("component IN ('penalty', 'fee', 'interest', 'principal')", name="component_known"),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repayment_id: Mapped[int] = mapped_column(ForeignKey("lending_repayment.id"), index=True)
    installment_id: Mapped[int] = mapped_column(ForeignKey("lending_loan_installment.id"), index=True)
    component: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int]  # fen; negative on a reversal
    # the reversal whose backdated correction wrote this difference row (None: the entry's own split)
    replay_id: Mapped[int | None] = mapped_column(ForeignKey("lending_repayment.id"))


class RepaymentRefund(Base):
    __tablename__ = "lending_repayment_refund"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("kind IN ('reversed', 'overpayment')", name="kind_known"),
        # a reversed repayment is refunded once: one live refund (submitted or succeeded); a failed one may be retried
        Index("uq_lending_repayment_refund_live_reversal", "repayment_id", unique=True,
              postgresql_where=text("kind = 'reversed' AND status <> 'failed'"),
              sqlite_where=text("kind = 'reversed' AND status <> 'failed'")),
        CheckConstraint("route IN ('payments', 'manual')", name="route_known"),
        CheckConstraint("status IN ('submitted', 'succeeded', 'failed')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"), index=True)
    repayment_id: Mapped[int] = mapped_column(ForeignKey("lending_repayment.id"), index=True)
    # reversed: the whole money of a reversed repayment; overpayment: part or all of its credit (溢缴款)
    kind: Mapped[str] = mapped_column(String(12), default="reversed", server_default="reversed")
    amount: Mapped[int]  # fen
    route: Mapped[str] = mapped_column(String(10))  # payments (the order it came by) | manual (paid out by finance)
    payment_refund_id: Mapped[int | None] = mapped_column(ForeignKey("payment_refund.id"))
    external_reference: Mapped[str] = mapped_column(String(64), unique=True)  # out_refund_no or the outgoing slip
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(300))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class ScheduleVersion(Base):
    __tablename__ = "lending_schedule_version"
    __table_args__ = (
        UniqueConstraint("loan_id", "version"),
        CheckConstraint("reason IN ('original', 'prepayment', 'payoff', 'extension', 'restructure')",
                        name="reason_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    version: Mapped[int]  # 1 = the original, then one more per change
    reason: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[date]  # the business (value) date the version takes effect
    repayment_id: Mapped[int | None] = mapped_column(ForeignKey("lending_repayment.id"))  # what made it, if a payment
    mode: Mapped[str | None] = mapped_column(String(20))  # keep_term | keep_installment (a partial prepayment)
    # [{number, due_date, principal, interest, fee, prepayment}] (fen, ISO dates): every row of this version
    rows: Mapped[list[Any]] = mapped_column(JSON)
    installment_amount: Mapped[int | None]  # 等额本息: the level payment of this version
    principal_step: Mapped[str | None] = mapped_column(String(80))  # 等额本金: exact principal per period, "n/d"
    note: Mapped[str | None] = mapped_column(String(300))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class Waiver(Base):
    __tablename__ = "lending_waiver"
    __table_args__ = (
        CheckConstraint("component IN ('penalty', 'interest', 'fee')", name="component_known"),
        CheckConstraint("status IN ('requested', 'approved', 'rejected')", name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_lending_waiver_status_loan", "status", "loan_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    installment_id: Mapped[int] = mapped_column(ForeignKey("lending_loan_installment.id"))
    component: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int]  # fen
    status: Mapped[str] = mapped_column(String(12), default="requested")
    reason: Mapped[str] = mapped_column(String(300))
    requested_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    requested_at: Mapped[datetime]
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(300))
    repayment_id: Mapped[int | None] = mapped_column(ForeignKey("lending_repayment.id"), unique=True)  # the posting


class Restructure(Base):
    """An extension (展期) or restructure (重组) of a loan's not-yet-due principal, maker-checker."""

    __tablename__ = "lending_restructure"
    __table_args__ = (
        CheckConstraint("kind IN ('extension', 'restructure')", name="kind_known"),
        CheckConstraint("status IN ('requested', 'approved', 'rejected')", name="status_known"),
        CheckConstraint("periods > 0", name="periods_positive"),
        Index("ix_lending_restructure_loan_status", "loan_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    kind: Mapped[str] = mapped_column(String(12))
    first_period: Mapped[int]  # the first period the new terms replace
    periods: Mapped[int]  # how many periods the not-yet-due principal is spread over from first_period on
    balance_amount: Mapped[int]  # fen: the principal the new terms repay
    apr_rate: Mapped[Decimal] = mapped_column(Numeric(12, 8))  # the new terms' comprehensive annualised cost
    status: Mapped[str] = mapped_column(String(12), default="requested")
    reason: Mapped[str] = mapped_column(String(300))
    requested_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    requested_at: Mapped[datetime]
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(300))
    schedule_version_id: Mapped[int | None] = mapped_column(ForeignKey("lending_schedule_version.id"))
    # a restructure's new terms: another annual rate (None: the contract's), the overdue amounts capitalised (fen,
    # 0: none; the figure of the approval day once approved) and the entry that wrote them off
    annual_rate: Mapped[Decimal | None] = mapped_column(Numeric(12, 8))
    capitalised_amount: Mapped[int] = mapped_column(default=0, server_default="0")
    capitalisation_id: Mapped[int | None] = mapped_column(ForeignKey("lending_repayment.id"))


class WaiverLimit(Base):
    """How much one approval by a role may waive (减免审批额度); configured by an administrator."""

    __tablename__ = "lending_waiver_limit"
    __table_args__ = (CheckConstraint("max_amount >= 0", name="max_amount_non_negative"),)

    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    max_amount: Mapped[int]  # fen
    updated_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime]


class CobStep(Base):
    __tablename__ = "lending_cob_step"

    business_date: Mapped[date] = mapped_column(primary_key=True)
    step: Mapped[str] = mapped_column(String(20), primary_key=True)
    rows: Mapped[int]  # rows the step changed
    started_at: Mapped[datetime]
    done_at: Mapped[datetime]


class InterestAccrual(Base):
    """The interest accrued (利息计提) on one business date, per product version: written by the close of business."""

    __tablename__ = "lending_interest_accrual"

    business_date: Mapped[date] = mapped_column(primary_key=True)
    product_version_id: Mapped[int] = mapped_column(ForeignKey("lending_product_version.id"), primary_key=True)
    loans: Mapped[int]  # active loans accruing that day
    accrued_amount: Mapped[int]  # fen: Σ of each loan's day of its current period's interest, rounded once
    created_at: Mapped[datetime]


class Reminder(Base):
    __tablename__ = "lending_reminder"
    __table_args__ = (
        UniqueConstraint("installment_id", "offset_days", "audience"),
        CheckConstraint("audience IN ('borrower', 'staff', 'wecom')", name="audience_known"),
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="status_known"),
        Index("ix_lending_reminder_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installment_id: Mapped[int] = mapped_column(ForeignKey("lending_loan_installment.id", ondelete="CASCADE"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"), index=True)
    offset_days: Mapped[int]  # -3 = three days before the due date (T-3), 1 = the day after (T+1)
    # borrower: the mini-program subscription message; wecom: the borrower's WeCom (external contact);
    # staff: the collector or salesperson in WeCom
    audience: Mapped[str] = mapped_column(String(10))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # the staff audience's recipient
    business_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(300))


class ReminderOptOut(Base):
    __tablename__ = "lending_reminder_opt_out"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    created_at: Mapped[datetime]


APPEND_ONLY_TABLES = ("lending_repayment", "lending_repayment_allocation", "lending_schedule_version")


@event.listens_for(Repayment, "before_update")
@event.listens_for(Repayment, "before_delete")
@event.listens_for(RepaymentAllocation, "before_update")
@event.listens_for(RepaymentAllocation, "before_delete")
@event.listens_for(ScheduleVersion, "before_update")
@event.listens_for(ScheduleVersion, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: Any) -> None:
    raise RuntimeError(f"{target.__tablename__} is append-only: a mistaken repayment is reversed, never edited")
