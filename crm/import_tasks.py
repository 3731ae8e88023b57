"""Tasks of the lead import: run a job uploaded in the console or through the API; write down
the jobs whose run was interrupted (periodic)."""

from __future__ import annotations

from datetime import timedelta

from core.db import unit_of_work
from core.tasks import periodic, task
from crm.importer import jobs, service


@task(service.TASK, max_retries=2)
def import_leads(job_id: int) -> None:
    """Idempotent: only a queued job runs (queued -> running is a conditional UPDATE)."""
    service.run_job(job_id)


@task(jobs.EXPIRE_TASK)
def expire_import_jobs() -> dict[str, int]:
    """Write down the interrupted jobs (running, heartbeat stopped), re-run those a dead process or a database
    outage interrupted, and delete the uploads they left once the re-run window is over: idempotent (a job
    re-run once is never re-run again)."""
    with unit_of_work() as session:
        interrupted = jobs.mark_interrupted(session)
        resumed = jobs.resume_interrupted(session)
        discarded = jobs.discard_old_uploads(session)
    return {"interrupted": len(interrupted), "resumed": len(resumed), "uploads_deleted": discarded}


periodic(jobs.EXPIRE_TASK, timedelta(minutes=1))  # a few small queries; an interrupted import resumes this soon
