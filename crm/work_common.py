"""Pieces shared by follow-ups, visits and automation: who may work a customer, insert-or-ignore,
and many notifications in one statement."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import clock, outbox, tasks
from crm import customers, notify, scope
from crm.models import Customer, CustomerCollaborator, CustomerStatus, Notification
from crm.scope import Viewer
from crm.work_exceptions import CustomerNotWorkable

CHUNK = 500


@dataclass(frozen=True)
class WorkItem:
    """An open piece of someone's work (for the handover): a to-do task or a scheduled visit."""

    kind: str  # task | visit
    id: int
    customer_id: int | None
    title: str
    due_at: datetime | None


@dataclass(frozen=True)
class ReassignResult:
    kind: str  # task | visit
    moved: int


def is_collaborator(session: Session, customer_id: int, staff_id: int) -> bool:
    return session.scalar(select(CustomerCollaborator.id).where(
        CustomerCollaborator.customer_id == customer_id, CustomerCollaborator.staff_id == staff_id)) is not None


def workable_customer(session: Session, viewer: Viewer, customer_id: int, *, for_update: bool = False) -> Customer:
    """The customer, if the viewer may work it: its owner, a co-handler, or someone whose scope covers
    the owner (a supervisor). Outside the scope: CustomerNotFound (404); a visible pool customer
    nobody owns: CustomerNotWorkable (claim it first)."""
    customer = customers.get_customer(session, viewer, customer_id, for_update=for_update)
    if viewer.scope == "all":
        return customer
    if customer.owner_id is not None and customer.status == CustomerStatus.OWNED and (
            customer.owner_id == viewer.staff_id or scope.can_see_owner(session, viewer, customer.owner_id)):
        return customer
    if is_collaborator(session, customer.id, viewer.staff_id):
        return customer
    raise CustomerNotWorkable()


def insert_ignore(session: Session, model: Any, rows: Sequence[dict[str, Any]], conflict: Sequence[str],
                  returning: Sequence[Any]) -> list[Any]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING …, in chunks: the rows that were new."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    out: list[Any] = []
    for start in range(0, len(rows), CHUNK):
        stmt = (dialect_insert(model).values(list(rows[start:start + CHUNK]))
                .on_conflict_do_nothing(index_elements=list(conflict)).returning(*returning))
        out.extend(session.execute(stmt).all())
    return out


def notify_many(session: Session, items: Iterable[tuple[int | None, str, str, str, int | None]]) -> int:
    """Many notifications (staff_id, kind, title, body, customer_id) in one statement."""
    now = clock.now()
    rows = [{"staff_id": sid, "kind": kind, "title": title[:120], "body": body[:1000], "customer_id": cid,
             "created_at": now} for sid, kind, title, body, cid in items if sid is not None]
    if not rows:
        return 0
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(Notification), rows[start:start + CHUNK])
    if tasks.is_registered(notify.PUSH_TASK):
        outbox.enqueue_once(session, notify.PUSH_TASK)
    return len(rows)


def customer_label(name: str | None, phone_masked: str | None, customer_id: int) -> str:
    return name or phone_masked or f"#{customer_id}"
