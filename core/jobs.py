"""The kernel's own tasks."""

from __future__ import annotations

from core import audit
from core.db import unit_of_work
from core.tasks import task


@task("core.ping")
def ping(marker: str) -> None:
    """Round-trip check of the task path (tests, and `scrm` operators checking a worker)."""
    with unit_of_work() as session:
        audit.record(session, "task.ping", detail=marker[:200], actor=audit.Actor.system("worker"))
