"""Celery tasks of the CRM domain: each area keeps its own crm/<area>_tasks.py, imported here."""

from crm import pool_tasks  # noqa: F401
from crm import work_tasks  # noqa: F401
from crm import import_tasks  # noqa: F401
