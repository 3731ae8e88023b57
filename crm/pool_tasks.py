"""Periodic job of the public pool: recycle rules (warn owners, then take customers back)."""

from __future__ import annotations

from datetime import timedelta

from core.db import unit_of_work
from core.tasks import periodic, task
from crm import pool_service


@task(pool_service.RECYCLE_TASK)
def recycle_pool() -> dict[str, int]:
    """Run every active recycle rule once. Idempotent: a re-run finds nothing new to do."""
    with unit_of_work() as session:
        run = pool_service.run_recycle(session)
    return {"warned": run.warned, "recycled": run.recycled}


periodic(pool_service.RECYCLE_TASK, timedelta(minutes=10))
