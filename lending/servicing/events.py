"""Events of servicing for downstream packages (referral, bot notifications), sent through the outbox.

After the commit of a booking, a reversal or a closure, the task of that name runs (``lending.servicing_tasks``)
and calls every function of the matching hook list inside its own unit of work. A downstream package hooks in
with ``ON_REPAYMENT_RECORDED.append(fn)``; ``fn(session, id)`` must be idempotent (a task may run again after a
failure): key whatever it writes on the id it receives.

- ``lending.repayment_recorded`` (args: repayment_id)
- ``lending.repayment_reversed`` (args: reversal_id — the reversal entry; its ``reversal_of_id`` is the repayment)
- ``lending.loan_closed`` (args: loan_id) — everything paid (结清)

Collections (``postloan``) works inside servicing's own transactions, so it joins them through in-process hook
lists instead (lending never imports it; ``postloan.tasks`` registers them, loaded in every process):

- ``ON_LOAN_ROLLED_OVER``: ``fn(session, loan, day)`` after the per-loan rollover recomputed a loan's state
- ``ON_PAYMENT_POSTED``: ``fn(session, loan)`` after a repayment (not a waiver) was posted and the state refreshed
- ``COB_COLLECTIONS``: ``fn(session, day) -> rows``, the close of business's ``collections`` step (after the
  ``loans`` step set overdue days and buckets), in its transaction
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

REPAYMENT_RECORDED_TASK = "lending.repayment_recorded"
REPAYMENT_REVERSED_TASK = "lending.repayment_reversed"
LOAN_CLOSED_TASK = "lending.loan_closed"
ROLLOVER_TASK = "lending.roll_over_bills"

Hook = Callable[[Session, int], None]
ON_REPAYMENT_RECORDED: list[Hook] = []
ON_REPAYMENT_REVERSED: list[Hook] = []
ON_LOAN_CLOSED: list[Hook] = []

ON_LOAN_ROLLED_OVER: list[Callable[[Session, Any, date], None]] = []
ON_PAYMENT_POSTED: list[Callable[[Session, Any], None]] = []
COB_COLLECTIONS: list[Callable[[Session, date], int]] = []
