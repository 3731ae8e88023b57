"""The transactional outbox: a task enqueued inside a transaction is written as a row of that transaction.

``enqueue(session, "crm.recycle_pool", pool_id)`` buffers the call on the session. Just before the
outermost commit, the buffered calls are inserted into ``task_outbox`` (one multi-row INSERT), so the
task exists exactly when the change that caused it exists: a rollback leaves neither. Right after
the commit the ``after_commit`` hook hands each call, with its row id, to :func:`core.tasks.dispatch`
(the fast path: a request does not wait for anything more than it did before).

The row is then settled by whoever delivered the task:

* Celery: the process's sender marks the rows ``sent`` once the broker has accepted them.
* Embedded default (in-process threads) and tests: the runner marks the row ``sent`` once the task
  RAN (an in-memory queue dies with its process, so "handed over" is not durable there).

Should the process die between the commit and that mark (or the broker be down), the row stays
``pending`` and the relay (:mod:`core.outbox_relay`, a loop in every Celery worker and beat, a
thread in the embedded default) sends it again once its ``due_at`` has passed: a row is due
``RELAY_AFTER`` seconds after it was written (plus its countdown). Delivery is therefore
at-least-once, and tasks are idempotent. A row the relay fails to send ``outbox_max_attempts``
times, or a task that failed for good after its retries, is ``dead``: the console's 任务队列 page
(and ``/api/v1/outbox``) lists it and an admin can send it again. Sent rows are pruned after
``SENT_RETENTION``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, String, Text, delete, event, func, insert, select, update
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from core import clock, tasks
from core.db import Base, unit_of_work

log = logging.getLogger(__name__)

_KEY = "scrm_outbox"  # calls buffered in this unit of work, not yet written
_WRITTEN = "scrm_outbox_written"  # (row id, call) written in this transaction, sent after the commit

PENDING, SENT, DEAD = "pending", "sent", "dead"
STATUSES = (PENDING, SENT, DEAD)
# A row not settled this long after it was due is picked up by the relay (its sender died, or the
# broker was down). Long enough that the fast path settles it first under any sane load.
RELAY_AFTER = timedelta(seconds=30)
SENT_RETENTION = timedelta(hours=1)
ERROR_LENGTH = 2000


class TaskOutbox(Base):
    """One task call written in the transaction that caused it."""

    __tablename__ = "task_outbox"
    __table_args__ = (Index("ix_task_outbox_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(JSON)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(default=0)  # relay sends (and, when dead, the runs)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]  # the relay may (re)send it from then on
    countdown: Mapped[float | None]  # seconds the task waits after the commit (scheduled not-before)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class OutgoingTask:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    countdown: float | None = None


def enqueue(session: Session, name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Send task ``name(*args, **kwargs)`` once this unit of work commits (``countdown`` seconds later)."""
    if not session.in_transaction():
        session.begin()  # so that a rollback (or commit) of this unit of work settles the buffer
    session.info.setdefault(_KEY, []).append(OutgoingTask(name, args, kwargs, countdown))


def enqueue_once(session: Session, name: str, *args: Any, **kwargs: Any) -> None:
    """Enqueue unless the same call is already buffered in this unit of work (e.g. one push per batch)."""
    item = OutgoingTask(name, args, kwargs)
    if item not in session.info.get(_KEY, []):
        enqueue(session, name, *args, **kwargs)


def pending(session: Session) -> list[OutgoingTask]:
    """The calls enqueued in this unit of work and not yet committed."""
    return list(session.info.get(_KEY, [])) + [item for _, item in session.info.get(_WRITTEN, [])]


def _due(now: datetime, countdown: float | None) -> datetime:
    return now + RELAY_AFTER + timedelta(seconds=countdown or 0)


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT is released; the outermost commit writes
    outgoing: list[OutgoingTask] = session.info.pop(_KEY, [])
    if not outgoing:
        return
    now = clock.now()
    table = TaskOutbox.__table__
    rows = [{"name": o.name, "args": list(o.args), "kwargs": o.kwargs, "status": PENDING, "attempts": 0,
             "created_at": now, "due_at": _due(now, o.countdown), "countdown": o.countdown} for o in outgoing]
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids = list(session.execute(stmt, rows).scalars())
    session.info.setdefault(_WRITTEN, []).extend(zip(ids, outgoing, strict=True))


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released; the transaction that decides is still open
    written = session.info.pop(_WRITTEN, [])
    if not written:
        return
    for row_id, item in written:
        try:
            tasks.dispatch(item.name, item.args, item.kwargs, countdown=item.countdown, outbox_id=row_id)
        except tasks.NoTaskRunner:  # expected in a script beside the server: no traceback for it
            log.info("task %s (outbox row %s) left for the relay: this process runs no tasks", item.name, row_id)
        except Exception:  # noqa: BLE001 - the row is committed: the relay sends it
            log.exception("task %s (outbox row %s) not handed over after commit; the relay will send it",
                          item.name, row_id)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop(_KEY, None)
        session.info.pop(_WRITTEN, None)


# --- settling rows -----------------------------------------------------------------------------


def mark_sent(ids: list[int]) -> None:
    """The tasks of these rows were delivered (their own unit of work; a failure only logs: the relay resends)."""
    if not ids:
        return
    try:
        with unit_of_work() as session:
            table = TaskOutbox.__table__
            session.execute(update(table).where(table.c.id.in_(ids), table.c.status == PENDING)
                            .values(status=SENT, sent_at=clock.now()))
    except Exception:  # noqa: BLE001
        log.warning("outbox rows %s not marked sent; the relay will send them again", ids[:20], exc_info=True)


def record_failure(outbox_id: int | None, name: str, args: Any, kwargs: Any, error: str, attempts: int) -> None:
    """A task failed for good after its retries: its row (or, for a task with no row, a new one) is dead."""
    now, error = clock.now(), error[-ERROR_LENGTH:]
    try:
        with unit_of_work() as session:
            table = TaskOutbox.__table__
            updated = 0
            if outbox_id is not None:
                updated = session.execute(update(table).where(table.c.id == outbox_id).values(
                    status=DEAD, last_error=error, attempts=attempts, sent_at=None)).rowcount
            if not updated:
                session.execute(insert(table).values(
                    name=name, args=list(args or ()), kwargs=dict(kwargs or {}), status=DEAD, attempts=attempts,
                    created_at=now, due_at=now, countdown=None, last_error=error))
    except Exception:  # noqa: BLE001
        log.exception("task %s failed for good and could not be recorded as dead", name)


# --- for the console and the staff API -------------------------------------------------------


def counts(session: Session) -> dict[str, int]:
    """Rows by status, with ``overdue``: pending rows whose due time has passed (the relay's backlog)."""
    table = TaskOutbox.__table__
    found = Counter({status: 0 for status in STATUSES})
    for status, n in session.execute(select(table.c.status, func.count()).group_by(table.c.status)):
        found[status] = n
    found["overdue"] = session.scalar(select(func.count()).select_from(table).where(
        table.c.status == PENDING, table.c.due_at <= clock.now())) or 0
    return dict(found)


def list_rows(session: Session, status: str, *, limit: int, offset: int = 0) -> list[TaskOutbox]:
    order = TaskOutbox.id.desc() if status == DEAD else TaskOutbox.due_at
    return list(session.scalars(select(TaskOutbox).where(TaskOutbox.status == status)
                                .order_by(order).limit(limit).offset(offset)))


def retry(session: Session, outbox_id: int) -> bool:
    """Send a dead (or waiting) row again at once: the relay picks it up on its next round."""
    table = TaskOutbox.__table__
    now = clock.now()
    return bool(session.execute(update(table).where(table.c.id == outbox_id, table.c.status != SENT).values(
        status=PENDING, attempts=0, due_at=now, sent_at=None)).rowcount)


def retry_all_dead(session: Session) -> int:
    table = TaskOutbox.__table__
    return session.execute(update(table).where(table.c.status == DEAD).values(
        status=PENDING, attempts=0, due_at=clock.now(), sent_at=None)).rowcount


def prune_sent(session: Session, older_than: timedelta = SENT_RETENTION, batch: int = 10_000) -> int:
    """Delete sent rows settled longer ago than ``older_than`` (in batches, so no long lock)."""
    table = TaskOutbox.__table__
    cutoff = clock.now() - older_than
    ids = select(table.c.id).where(table.c.status == SENT, table.c.sent_at < cutoff).limit(batch)
    return session.execute(delete(table).where(table.c.id.in_(ids.scalar_subquery()))).rowcount


# Delivery reports (sent, failed for good) come back from core.tasks through these two functions.
tasks.set_delivery_listener(mark_sent, record_failure)
