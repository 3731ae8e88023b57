"""Import jobs whose run died: a heartbeat, the interrupted state, and the re-run.

A running job moves its ``updated_at`` at every batch it commits (:mod:`crm.importer.service`).
A job still "running" whose heartbeat is older than ``import_stale_minutes`` belongs to a process
that crashed or was killed (the batches it committed are kept, each whole): it is shown as failed
(interrupted) at once, and the periodic task ``crm.expire_import_jobs`` writes that down. The row is
the authority: a run that was only stalled and comes back finds its job no longer running and stops
without writing its batch (:class:`crm.importer.service.JobNoLongerRunning`).

A failed job whose file is still on the server (a crashed run never got to delete the upload; a
file given to the CLI stays where it is) can be re-run: a new job for the same file and options.
Re-running creates only what the interrupted run did not: the rows it created are found again as
existing customers. An interrupted upload (plaintext phone and ID numbers) is kept for
:data:`RERUN_WINDOW` after the interruption, then the sweep deletes it.

A job interrupted by the machine rather than by its file resumes by itself (:func:`resume_interrupted`, the same
sweep): its process died (heartbeat stale), or the database went away under it. The sweep re-runs it as a user's
重新导入 would, at most :data:`AUTO_RERUNS` times per file. A file whose runs keep dying (one that kills its
worker, say) is then left for a person to look at. A job that failed on its file (a bad header, a spreadsheet
bomb) or on an error of ours is never re-run by itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from core import audit, clock
from core.errors import ValidationFailed
from core.settings import get_settings
from crm.importer import service, uploads
from crm.models import ImportJob, ImportStatus
from crm.scope import Viewer

EXPIRE_TASK = "crm.expire_import_jobs"
RERUN_WINDOW = timedelta(days=1)
INTERRUPTED_MESSAGE = ("导入中断：处理进程已停止（超过 {minutes} 分钟没有进展）。已完成的批次已保存，"
                       "可重新导入同一文件（已导入的行会识别为重复）")


AUTO_RERUNS = 2
# the failures that say nothing about the file: a run that died, a database that went away (their messages' start)
RESUMABLE = (INTERRUPTED_MESSAGE.partition("（")[0], service.DATABASE_DOWN_MESSAGE.partition("（")[0])
RESUMED = "。已完成的批次已保存，已自动重新导入（任务 #{id}），已导入的行会识别为重复"  # after the reason


class ImportNotRerunnable(ValidationFailed):
    code = "import_not_rerunnable"
    status = 409
    message = "该导入任务不能重新运行"


def stale_after() -> timedelta:
    return timedelta(minutes=get_settings().import_stale_minutes)


def is_interrupted(job: ImportJob, now: datetime | None = None) -> bool:
    """A running job whose heartbeat stopped (its process is gone)."""
    return job.status == ImportStatus.RUNNING and job.updated_at < (now or clock.now()) - stale_after()


def shown_status(job: ImportJob, now: datetime | None = None) -> str:
    """The status to show: an interrupted job is failed even before the sweep writes it down."""
    return ImportStatus.FAILED if is_interrupted(job, now) else job.status


def shown_message(job: ImportJob, now: datetime | None = None) -> str | None:
    if is_interrupted(job, now):
        return INTERRUPTED_MESSAGE.format(minutes=get_settings().import_stale_minutes)
    return job.message


def mark_interrupted(session: Session, now: datetime | None = None) -> list[int]:
    """Running jobs whose heartbeat stopped become failed (interrupted); returns their ids. One
    conditional UPDATE: a run that moves its heartbeat meanwhile keeps its job."""
    now = now or clock.now()
    message = INTERRUPTED_MESSAGE.format(minutes=get_settings().import_stale_minutes)
    ids = list(session.scalars(
        update(ImportJob).where(ImportJob.status == ImportStatus.RUNNING, ImportJob.updated_at < now - stale_after())
        .values(status=ImportStatus.FAILED, message=message, finished_at=now, updated_at=now)
        .returning(ImportJob.id)))
    for job_id in ids:
        audit.record(session, "import.interrupted", entity_type="import_job", entity_id=job_id,
                     actor=audit.Actor.system("导入"))
    return ids


def discard_old_uploads(session: Session, now: datetime | None = None) -> int:
    """Delete the uploads interrupted jobs left behind, :data:`RERUN_WINDOW` after they failed."""
    now = now or clock.now()
    old = session.execute(select(ImportJob.id, ImportJob.file_path).where(
        ImportJob.status == ImportStatus.FAILED, ImportJob.finished_at < now - RERUN_WINDOW,
        ImportJob.file_path.is_not(None))).all()
    gone = 0
    for job_id, file_path in old:
        path = Path(file_path)
        if path.is_file():
            service.discard_upload(job_id, path)
            gone += not path.exists()
    return gone


def can_rerun(job: ImportJob, now: datetime | None = None) -> bool:
    return (job.status == ImportStatus.FAILED or is_interrupted(job, now)) and bool(job.file_path) \
        and Path(job.file_path or "").is_file()


def _later_runs(file_path: Any, job_id: Any) -> Select:
    """Jobs of the same file created after ``job_id``: its re-runs (columns or values alike)."""
    later = aliased(ImportJob)
    return select(later).where(later.file_path == file_path, later.id > job_id).order_by(later.id)


def rerun_of(session: Session, job: ImportJob) -> ImportJob | None:
    """The job that re-ran ``job``'s file (by a person or by the sweep), if any."""
    return session.scalar(_later_runs(job.file_path, job.id).limit(1)) if job.file_path else None


def resume_interrupted(session: Session, now: datetime | None = None) -> list[int]:
    """Re-run each job interrupted by a dead process or a database outage (:data:`RESUMABLE`) within
    :data:`RERUN_WINDOW`, whose file is still there, unchanged, and not re-run yet, unless its file was already
    interrupted more than :data:`AUTO_RERUNS` times; returns the new jobs' ids. The interrupted job's message
    says which job took over."""
    now = now or clock.now()
    resumable = or_(*(ImportJob.message.startswith(prefix) for prefix in RESUMABLE))
    candidates = list(session.scalars(select(ImportJob).where(
        ImportJob.status == ImportStatus.FAILED, resumable, ImportJob.finished_at >= now - RERUN_WINDOW,
        ImportJob.file_path.is_not(None), ~_later_runs(ImportJob.file_path, ImportJob.id).exists())
        .order_by(ImportJob.id)))
    resumed = []
    for job in candidates:
        interruptions = session.scalar(select(func.count()).select_from(ImportJob).where(
            ImportJob.file_path == job.file_path, ImportJob.status == ImportStatus.FAILED, resumable))
        path = Path(job.file_path or "")
        if interruptions > AUTO_RERUNS or not path.is_file() or service.file_sha256(path) != job.sha256:
            continue
        new = service.submit(session, filename=job.filename, file_path=path, source=job.source,
                             assign_mode=job.assign_mode, pool_id=job.pool_id, created_by=job.created_by,
                             sha256=job.sha256)
        job.message = (job.message or "").partition("。")[0] + RESUMED.format(id=new.id)  # no "可重新导入" left
        audit.record(session, "import.rerun", entity_type="import_job", entity_id=new.id,
                     after={"rerun_of": job.id, "automatic": True}, actor=audit.Actor.system("导入"))
        resumed.append(new.id)
    return resumed


def rerun(session: Session, viewer: Viewer, job_id: int) -> ImportJob:
    """Queue a new job for a failed (or interrupted) job's file, with the same options."""
    uploads.ensure_importer(viewer)
    job = service.get_job(session, viewer, job_id)
    if is_interrupted(job):
        mark_interrupted(session)
        session.refresh(job)
    if job.status != ImportStatus.FAILED:
        raise ImportNotRerunnable("只有失败或中断的导入任务可以重新运行")
    taken_over = rerun_of(session, job)
    if taken_over is not None:  # two runs of one file side by side would only find each other's rows
        raise ImportNotRerunnable(f"该文件已重新导入：任务 #{taken_over.id}")
    path = Path(job.file_path or "")
    if not job.file_path or not path.is_file():
        raise ImportNotRerunnable("原文件已不在服务器上（读取后即删除），请重新上传该文件")
    if service.file_sha256(path) != job.sha256:
        raise ImportNotRerunnable("原文件已被改动，请重新上传该文件")
    new = service.submit(session, filename=job.filename, file_path=path, source=job.source,
                         assign_mode=job.assign_mode, pool_id=job.pool_id,
                         created_by=viewer.staff_id or job.created_by, sha256=job.sha256)
    audit.record(session, "import.rerun", entity_type="import_job", entity_id=new.id, after={"rerun_of": job.id})
    return new
