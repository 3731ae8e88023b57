"""Task ``lending.loan_disbursed`` (args: loan_id): the servicing start and the downstream hooks."""

from __future__ import annotations

from core.db import unit_of_work
from core.tasks import task
from lending.disbursement import LOAN_DISBURSED_TASK, record_servicing_start


@task(LOAN_DISBURSED_TASK)
def loan_disbursed(loan_id: int) -> bool:
    """Idempotent: the first run records the servicing start and runs ON_LOAN_DISBURSED; re-runs do nothing."""
    with unit_of_work() as session:
        return record_servicing_start(session, loan_id)
