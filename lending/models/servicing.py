"""Servicing (贷后): repayments with their allocations, collection actions and promises to pay.

- ``Repayment`` — APPEND-ONLY. A repayment (还款) booked by finance, or the reversal (冲正) of one.
  ``external_reference`` (the bank slip / channel serial) is unique: the same slip cannot be booked twice.
  A reversal points at the repayment it undoes through ``reversal_of_id``, unique: once.
- ``RepaymentAllocation`` — APPEND-ONLY. How a repayment was written off (冲销): per installment and
  component (penalty, fee, interest, principal), positive; a reversal writes the same rows negated.
  An installment's ``paid_*`` columns are the sums of its allocations.
- ``CollectionAction`` — APPEND-ONLY log of collections work (催收记录): calls, messages, promises, notes,
  assignments.
- ``CollectionPromise`` — a promise to pay (承诺还款) with date and amount; its status moves once
  from ``open`` to ``kept`` or ``broken`` (conditional UPDATE).

The ORM refuses UPDATE and DELETE of the append-only tables; the migration adds database triggers too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "ACTION_KIND_LABELS", "COMPONENT_LABELS", "PROMISE_STATUS_LABELS", "REPAYMENT_CHANNEL_LABELS",
    "CollectionAction", "CollectionPromise", "Repayment", "RepaymentAllocation",
]

REPAYMENT_CHANNEL_LABELS = {
    "bank_transfer": "银行转账", "withholding": "代扣", "wechat": "微信支付", "alipay": "支付宝", "cash": "现金",
    "other": "其他",
}
COMPONENT_LABELS = {"penalty": "罚息", "fee": "费用", "interest": "利息", "principal": "本金"}
ACTION_KIND_LABELS = {"call": "电话", "message": "短信/消息", "promise": "承诺还款", "note": "备注", "assign": "分配"}
PROMISE_STATUS_LABELS = {"open": "待兑现", "kept": "已兑现", "broken": "已违约"}


class Repayment(Base):
    __tablename__ = "lending_repayment"
    __table_args__ = (
        CheckConstraint("kind IN ('repayment', 'reversal')", name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(kind = 'reversal') = (reversal_of_id IS NOT NULL)", name="reversal_iff_target"),
        CheckConstraint("kind = 'reversal' OR external_reference IS NOT NULL", name="repayment_has_reference"),
        Index("ix_lending_repayment_loan_date", "loan_id", "repayment_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    kind: Mapped[str] = mapped_column(String(12), default="repayment")  # repayment | reversal
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


class CollectionAction(Base):
    __tablename__ = "lending_collection_action"
    __table_args__ = (
        CheckConstraint("kind IN ('call', 'message', 'promise', 'note', 'assign')", name="kind_known"),
        Index("ix_lending_collection_action_loan_at", "loan_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"))
    kind: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str | None] = mapped_column(String(40))  # e.g. 接通 / 未接 / 关机
    note: Mapped[str | None] = mapped_column(String(500))
    bucket: Mapped[str] = mapped_column(String(4))  # the loan's bucket when the action was logged
    overdue_days: Mapped[int]
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    at: Mapped[datetime]


class CollectionPromise(Base):
    __tablename__ = "lending_collection_promise"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'kept', 'broken')", name="status_known"),
        CheckConstraint("promised_amount > 0", name="amount_positive"),
        Index("ix_lending_collection_promise_status_date", "status", "promised_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"), index=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("lending_collection_action.id"), unique=True)
    made_date: Mapped[date]  # repayments from this date on count towards the promise
    promised_date: Mapped[date]
    promised_amount: Mapped[int]  # fen
    status: Mapped[str] = mapped_column(String(8), default="open")
    resolved_at: Mapped[datetime | None]
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


APPEND_ONLY_TABLES = ("lending_repayment", "lending_repayment_allocation", "lending_collection_action")


@event.listens_for(Repayment, "before_update")
@event.listens_for(Repayment, "before_delete")
@event.listens_for(RepaymentAllocation, "before_update")
@event.listens_for(RepaymentAllocation, "before_delete")
@event.listens_for(CollectionAction, "before_update")
@event.listens_for(CollectionAction, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: Any) -> None:
    raise RuntimeError(f"{target.__tablename__} is append-only: a mistaken repayment is reversed, never edited")
