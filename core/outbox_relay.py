"""The outbox relay: sends the ``task_outbox`` rows nobody settled (their process died, the broker was down).

:func:`relay_once` takes up to ``limit`` pending rows whose ``due_at`` has passed, locking them with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several relays, in several workers, never take one row;
SQLite has one writer and one process), and for each:

* gives up (``dead``) once it was sent ``outbox_max_attempts`` times without being settled;
* otherwise counts the attempt and pushes ``due_at`` out by an exponential backoff (30 s, 1 min, 2 min,
  … 10 min), so that a relay dying mid-send leaves the row to be retried later;
* Celery: sends it to the broker at once (with what is left of its countdown) and marks it ``sent`` in
  the same transaction; a failed send records the error and leaves the row pending for the backoff;
* in-process runner: submits it; the runner marks it sent once the task ran. Rows the runner still holds
  (queued behind a backlog, or retrying) are not sent twice: their due time is only pushed out.

:class:`OutboxRelay` runs it in a loop on a daemon thread (every ``outbox_relay_interval_seconds``) and
prunes sent rows every ``PRUNE_EVERY``. It runs in every ``scrm worker`` and in ``scrm beat`` (Celery
deployments) and beside the in-process runner of ``scrm serve`` (embedded default).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from core import clock, tasks
from core.db import is_postgres, unit_of_work
from core.outbox import DEAD, ERROR_LENGTH, PENDING, RELAY_AFTER, SENT, TaskOutbox, prune_sent
from core.settings import get_settings

log = logging.getLogger(__name__)

PRUNE_EVERY = 600.0  # seconds
MAX_BACKOFF = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """How long after its ``attempts``-th relay send a row may be sent again: 30 s, 1, 2, 4, 8, 10, 10 … min."""
    return min(MAX_BACKOFF, RELAY_AFTER * 2 ** max(0, attempts - 1))


BATCH = 200


def relay_once(limit: int = BATCH) -> int:
    """One round; returns how many rows were sent (or submitted to the in-process runner)."""
    runner = tasks.get_runner()
    held = runner.in_flight() if runner is not None else set()
    max_attempts = get_settings().outbox_max_attempts
    table = TaskOutbox.__table__
    handed = 0
    with unit_of_work() as session:
        now = clock.now()
        query = (select(table.c.id, table.c.name, table.c.args, table.c.kwargs, table.c.attempts,
                        table.c.created_at, table.c.countdown)
                 .where(table.c.status == PENDING, table.c.due_at <= now)
                 .order_by(table.c.due_at).limit(limit))
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        rows = session.execute(query).all()
        if not rows:
            return 0
        still_held = [row.id for row in rows if row.id in held]
        if still_held:
            session.execute(update(table).where(table.c.id.in_(still_held)).values(due_at=now + RELAY_AFTER))
        producer_cm = None
        producer = None
        try:
            for row in rows:
                if row.id in held:
                    continue
                if row.attempts >= max_attempts:
                    session.execute(update(table).where(table.c.id == row.id).values(
                        status=DEAD, last_error=f"not delivered after {row.attempts} sends by the outbox relay"))
                    log.error("outbox row %s (%s) is dead after %s sends", row.id, row.name, row.attempts)
                    continue
                attempts = row.attempts + 1
                values: dict[str, object] = {"attempts": attempts, "due_at": now + backoff(attempts)}
                countdown = None
                if row.countdown:
                    countdown = max(0.0, (row.created_at + timedelta(seconds=row.countdown) - now).total_seconds())
                if runner is not None:
                    runner.submit(row.name, tuple(row.args), dict(row.kwargs), countdown or None, outbox_id=row.id)
                    handed += 1
                else:
                    try:
                        if producer_cm is None:
                            producer_cm = tasks.celery_producer()
                            producer = producer_cm.__enter__()
                        tasks.celery_send(tasks.Outgoing(row.name, tuple(row.args), dict(row.kwargs),
                                                         countdown or None, row.id), producer)
                        values.update(status=SENT, sent_at=now, last_error=None)
                        handed += 1
                    except Exception as exc:  # noqa: BLE001 - recorded on the row, retried after the backoff
                        values["last_error"] = f"send failed: {type(exc).__name__}: {exc}"[:ERROR_LENGTH]
                        log.warning("outbox row %s (%s) not sent (attempt %s)", row.id, row.name, attempts)
                        if producer_cm is not None:
                            _close(producer_cm)
                            producer_cm = producer = None
                session.execute(update(table).where(table.c.id == row.id).values(**values))
        finally:
            if producer_cm is not None:
                _close(producer_cm)
    if handed:
        log.info("outbox relay sent %s row(s)", handed)
    return handed


def _close(cm: object) -> None:
    try:
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        log.debug("closing the producer failed", exc_info=True)


def prune_once() -> int:
    total = 0
    while True:
        with unit_of_work() as session:
            n = prune_sent(session)
        total += n
        if n == 0:
            return total


class OutboxRelay:
    """:func:`relay_once` in a loop on a daemon thread; database or broker errors are logged and retried."""

    def __init__(self, interval: float | None = None, *, prune_every: float = PRUNE_EVERY) -> None:
        self.interval = interval if interval is not None else get_settings().outbox_relay_interval_seconds
        self.prune_every = prune_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> OutboxRelay:
        self._thread = threading.Thread(target=self._run, name="scrm-outbox-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        next_prune = time.monotonic() + self.prune_every
        while not self._stop.is_set():
            try:
                while relay_once(BATCH) >= BATCH and not self._stop.is_set():
                    pass  # a full batch: go on at once
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self.prune_every
                    if pruned := prune_once():
                        log.info("outbox: %s sent row(s) pruned", pruned)
            except Exception:  # noqa: BLE001 - database down, broker down: next round
                log.warning("outbox relay round failed", exc_info=True)
            self.rounds += 1
            self._stop.wait(self.interval)


def start_relay(interval: float | None = None) -> OutboxRelay:
    return OutboxRelay(interval).start()
