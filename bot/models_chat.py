"""Table of the team announcements: group robots (群机器人) per department."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["WecomRobot"]


class WecomRobot(Base):
    """A WeCom group robot's webhook. The key is the credential: stored sealed by the PII vault
    (``core.pii.seal(PAYLOAD, …)``), shown only as ``key_hint``."""

    __tablename__ = "wecom_robot"
    __table_args__ = (UniqueConstraint("department_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    webhook_key_enc: Mapped[str] = mapped_column(Text)
    key_hint: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    last_posted_at: Mapped[datetime | None]
