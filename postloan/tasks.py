"""Collections' hooks into servicing (``lending.servicing.events``): the close of business's ``collections``
step, the per-loan rollover, a posted repayment; and a broken promise re-rates its case. Registered when this module is imported, which
``core.plugins.load_tasks`` does in every web process and worker (lending never imports postloan)."""

from __future__ import annotations

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
