"""Append-only audit log: who did what to which record, with before/after of sensitive fields.

Rows are only ever inserted. The ORM refuses updates and deletes of :class:`AuditLog`, and the
migration installs database triggers that refuse them too (PostgreSQL and SQLite), so not even a
stray ``UPDATE`` in a shell rewrites history.

Sensitive values are written masked: ``record(..., before={"phone": "138****5678"})``. Reading a
plaintext PII value for a person goes through :func:`reveal`, which writes a ``pii.reveal`` entry.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import clock, pii
from core.db import Base


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member, a customer, or the system (a task, a callback)."""

    kind: str  # staff | customer | system
    id: int | None
    label: str
    ip: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls("system", None, label)


_current_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("scrm_actor", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("scrm_request_id", default=None)


def set_context(actor: Actor | None, request_id: str | None = None) -> None:
    _current_actor.set(actor)
    _request_id.set(request_id)


def current_actor() -> Actor:
    return _current_actor.get() or Actor.system()


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor", "actor_kind", "actor_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    actor_label: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80), index=True)
    entity_type: Mapped[str | None] = mapped_column(String(60))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    detail: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))


@event.listens_for(AuditLog, "before_update")
@event.listens_for(AuditLog, "before_delete")
def _refuse_change(*_: Any) -> None:
    raise RuntimeError("audit_log is append-only")


def _clean(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-safe values with any phone or ID number inside strings masked."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            out[key] = pii.mask_text(value)
        elif value is None or isinstance(value, bool | int):
            out[key] = value
        else:
            out[key] = pii.mask_text(str(value))
    return out


def record(
    session: Session,
    action: str,
    *,
    entity_type: str | None = None,
    entity_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str | None = None,
    actor: Actor | None = None,
) -> AuditLog:
    actor = actor or current_actor()
    entry = AuditLog(
        at=clock.now(),
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label[:120],
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before=_clean(before),
        after=_clean(after),
        detail=pii.mask_text(detail)[:500] if detail else None,
        ip=actor.ip,
        request_id=_request_id.get(),
    )
    session.add(entry)
    session.flush()
    return entry


def reveal(session: Session, kind: str, token: str, *, entity_type: str, entity_id: object,
           reason: str | None = None, actor: Actor | None = None) -> str:
    """Decrypt a PII value for a person, and log that they saw it."""
    value = pii.open_sealed(kind, token)
    record(session, "pii.reveal", entity_type=entity_type, entity_id=entity_id,
           after={"field": kind}, detail=reason, actor=actor)
    return value


def search(session: Session, *, action: str | None = None, entity_type: str | None = None,
           entity_id: str | None = None, actor_id: int | None = None,
           since: datetime | None = None, until: datetime | None = None,
           limit: int = 50, offset: int = 0) -> list[AuditLog]:
    stmt = select(AuditLog)
    if action:
        stmt = stmt.where(AuditLog.action.like(f"{action}%"))
    if entity_type:
        stmt = stmt.where(AuditLog.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditLog.entity_id == entity_id)
    if actor_id is not None:
        stmt = stmt.where(AuditLog.actor_id == actor_id)
    if since:
        stmt = stmt.where(AuditLog.at >= since)
    if until:
        stmt = stmt.where(AuditLog.at < until)
    return list(session.scalars(stmt.order_by(AuditLog.id.desc()).limit(limit).offset(offset)))
