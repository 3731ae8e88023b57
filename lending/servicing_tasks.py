"""Tasks of servicing: the periodic bill rollover, the nightly close of business, and the
events downstream packages hook into.

``lending.roll_over_bills`` runs every hour (beat in production, a thread in the embedded default); each run
rolls over the loans not yet rolled over today, in batches of one unit of work each, so a re-run the same day
does nothing. The event tasks call the hook lists of ``lending.servicing.events`` in their unit of work.
"""

from __future__ import annotations

from datetime import timedelta

from core.db import unit_of_work
from core.tasks import periodic, task
from lending.servicing import cob, events, reminders
from lending.servicing.rollover import roll_over

BATCH = 200
MAX_BATCHES = 1000


@task(events.ROLLOVER_TASK)
def roll_over_bills() -> int:
    total = 0
    for _ in range(MAX_BATCHES):
        with unit_of_work() as session:
            done = roll_over(session, limit=BATCH)
        total += done
        if done < BATCH:
            break
    return total


periodic(events.ROLLOVER_TASK, timedelta(hours=1))


@task(cob.COB_TASK)
def close_of_business() -> int:
    """The nightly close of business for every business date not yet closed, up to today (a no-op once today
    is closed; hourly, so a missed night is caught up within the hour)."""
    return len(cob.close_business())


periodic(cob.COB_TASK, timedelta(hours=1))


@task(reminders.DISPATCH_TASK)
def dispatch_reminders() -> int:
    """Hand the pending reminders to their channels (the mini-program, the bot), each marks its own."""
    with unit_of_work() as session:
        return reminders.dispatch(session)


periodic(reminders.DISPATCH_TASK, timedelta(minutes=10))


def _run_hooks(hooks: list[events.Hook], entity_id: int) -> int:
    with unit_of_work() as session:
        for hook in list(hooks):
            hook(session, entity_id)
    return len(hooks)


@task(events.REPAYMENT_RECORDED_TASK)
def repayment_recorded(repayment_id: int) -> int:
    return _run_hooks(events.ON_REPAYMENT_RECORDED, repayment_id)


@task(events.REPAYMENT_REVERSED_TASK)
def repayment_reversed(reversal_id: int) -> int:
    return _run_hooks(events.ON_REPAYMENT_REVERSED, reversal_id)


@task(events.LOAN_CLOSED_TASK)
def loan_closed(loan_id: int) -> int:
    return _run_hooks(events.ON_LOAN_CLOSED, loan_id)
