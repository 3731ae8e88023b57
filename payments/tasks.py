"""Tasks of the payment package: notification processing, polls, withholding submission and retries,
the daily reconciliation."""

from __future__ import annotations

import logging
from datetime import timedelta

from core import clock, inbox_processing, outbox
from core.db import unit_of_work
from core.tasks import periodic, task
from payments import inbox, orders, refunds, withholding
from payments.models import PaymentNotification

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
POLL_TASK = "payments.poll_order"
REFUND_POLL_TASK = "payments.poll_refund"


@task(inbox.PROCESS_TASK)
def process_notifications(*inbox_ids: int) -> None:
    """Each notification in its own transaction; one that fails does not hold back the others."""
    inbox_processing.process_each(PaymentNotification, inbox.process, inbox_ids, max_attempts=MAX_ATTEMPTS,
                                  what="payment notification")


@task("payments.sweep_inbox")
def sweep_inbox() -> None:
    """Re-send notifications still pending a minute after arrival; prune nonces past the window."""
    with unit_of_work() as session:
        stale = inbox.stale_pending_ids(session, timedelta(minutes=1))
        for start in range(0, len(stale), inbox.TASK_IDS):
            outbox.enqueue(session, inbox.PROCESS_TASK, *stale[start:start + inbox.TASK_IDS])
        inbox.prune_nonces(session, timedelta(hours=1))
        inbox.give_up(session, MAX_ATTEMPTS)


@task(POLL_TASK)
def poll_order(order_id: int) -> None:
    with unit_of_work() as session:
        orders.poll(session, order_id)


@task(REFUND_POLL_TASK)
def poll_refund(refund_id: int) -> None:
    with unit_of_work() as session:
        refunds.poll(session, refund_id)


@task("payments.poll_due")
def poll_due() -> None:
    """Orders whose result is not known yet, due for a query (notification lost, withholding pending), and
    refunds still under way (their notification lost)."""
    with unit_of_work() as session:
        for order_id in orders.due_for_poll(session):
            outbox.enqueue(session, POLL_TASK, order_id)
        for refund_id in refunds.due_for_poll(session, older_than=timedelta(minutes=5)):
            outbox.enqueue(session, REFUND_POLL_TASK, refund_id)


@task(withholding.SUBMIT_TASK)
def submit_withholding(order_id: int) -> None:
    with unit_of_work() as session:
        withholding.submit(session, order_id)


@task("payments.retry_withholdings")
def retry_withholdings() -> None:
    with unit_of_work() as session:
        due = withholding.retries_due(session)
    for order_id in due:
        with unit_of_work() as session:
            withholding.retry(session, order_id)


@task("payments.reconcile_yesterday")
def reconcile_yesterday() -> None:
    """Yesterday's bill, once it is there (WeChat Pay publishes it the next morning): run until one run is done."""
    from sqlalchemy import select

    from payments import reconciliation
    from payments.models import ReconciliationRun

    day = clock.today() - timedelta(days=1)
    with unit_of_work() as session:
        done = session.scalar(select(ReconciliationRun.id).where(ReconciliationRun.bill_date == day,
                                                                 ReconciliationRun.status == "done").limit(1))
        if done is None and clock.now().astimezone(clock.BUSINESS_TZ).hour >= 10:
            reconciliation.run(session, day, staff_id=None)


periodic("payments.sweep_inbox", timedelta(minutes=1))
periodic("payments.reconcile_yesterday", timedelta(hours=1))
periodic("payments.poll_due", timedelta(minutes=1))
periodic("payments.retry_withholdings", timedelta(minutes=10))
