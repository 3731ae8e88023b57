"""Lead import pages (批量导入): upload a file, follow its job, download the problem-row report.

The import runs in the task ``crm.import_leads``; the job page refreshes itself (a small script
polling ``/console/imports/{id}/progress``, and a meta refresh without script) until it is done.
Rules (who may import, file checks, pools) live in crm.importer; these routes parse and render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, require_roles
from core import exports
from core.errors import NotFound, ValidationFailed
from core.web import SessionDep
from crm.importer import jobs, limits, service, uploads
from crm.models import IMPORT_STATUS_LABELS, ImportJob

router = APIRouter(prefix="/console/imports", include_in_schema=False)

Importer = Annotated[ConsoleUser, Depends(require_roles(uploads.IMPORTERS))]


class UploadTooLarge(ValidationFailed):
    code = "import_file_too_large"
    status = 413
    message = f"文件超过 {uploads.MAX_BYTES // (1024 * 1024)} MB 上限，请拆分后分批导入"


def limit_upload(request: Request) -> None:
    """Refuse an oversized body from its Content-Length, before the form is parsed."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > uploads.MAX_BYTES + 64 * 1024:
        raise UploadTooLarge()


def job_dict(job: ImportJob, rerun_by: ImportJob | None = None) -> dict[str, object]:
    """``rerun_by``: the job that already re-ran this one's file (then it is not offered again)."""
    status = jobs.shown_status(job)  # a run whose heartbeat stopped shows as failed (interrupted)
    return {"id": job.id, "filename": job.filename, "status": status,
            "status_label": IMPORT_STATUS_LABELS.get(status, status), "total": job.total,
            **service.counters(job), "message": jobs.shown_message(job), "has_report": bool(job.report_path),
            "finished": status in ("done", "failed"), "can_rerun": rerun_by is None and jobs.can_rerun(job)}


def _job_page(request: Request, session: SessionDep, job: ImportJob, *, error: object = None,
              status_code: int = 200) -> Response:
    rerun_by = jobs.rerun_of(session, job)
    return render(request, "imports/job.html", {
        "job": job, "info": job_dict(job, rerun_by), "rerun_by": rerun_by, "error": error,
        "rerun_status": IMPORT_STATUS_LABELS.get(jobs.shown_status(rerun_by), "") if rerun_by else "",
        "previous": service.previous_import(session, job), "assign_labels": service.assign_modes(),
    }, status_code=status_code)


def _list(request: Request, session: SessionDep, user: ConsoleUser, *, error: object = None,
          status_code: int = 200) -> Response:
    listed = service.list_jobs(session, user.viewer)
    return render(request, "imports/list.html", {
        "jobs": listed, "shown": {j.id: jobs.shown_status(j) for j in listed},
        "pools": uploads.visible_pools(session, user.viewer),
        "modes": service.assign_modes(), "status_labels": IMPORT_STATUS_LABELS, "error": error,
        "max_mb": uploads.MAX_BYTES // (1024 * 1024), "max_rows": limits.max_rows(),
    }, status_code=status_code)


@router.get("")
def import_list(request: Request, session: SessionDep, user: Importer) -> Response:
    return _list(request, session, user)


@router.post("", dependencies=[Depends(limit_upload), CsrfChecked])
def upload(request: Request, session: SessionDep, user: Importer, file: Annotated[UploadFile, File()],
           source: Annotated[str, Form()] = "", assign: Annotated[str, Form()] = "",
           pool_id: Annotated[str, Form()] = "") -> Response:
    job, error = attempt(session, lambda: uploads.start(
        session, user.viewer, file.file, file.filename or "", source=source.strip() or None,
        assign_mode=assign.strip() or None, pool_id=parse_int(pool_id)))
    if error or job is None:
        return _list(request, session, user, error=error, status_code=error.status if error else 400)
    return RedirectResponse(f"/console/imports/{job.id}", status_code=303)


@router.get("/{job_id}")
def job_page(request: Request, session: SessionDep, user: Importer, job_id: int) -> Response:
    return _job_page(request, session, service.get_job(session, user.viewer, job_id))


@router.post("/{job_id}/rerun", dependencies=[CsrfChecked])
def job_rerun(request: Request, session: SessionDep, user: Importer, job_id: int) -> Response:
    """A failed or interrupted job's file again, as a new job (what the old run created is found again)."""
    new, error = attempt(session, lambda: jobs.rerun(session, user.viewer, job_id))
    if error or new is None:
        return _job_page(request, session, service.get_job(session, user.viewer, job_id), error=error,
                         status_code=error.status if error else 400)
    return RedirectResponse(f"/console/imports/{new.id}", status_code=303)


@router.get("/{job_id}/progress")
def job_progress(session: SessionDep, user: Importer, job_id: int) -> JSONResponse:
    job = service.get_job(session, user.viewer, job_id)
    return JSONResponse(job_dict(job, jobs.rerun_of(session, job)),
                        headers={"Cache-Control": "no-store"})


@router.get("/{job_id}/report")
def job_report(session: SessionDep, user: Importer, job_id: int) -> Response:
    job = service.get_job(session, user.viewer, job_id)
    path = Path(job.report_path) if job.report_path else None
    if path is None or not path.is_file():
        raise NotFound("该导入任务没有问题行报告")
    return FileResponse(path, filename=f"导入问题行-{job.id}.xlsx",
                        media_type=exports.XLSX_MEDIA_TYPE)


@router.get("/", include_in_schema=False)
def import_list_slash(user: CurrentUser) -> RedirectResponse:
    return RedirectResponse("/console/imports", status_code=307)
