"""Telephony tables: one row per call, the callback inbox, the do-not-call list, batch dial lists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class CallStatus:
    QUEUED = "queued"  # stored, the dial task not run yet
    DIALING = "dialing"  # the provider accepted it; the result follows by callback
    FINISHED = "finished"  # the result arrived (answered or not: see result)
    FAILED = "failed"  # the provider refused it or could not be reached (see error)


# result of a finished call, as the provider reports it
RESULT_LABELS = {"answered": "已接通", "no_answer": "无人接听", "busy": "占线", "unreachable": "无法接通（空号/停机）",
                 "rejected": "拒接", "failed": "呼叫失败"}
STATUS_LABELS = {"queued": "排队中", "dialing": "呼叫中", "finished": "已结束", "failed": "呼叫失败"}


class DialBatch(Base):
    """A batch dial list (批量外呼): the calls of one list carry its id."""

    __tablename__ = "telephony_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    total: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]


class TelephonyCall(Base):
    """One call a staff member placed to a customer, about a subject (a collection case) or none."""

    __tablename__ = "telephony_call"
    __table_args__ = (
        Index("ix_telephony_call_customer_created", "customer_id", "created_at"),
        Index("ix_telephony_call_staff_created", "staff_id", "created_at"),
        Index("ix_telephony_call_subject", "subject_kind", "subject_id"),
        CheckConstraint("duration_seconds IS NULL OR duration_seconds >= 0", name="duration_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    out_call_no: Mapped[str] = mapped_column(String(32), unique=True)  # our reference, sent to the provider
    provider_call_id: Mapped[str | None] = mapped_column(String(64))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    subject_kind: Mapped[str | None] = mapped_column(String(40))  # e.g. "collection_case"; None: the customer
    subject_id: Mapped[int | None]
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("telephony_batch.id"), index=True)
    phone_masked: Mapped[str] = mapped_column(String(20))  # the number dialled, masked (never the plaintext)
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.QUEUED)
    result: Mapped[str | None] = mapped_column(String(16))  # RESULT_LABELS
    duration_seconds: Mapped[int | None]
    recording_url: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    dialed_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class TelephonyCallback(Base):
    """Every verified provider callback, stored under its event id before we answer (the inbox)."""

    __tablename__ = "telephony_callback"
    __table_args__ = (Index("ix_telephony_callback_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    out_call_no: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # the verified JSON body (no phone number in it)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class DoNotCall(Base):
    """A customer who asked not to be called (勿扰): every call to them is refused."""

    __tablename__ = "telephony_do_not_call"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    marked_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    marked_at: Mapped[datetime]
