"""导出任务: a background Excel export's page — its progress bar (htmx polls the fragment until the job ends) and
the download link, all for the requester only (anyone else gets 记录不存在)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.responses import Response

from admin.deps import ConsoleUser, CurrentUser, render
from analytics import export_jobs
from analytics.models import EXPORT_STATUS_LABELS, ExportJob
from core import exports
from core.errors import NotFound
from core.web import SessionDep

router = APIRouter(prefix="/console/exports", include_in_schema=False)


def _context(job: ExportJob) -> dict[str, object]:
    total = job.total_rows or 0
    percent = 100 if job.status == "done" else (min(99, job.done_rows * 100 // total) if total else 0)
    return {"job": job, "title": export_jobs.EXPORTS[job.kind].title, "percent": percent,
            "status_label": EXPORT_STATUS_LABELS.get(job.status, job.status),
            "running": job.status in ("queued", "running")}


def _job(session: SessionDep, user: ConsoleUser, job_id: int) -> ExportJob:
    return export_jobs.get_job(session, user.viewer, job_id)


@router.get("/{job_id}")
def job_page(job_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return render(request, "exports/job.html", _context(_job(session, user, job_id)))


@router.get("/{job_id}/progress")
def progress(job_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return render(request, "exports/progress.html", _context(_job(session, user, job_id)))


@router.get("/{job_id}/file")
def download(job_id: int, session: SessionDep, user: CurrentUser) -> Response:
    job = _job(session, user, job_id)
    path = export_jobs.file_path(job)
    if path is None or not path.is_file():
        raise NotFound("导出文件尚未生成")
    title = export_jobs.EXPORTS[job.kind].title
    return FileResponse(path, media_type=exports.XLSX_MEDIA_TYPE, filename=f"{title}-{job.id}.xlsx",
                        headers={"Cache-Control": "private, no-store"})
