"""Task of the lead import: run a job uploaded in the console or through the API."""

from __future__ import annotations

from core.tasks import task
from crm.importer import service


@task(service.TASK, max_retries=2)
def import_leads(job_id: int) -> None:
    """Idempotent: only a queued job runs (queued -> running is a conditional UPDATE)."""
    service.run_job(job_id)
