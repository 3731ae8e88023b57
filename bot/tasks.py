"""Tasks of the WeCom channel."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update

# handlers and the other task modules register themselves on import
from bot import (  # noqa: F401
    channel_tasks,
    chat_tasks,
    handlers,
    inbox,
    mass_tasks,
    reminder_tasks,
    report_tasks,
    transfer_tasks,
)
from bot.models import WecomInbox
from bot.task_support import wecom_task
from core import clock, inbox_processing, outbox
from core.db import unit_of_work
from core.tasks import periodic, task

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


def _process_each(inbox_ids: tuple[int, ...]) -> None:
    """Each event in its own transaction; one that fails does not hold back the others (core.inbox_processing)."""
    inbox_processing.process_each(WecomInbox, inbox.process, inbox_ids, max_attempts=MAX_ATTEMPTS, what="wecom event")


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
