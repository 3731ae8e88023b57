"""Celery tasks of the CRM domain: each area keeps its own crm/<area>_tasks.py, imported here."""

from crm import (
    import_tasks,  # noqa: F401
    pool_tasks,  # noqa: F401
    work_tasks,  # noqa: F401
)
