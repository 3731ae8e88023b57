"""Celery tasks of the lending domain: each area keeps its own lending/<area>_tasks.py, imported here.

Also imported here, so that every web process, worker and command registers them (``core.plugins.load_tasks``):
the workflow's in-process hooks (lending.contracts drafts the contract when an application reaches signing).
"""

from lending import (
    contracts,  # noqa: F401
    disbursement_tasks,  # noqa: F401
    payment_purposes,  # noqa: F401 - registers the payment purpose lending.installment
    servicing_tasks,  # noqa: F401
    workflow_tasks,  # noqa: F401
)
