"""Staff notifications: the console inbox, and what the WeCom layer pushes as app messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["Notification"]


class Notification(Base):
    __tablename__ = "staff_notification"
    __table_args__ = (Index("ix_notification_staff_unread", "staff_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    kind: Mapped[str] = mapped_column(String(40))  # lead.assigned, collision, reminder, recycle.warning, handover…
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(String(1000), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    pushed_at: Mapped[datetime | None]  # sent to WeCom (bot.push_notifications)
