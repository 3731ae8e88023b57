"""Large list exports as background jobs (导出任务): requested in the console, written by the task
``analytics.run_export`` through :mod:`core.exports` (streamed: rows are read in batches by key and written one by one,
so memory stays flat whatever the size; text cells can never become formulas), downloadable by their requester
only.

An export kind (``analytics.export_kinds``, one per console list) rebuilds the list from the stored parameters: the rows written
are the list's own SELECT (scope and filters) for the requester, read batch by batch while the job runs (a row
changed meanwhile is written as it was when its batch was read).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from analytics.export_kinds import KINDS
from analytics.export_spec import Column, Export, dataclass_filter, dataclass_params
from analytics.models import ExportJob
from core import audit, clock, exports, outbox
from core.db import unit_of_work
from core.errors import NotFound
from core.settings import get_settings
from crm.models import Staff
from crm.scope import Viewer

__all__ = ["EXPORT_TASK", "KINDS", "Column", "Export", "ExportNotFound", "dataclass_filter", "dataclass_params",
           "file_path", "get_job", "kind_of", "request", "run"]

EXPORT_TASK = "analytics.run_export"
log = logging.getLogger(__name__)
BATCH = 2000  # rows read (and progress written) per unit of work


class ExportNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("导出任务不存在")


def kind_of(name: str) -> Export:
    if name not in KINDS:
        raise ExportNotFound()
    return KINDS[name]


# --- the job ---------------------------------------------------------------------------------------------


def request(session: Session, viewer: Viewer, kind: str, params: dict[str, Any]) -> ExportJob:
    """Record the job and enqueue its task (sent once this unit of work commits)."""
    export = kind_of(kind)
    export.query(session, viewer, params)  # bad parameters are refused now, not in the task
    job = ExportJob(kind=kind, params=params, requested_by_staff_id=viewer.staff_id, status="queued",
                    created_at=clock.now())
    session.add(job)
    session.flush()
    outbox.enqueue(session, EXPORT_TASK, job.id)
    audit.record(session, "analytics.export_requested", entity_type="analytics_export_job", entity_id=job.id,
                 after={"kind": kind, "params": params})
    if export.audit_action:  # personal data (names, masked phones) in bulk: logged as a PII access
        audit.record(session, export.audit_action, entity_type="analytics_export_job", entity_id=job.id,
                     after={"filters": params, "export_job_id": job.id})
    return job


def get_job(session: Session, viewer: Viewer, job_id: int) -> ExportJob:
    """The job, for its requester only (anyone else is told it does not exist)."""
    job = session.get(ExportJob, job_id)
    if job is None or job.requested_by_staff_id != viewer.staff_id:
        raise ExportNotFound()
    return job


def file_path(job: ExportJob) -> Path | None:
    if job.status != "done" or not job.file_name:
        return None
    return Path(get_settings().export_dir) / job.file_name


def _progress(job_id: int, **values: Any) -> None:
    """Written in a unit of work of its own, so the console sees it while the export runs."""
    with unit_of_work() as session:
        session.execute(update(ExportJob).where(ExportJob.id == job_id).values(**values)
                        .execution_options(synchronize_session=False))


def run(job_id: int) -> str:
    """The task's body: claim the job (queued, or running after a crash), write the file row by row, mark it
    done. A job already done or failed is left alone (a second delivery of the task does nothing)."""
    with unit_of_work() as session:
        claimed = session.execute(update(ExportJob).where(
            ExportJob.id == job_id, ExportJob.status.in_(("queued", "running")))
            .values(status="running", started_at=clock.now(), done_rows=0)
            .execution_options(synchronize_session=False)).rowcount
        job = session.get(ExportJob, job_id)
        if claimed != 1 or job is None:
            return "skipped"
        kind, params, staff_id = job.kind, dict(job.params), job.requested_by_staff_id
    export = kind_of(kind)
    name = f"{job_id}-{secrets.token_hex(8)}.xlsx"
    target = Path(get_settings().export_dir)
    target.mkdir(parents=True, exist_ok=True)
    try:
        with unit_of_work() as session:
            viewer = Viewer.of(session.get(Staff, staff_id))
            total = export.count(session, viewer, params)
            session.execute(update(ExportJob).where(ExportJob.id == job_id).values(total_rows=total)
                            .execution_options(synchronize_session=False))
        done, after = 0, 0
        with exports.XlsxWriter(target / name) as book:
            with unit_of_work() as session:
                sheet = book.sheet(export.title, header=export.header(session, viewer, params))
            while True:
                # a unit of work per batch (a short transaction: SQLite has one writer), which also records
                # the progress the console polls
                with unit_of_work() as session:
                    rows = export.batch(session, viewer, params, after, BATCH)
                    for after, cells in rows:  # noqa: B007 - the last key read is where the next batch starts
                        sheet.append(cells)
                    done += len(rows)
                    session.execute(update(ExportJob).where(ExportJob.id == job_id).values(done_rows=done)
                                    .execution_options(synchronize_session=False))
                if len(rows) < BATCH:
                    break
    except Exception as exc:  # the job says it failed; the requester asks again (no silent retry of a big export)
        log.exception("export job %s failed", job_id)
        (target / name).unlink(missing_ok=True)
        _progress(job_id, status="failed", error=f"导出失败：{type(exc).__name__}"[:300], finished_at=clock.now())
        return "failed"
    _progress(job_id, status="done", done_rows=done, total_rows=max(total, done), file_name=name,
              finished_at=clock.now())
    return "done"
