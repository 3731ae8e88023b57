"""Lead imports in the staff JSON API: upload a file (multipart), then poll its job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field

from admin.api.deps import ERROR_RESPONSES, Caller
from admin.schemas import ErrorBody
from core.web import SessionDep
from crm.importer import jobs, service, uploads
from crm.models import ImportJob

router = APIRouter(prefix="/api/v1", tags=["imports"], responses=ERROR_RESPONSES)


class ImportJobRead(BaseModel):
    id: int
    filename: str
    sha256: str
    source: str
    assign_mode: str | None
    pool_id: int | None
    status: str = Field(description="queued | running | done | failed (a run whose heartbeat stopped: failed)")
    total: int | None = Field(description="data rows (an estimate while running)")
    processed: int
    created: int
    duplicates_in_file: int
    duplicates_existing: int
    collisions: int
    errors: int
    assigned: int
    message: str | None = Field(description="why the file failed, in Chinese")
    report_url: str | None = Field(description="console URL of the problem-row report (.xlsx)")

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobRead:
        return cls(id=job.id, filename=job.filename, sha256=job.sha256, source=job.source,
                   assign_mode=job.assign_mode, pool_id=job.pool_id, status=jobs.shown_status(job), total=job.total,
                   message=jobs.shown_message(job), **service.counters(job),
                   report_url=f"/console/imports/{job.id}/report" if job.report_path else None)


@router.post("/imports", response_model=ImportJobRead, status_code=202, summary="上传文件批量导入线索（后台执行）",
             responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def create_import(session: SessionDep, caller: Caller, file: Annotated[UploadFile, File()],
                  source: Annotated[str | None, Form()] = None, assign: Annotated[str | None, Form()] = None,
                  pool_id: Annotated[int | None, Form()] = None) -> ImportJobRead:
    job = uploads.start(session, caller.viewer, file.file, file.filename or "", source=source,
                        assign_mode=assign or None, pool_id=pool_id)
    return ImportJobRead.of(job)


@router.get("/imports/{job_id}", response_model=ImportJobRead, summary="导入任务进度与结果",
            responses={404: {"model": ErrorBody}})
def read_import(session: SessionDep, caller: Caller, job_id: int) -> ImportJobRead:
    uploads.ensure_importer(caller.viewer)
    return ImportJobRead.of(service.get_job(session, caller.viewer, job_id))


@router.post("/imports/{job_id}/rerun", response_model=ImportJobRead, status_code=202,
             summary="重新运行失败或中断的导入任务（新任务，同一文件）",
             responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
def rerun_import(session: SessionDep, caller: Caller, job_id: int) -> ImportJobRead:
    return ImportJobRead.of(jobs.rerun(session, caller.viewer, job_id))
