"""Tasks of analytics: the nightly snapshot (hourly: it takes the latest closed business date not yet taken) and
the background Excel exports; the scheduled reports' pushes to WeCom (queued here, sent by the bot)."""

from __future__ import annotations

from datetime import timedelta

from analytics import export_jobs, report_schedule, snapshots
from core.db import unit_of_work
from core.tasks import periodic, task


@task(snapshots.SNAPSHOT_TASK)
def take_snapshot() -> int:
    """Rows written (0 when there was nothing to take)."""
    with unit_of_work() as session:
        day = snapshots.due_date(session)
        marker = snapshots.take(session, day) if day else None
        return marker.loans + marker.pools if marker else 0


periodic(snapshots.SNAPSHOT_TASK, timedelta(hours=1))


@task(export_jobs.EXPORT_TASK)
def run_export(job_id: int) -> str:
    return export_jobs.run(job_id)


@task(report_schedule.QUEUE_TASK)
def queue_report_pushes() -> int:
    """Pushes newly queued (each scheduled report once per day or week, at its time)."""
    with unit_of_work() as session:
        return report_schedule.queue_pushes(session)


periodic(report_schedule.QUEUE_TASK, timedelta(minutes=1))
