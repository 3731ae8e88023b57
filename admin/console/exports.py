"""导出任务: request a background Excel export of a console list (``POST /console/exports/{kind}`` with the list's
current filters, from the list's 导出 Excel button), then its page — its progress bar (htmx polls the fragment until
the job ends) and the download link, all for the requester only (anyone else gets 记录不存在).

Each list module parses its own filters for the export with the parser its page uses (``export_params``): the
job stores the result and ``analytics.export_kinds`` rebuilds the list's SELECT from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.console import (
    collections_cases,
    customers,
    finance_cases,
    finance_reports,
    finance_settlements,
    lending_applications,
    lending_bills,
    lending_loans,
    payments,
    pool,
    referral_money,
    referral_setup,
)
from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, render
from analytics import export_jobs
from analytics.models import EXPORT_STATUS_LABELS, ExportJob
from core import exports
from core.errors import NotFound
from core.web import SessionDep

router = APIRouter(prefix="/console/exports", include_in_schema=False)

# kind -> the list's parser of its filters for the export (it also checks that the user may see the list)
ExportParams = Callable[[Session, ConsoleUser, dict[str, str]], dict[str, Any]]
LISTS: dict[str, ExportParams] = {
    "customers": customers.export_params, "pool": pool.export_params, "loans": lending_loans.export_params,
    "agreements": finance_cases.agreement_export_params, "deposits": finance_cases.deposit_export_params,
    "settlements": finance_settlements.export_params, "cases": collections_cases.export_params,
    "withdrawals": referral_money.export_params, "referrers": referral_setup.referrer_export_params,
    "applications": lending_applications.export_params, "payment_orders": payments.export_params,
    "reimbursements": finance_reports.export_params, "bills": lending_bills.export_params,
}


@router.post("/{kind}", dependencies=[CsrfChecked])
async def start(kind: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """导出 Excel: the list with the same filters, as a background job; its page shows the progress."""
    parse = LISTS.get(kind)
    if parse is None:
        raise NotFound("没有这种导出")
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    job = export_jobs.request(session, user.viewer, kind, parse(session, user, form))
    return RedirectResponse(f"/console/exports/{job.id}", status_code=303)


def _context(job: ExportJob) -> dict[str, object]:
    total = job.total_rows or 0
    percent = 100 if job.status == "done" else (min(99, job.done_rows * 100 // total) if total else 0)
    return {"job": job, "title": export_jobs.kind_of(job.kind).title, "percent": percent,
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
    title = export_jobs.kind_of(job.kind).title
    return FileResponse(path, media_type=exports.XLSX_MEDIA_TYPE, filename=f"{title}-{job.id}.xlsx",
                        headers={"Cache-Control": "private, no-store"})
