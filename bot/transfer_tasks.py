"""Tasks of WeCom customer transfers (see :mod:`bot.transfers`)."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot import inbox, transfers
from bot.task_support import wecom_task
from core import outbox
from core.db import unit_of_work
from core.tasks import periodic
from crm.handover import TRANSFER_TASK

log = logging.getLogger(__name__)
POLL_TASK = "bot.poll_transfers"


@wecom_task(TRANSFER_TASK)
def transfer_customers(case_id: int) -> None:
    """The case's requested transfers to WeCom, then a departed owner's group chats. Idempotent: rows
    already waiting or finished are not requested again, transferred chats are no longer listed.
    WecomUnavailable or a rate limit past the gateway's backoff raises, and the task retries."""
    report = transfers.submit_case(case_id)
    chats = transfers.transfer_group_chats(case_id)
    log.info("case %s: %s transfer calls, %s; group chats %s", case_id, report.calls, dict(report.statuses),
             None if chats is None else (len(chats["transferred"]), len(chats["failed"])))


@wecom_task(POLL_TASK)
def poll_transfers() -> None:
    """How waiting transfers ended (WeCom sends no callback for a takeover); re-send cases whose
    requested rows were never submitted (a lost task)."""
    with unit_of_work() as session:
        for case_id in transfers.stale_requested_cases(session):
            outbox.enqueue(session, TRANSFER_TASK, case_id)
    done = transfers.poll_results()
    if done:
        log.info("wecom transfer results: %s", dict(done))


periodic(POLL_TASK, timedelta(minutes=10))


# The transfer_fail callback (UserID = the takeover member). The change_external_contact handler
# registry (bot/handlers/) may register its own, which then wins; otherwise this one is used.
if transfers.TRANSFER_FAIL_KIND not in inbox.HANDLERS:
    inbox.handles(transfers.TRANSFER_FAIL_KIND)(transfers.on_transfer_fail)
