"""Telephony tasks: dial a call or a batch, process stored callbacks, sweep what is left pending."""

from __future__ import annotations

import logging
from datetime import timedelta

from core import inbox_processing, outbox
from core.db import unit_of_work
from core.tasks import periodic, task
from postloan.telephony import callbacks, calls
from postloan.telephony.models import TelephonyCallback

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
DIAL_RETRIES = 3


@task(calls.DIAL_TASK, max_retries=DIAL_RETRIES, urgent=True)
def dial_call(call_id: int) -> None:
    """ProviderUnavailable retries the task; a call still queued after that is failed by the sweep."""
    with unit_of_work() as session:
        calls.dial(session, call_id)


@task(calls.DIAL_BATCH_TASK, max_retries=DIAL_RETRIES)
def dial_batch(batch_id: int) -> None:
    with unit_of_work() as session:
        calls.dial_batch(session, batch_id)


@task(callbacks.PROCESS_TASK, urgent=True)
def process_callbacks(*inbox_ids: int) -> None:
    inbox_processing.process_each(TelephonyCallback, callbacks.process, inbox_ids, max_attempts=MAX_ATTEMPTS,
                                  what="telephony callback")


@task("postloan.telephony_sweep")
def sweep() -> None:
    """Re-send callbacks still pending a minute after arrival; give up on the ones that keep failing."""
    with unit_of_work() as session:
        stale = callbacks.stale_pending_ids(session, timedelta(minutes=1))
        for start in range(0, len(stale), callbacks.TASK_IDS):
            outbox.enqueue(session, callbacks.PROCESS_TASK, *stale[start:start + callbacks.TASK_IDS])
        callbacks.give_up(session, MAX_ATTEMPTS)
        calls.fail_stuck(session, timedelta(minutes=15))


periodic("postloan.telephony_sweep", timedelta(minutes=2))
