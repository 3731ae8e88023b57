"""Collections' hooks into servicing (``lending.servicing.events``): the close of business's ``collections``
step, the per-loan rollover, a posted repayment; and a broken promise re-rates its case. Registered when this module is imported, which
``core.plugins.load_tasks`` does in every web process and worker (lending never imports postloan)."""

from __future__ import annotations

from datetime import timedelta

from core.db import unit_of_work
from core.settings import get_settings
from core.tasks import periodic, task
from postloan import case_calls, history, nightly, rerating  # noqa: F401  (case_calls: its call listener)
from postloan.telephony import tasks as telephony_tasks  # noqa: F401  (the telephony tasks)


def register_hooks() -> bool:
    from lending.servicing import events

    for hooks, fn in ((events.COB_COLLECTIONS, nightly.run), (events.ON_LOAN_ROLLED_OVER, nightly.on_loan_rolled_over),
                      (events.ON_PAYMENT_POSTED, nightly.on_payment_posted),
                      (history.ON_PROMISE_BROKEN, rerating.on_promise_broken)):
        if fn not in hooks:
            hooks.append(fn)
    return True


register_hooks()


CREDIT_RECHECK_TASK = "postloan.recheck_credit"


@task(CREDIT_RECHECK_TASK)
def recheck_credit() -> int:
    """Re-check the credit report of the open cases due (``SCRM_POSTLOAN_CREDIT_RECHECK_DAYS``); a new external
    overdue raises the case's tier. Each case in its own transaction; a provider failure is tried next hour."""
    settings = get_settings()
    with unit_of_work() as session:
        due = rerating.due_for_credit_check(session, every_days=settings.postloan_credit_recheck_days,
                                            limit=settings.postloan_credit_recheck_batch)
    checked = 0
    for case_id in due:
        with unit_of_work() as session:
            checked += rerating.check_credit(session, case_id) is not None
    return checked


periodic(CREDIT_RECHECK_TASK, timedelta(hours=1))
