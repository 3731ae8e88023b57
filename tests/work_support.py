"""Helpers shared by the work-area tests (follow-ups, visits, automation); no tests here."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from crm.models import Notification
from crm.scope import Viewer

# 2026-03-10 10:00 in Asia/Shanghai (02:00 UTC).
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def viewer(staff) -> Viewer:
    return Viewer.of(staff)


def notifications(session, staff_id: int, kind: str | None = None) -> list[Notification]:
    stmt = select(Notification).where(Notification.staff_id == staff_id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return list(session.scalars(stmt.order_by(Notification.id)))


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0
