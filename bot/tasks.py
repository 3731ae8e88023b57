"""Tasks of the WeCom channel."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update

# handlers and the other task modules register themselves on import
from bot import channel_tasks, chat_tasks, handlers, inbox, mass_tasks, reminder_tasks, transfer_tasks  # noqa: F401
from bot.models import WecomInbox
from bot.task_support import wecom_task
from core import clock, outbox
from core.db import unit_of_work
from core.tasks import periodic, task

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


def _process(inbox_id: int) -> None:
    try:
        with unit_of_work() as session:
            inbox.process(session, inbox_id)
    except Exception as exc:
        with unit_of_work() as session:
            row = session.get(WecomInbox, inbox_id)
            if row is not None and row.status == "pending":
                row.attempts += 1
                row.error = f"{type(exc).__name__}: {exc}"[:500]
                if row.attempts >= MAX_ATTEMPTS:
                    row.status, row.processed_at = "failed", clock.now()
                    log.error("wecom event %s failed for good after %s attempts", inbox_id, row.attempts)
                    return
        raise


def _process_each(inbox_ids: tuple[int, ...]) -> None:
    """Each event in its own transaction; one that fails does not hold back the others. The task then
    fails and retries (the events already done are skipped under their row lock)."""
    failure: Exception | None = None
    for inbox_id in inbox_ids:
        try:
            _process(inbox_id)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other events had their turn
            log.warning("wecom event %s failed; the task will retry", inbox_id, exc_info=True)
            failure = failure or exc
    if failure is not None:
        raise failure


@wecom_task(inbox.PROCESS_TASK)
def process_inbox(*inbox_ids: int) -> None:
    _process_each(inbox_ids)


@wecom_task(inbox.PROCESS_URGENT_TASK, urgent=True)
def process_inbox_urgent(*inbox_ids: int) -> None:
    """Same work, its own queue: add_external_contact must not wait behind a backlog (20 s welcome code)."""
    _process_each(inbox_ids)


@task("bot.sweep_inbox")
def sweep_inbox() -> None:
    """Re-send events still pending a minute after arrival (a lost send, a crashed worker); prune nonces."""
    with unit_of_work() as session:
        stale = inbox.stale_pending_ids(session, timedelta(minutes=1))
        for start in range(0, len(stale), inbox.TASK_IDS):
            outbox.enqueue(session, inbox.PROCESS_TASK, *stale[start:start + inbox.TASK_IDS])
        inbox.prune_nonces(session, timedelta(hours=1))
        # Keep the stale list from re-sending the same rows every minute forever.
        session.execute(update(WecomInbox).where(WecomInbox.status == "pending", WecomInbox.attempts >= MAX_ATTEMPTS)
                        .values(status="failed", processed_at=clock.now()))


periodic("bot.sweep_inbox", timedelta(minutes=1))
