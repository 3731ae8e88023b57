"""Tasks enqueued inside a transaction are sent only after it commits, and dropped on rollback.

``enqueue(session, "crm.recycle_pool", pool_id)`` buffers the call on the session; the
``after_commit`` hook hands the buffer to :func:`core.tasks.dispatch`. A task therefore never
runs against data that was never committed. (The buffer lives in memory: a process killed between
commit and dispatch loses the send; periodic jobs re-derive their work from the database, and
tasks are idempotent, so a re-run is always safe.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "scrm_outbox"


@dataclass(frozen=True)
class OutgoingTask:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    countdown: float | None = None


def enqueue(session: Session, name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    if not session.in_transaction():
        session.begin()  # so that a rollback (or commit) of this unit of work settles the buffer
    session.info.setdefault(_KEY, []).append(OutgoingTask(name, args, kwargs, countdown))


def enqueue_once(session: Session, name: str, *args: Any, **kwargs: Any) -> None:
    """Enqueue unless the same call is already buffered in this unit of work (e.g. one push per batch)."""
    item = OutgoingTask(name, args, kwargs)
    if item not in session.info.get(_KEY, []):
        enqueue(session, name, *args, **kwargs)


def pending(session: Session) -> list[OutgoingTask]:
    return list(session.info.get(_KEY, []))


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released; the transaction that decides is still open
    outgoing = session.info.pop(_KEY, [])
    if outgoing:
        from core import tasks

        for item in outgoing:
            tasks.dispatch(item.name, item.args, item.kwargs, countdown=item.countdown)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop(_KEY, None)
