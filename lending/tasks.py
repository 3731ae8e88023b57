"""Celery tasks of the lending domain: each area keeps its own lending/<area>_tasks.py, imported here."""

from lending import (
    disbursement_tasks,  # noqa: F401
    payment_purposes,  # noqa: F401 - registers the payment purpose lending.installment
    servicing_tasks,  # noqa: F401
    workflow_tasks,  # noqa: F401
)
