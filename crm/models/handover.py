"""Handover of a salesperson's customers (离职继承 / 在职继承): the case, one item per customer, and
the WeCom transfers the bot must carry out for customers who are WeCom contacts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "CASE_STATUS_LABELS", "HANDOVER_KIND_LABELS", "ITEM_STATUS_LABELS", "SKIP_REASON_LABELS",
    "TRANSFER_STATUS_LABELS", "CaseStatus", "HandoverCase", "HandoverItem", "HandoverKind", "ItemStatus",
    "TransferKind", "TransferStatus", "WeComTransfer", "WeComTransferEvent",
]


class HandoverKind(StrEnum):
    DEPARTURE = "departure"  # 离职继承
    IN_SERVICE = "in_service"  # 在职继承


HANDOVER_KIND_LABELS = {"departure": "离职交接", "in_service": "在职转接"}


class CaseStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


CASE_STATUS_LABELS = {"open": "待处理", "done": "已完成", "cancelled": "已取消"}


class ItemStatus(StrEnum):
    PENDING = "pending"
    MOVED = "moved"
    SKIPPED = "skipped"


ITEM_STATUS_LABELS = {"pending": "待分配", "moved": "已转移", "skipped": "已跳过"}

SKIP_REASON_LABELS = {
    "not_owned": "执行时已不属于原负责人（已被领取、退回或转走）",
    "wecom_limit": "90 天内已在职转接 2 次，企业微信不允许再次转接",
}


class HandoverCase(Base):
    __tablename__ = "handover_case"
    __table_args__ = (
        # One open departure case per departing person (open_departure_case is idempotent on it).
        Index("uq_handover_case_open_departure", "from_staff_id", unique=True,
              sqlite_where=text("status = 'open' AND kind = 'departure'"),
              postgresql_where=text("status = 'open' AND kind = 'departure'")),
        Index("ix_handover_case_status_opened", "status", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    from_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN)
    source: Mapped[str] = mapped_column(String(16), default="console")  # console | wecom
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    opened_at: Mapped[datetime]
    executed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    closed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(500))
    # What execution did: mode, counts (moved, skipped, transfers requested, …).
    summary: Mapped[dict[str, Any] | None]


class HandoverItem(Base):
    """One customer of a case: where it goes (a successor or a pool) and what happened."""

    __tablename__ = "handover_item"
    __table_args__ = (UniqueConstraint("case_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("handover_case.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    to_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    to_pool_id: Mapped[int | None] = mapped_column(ForeignKey("crm_pool.id"))
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.PENDING)
    skip_reason: Mapped[str | None] = mapped_column(String(40))
    decided_at: Mapped[datetime | None]


class TransferKind(StrEnum):
    RESIGNED = "resigned"  # externalcontact/resigned/transfer_customer
    IN_SERVICE = "in_service"  # externalcontact/transfer_customer (at most 2 per customer per 90 days)


class TransferStatus(StrEnum):
    REQUESTED = "requested"  # written by the domain; the bot has not called WeCom yet
    WAITING = "waiting"  # WeCom accepted it; automatic takeover after 24 h unless the customer refuses
    TAKEN_OVER = "taken_over"
    REFUSED = "refused"  # the customer refused
    LIMIT_REACHED = "limit_reached"  # the takeover member is at WeCom's customer limit
    FAILED = "failed"  # WeCom refused the call (errcode) or had no record of it


TRANSFER_STATUS_LABELS = {
    "requested": "待提交企业微信", "waiting": "等待接替（24 小时）", "taken_over": "已接替", "refused": "客户拒绝",
    "limit_reached": "接替人客户数已达上限", "failed": "转接失败",
}

ACTIVE_TRANSFER_STATUSES = ("requested", "waiting")


class WeComTransfer(Base):
    """A customer transfer the WeCom layer must carry out; an explicit state machine (crm.handover)."""

    __tablename__ = "wecom_transfer"
    __table_args__ = (
        Index("ix_wecom_transfer_customer_kind_at", "customer_id", "kind", "requested_at"),
        Index("ix_wecom_transfer_external_takeover", "external_userid", "takeover_userid"),
        Index("ix_wecom_transfer_case_status", "case_id", "status"),
        # At most one transfer in flight per customer.
        Index("uq_wecom_transfer_active_customer", "customer_id", unique=True,
              sqlite_where=text("status IN ('requested', 'waiting')"),
              postgresql_where=text("status IN ('requested', 'waiting')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("handover_case.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    external_userid: Mapped[str] = mapped_column(String(64))
    handover_userid: Mapped[str] = mapped_column(String(64))
    takeover_userid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TransferStatus.REQUESTED)
    batch_id: Mapped[str | None] = mapped_column(String(40), index=True)
    errcode: Mapped[int | None]
    requested_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WeComTransferEvent(Base):
    """Every transition of a transfer: from, to, who, when, why. Append-only."""

    __tablename__ = "wecom_transfer_event"
    __table_args__ = (Index("ix_wecom_transfer_event_transfer", "transfer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("wecom_transfer.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    actor_label: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(String(200))
    errcode: Mapped[int | None]
