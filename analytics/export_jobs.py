"""Large list exports as background jobs (导出任务): requested in the console, written by the task
``analytics.run_export`` through :mod:`core.exports` (streamed: rows are read in batches by key and written one by one,
so memory stays flat whatever the size; text cells can never become formulas), downloadable by their requester
only.

An export kind names a list and knows how to rebuild its filter from the stored parameters: the rows written
are the list's own SELECT (scope and filters) for the requester, read batch by batch while the job runs (a row
changed meanwhile is written as it was when its batch was read).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from analytics import metrics, reports
from analytics.metrics import join_customer
from analytics.models import ExportJob
from core import audit, clock, exports, outbox
from core.db import unit_of_work
from core.errors import NotFound
from core.money import fen_to_yuan
from core.settings import get_settings
from crm.models import Customer, Staff
from crm.scope import Viewer
from lending.contracts import mask_name
from lending.models import BUCKET_LABELS, Contract, Loan
from lending.servicing import loans

__all__ = ["EXPORTS", "EXPORT_TASK", "ExportNotFound", "file_path", "get_job", "request", "run"]

EXPORT_TASK = "analytics.run_export"
log = logging.getLogger(__name__)
BATCH = 2000  # rows read (and progress written) per unit of work
LOAN_STATUS = {"active": "在贷", "closed": "已结清"}


class ExportNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("导出任务不存在")


@dataclass(frozen=True)
class Export:
    title: str  # the sheet's and the file's name
    header: list[str] | Callable[[Session, Viewer, dict[str, Any]], list[str]]  # fixed, or the job's own
    count: Callable[[Session, Viewer, dict[str, Any]], int]
    # one batch of rows after the key ``after`` (keyset pagination, key order): [(key, cells), …]
    batch: Callable[[Session, Viewer, dict[str, Any], int, int], list[tuple[int, list[Any]]]]


# --- the loan list -------------------------------------------------------------------------------------------


def loan_filter(params: dict[str, Any]) -> loans.LoanFilter:
    names = {f.name for f in fields(loans.LoanFilter)}
    values = {k: v for k, v in params.items() if k in names and v not in (None, "")}
    for key in ("disbursed_from", "disbursed_to"):
        if key in values:
            values[key] = date.fromisoformat(values[key])
    return loans.LoanFilter(**values)


def loan_params(flt: loans.LoanFilter) -> dict[str, Any]:
    """What a job stores of a loan filter (JSON: dates as ISO text)."""
    out = {}
    for f in fields(loans.LoanFilter):
        value = getattr(flt, f.name)
        if value not in (None, ""):
            out[f.name] = value.isoformat() if isinstance(value, date) else value
    return out


def _loan_select(viewer: Viewer, params: dict[str, Any]):  # noqa: ANN202 - a Select
    all_, _ = loans._outstanding()  # noqa: SLF001 - the list's own outstanding column
    return (select(Contract.number, Customer.name, Loan.principal_amount, Loan.start_date, Loan.status, Loan.bucket,
                   Loan.overdue_days, all_)
            .select_from(Loan).join(Customer, Customer.id == Loan.customer_id)
            .join(Contract, Contract.id == Loan.contract_id)
            .where(*loans.filter_clauses(viewer, loan_filter(params))))


def _loan_count(session: Session, viewer: Viewer, params: dict[str, Any]) -> int:
    lf = loan_filter(params)
    stmt = join_customer(select(func.count(Loan.id)).select_from(Loan), viewer, lf).where(
        *loans.filter_clauses(viewer, lf))
    return int(session.scalar(stmt) or 0)


def _loan_batch(session: Session, viewer: Viewer, params: dict[str, Any], after: int,
                limit: int) -> list[tuple[int, list[Any]]]:
    stmt = _loan_select(viewer, params).add_columns(Loan.id).where(Loan.id > after).order_by(Loan.id).limit(limit)
    return [(loan_id, [number, mask_name(name), fen_to_yuan(principal), start.isoformat(),
                       LOAN_STATUS.get(status, status), BUCKET_LABELS.get(bucket, bucket), overdue_days,
                       fen_to_yuan(int(outstanding or 0))])
            for number, name, principal, start, status, bucket, overdue_days, outstanding, loan_id
            in session.execute(stmt)]


# --- a saved report (自定义报表) -------------------------------------------------------------------------------


def _report_result(session: Session, viewer: Viewer, params: dict[str, Any]) -> reports.Result:
    """The report run for the requester (their scope); one who may no longer run it gets nothing (not found)."""
    return reports.run(session, viewer, reports.get_for_run(session, viewer, int(params["report_id"])))


def _report_cell(value: Any, unit: str) -> Any:
    if value is None:
        return None
    if unit == "fen":
        return fen_to_yuan(int(value))
    if unit == "rate":
        return metrics.display(value, unit)
    return int(value)


def _report_rows(result: reports.Result) -> list[list[Any]]:
    rows = [*result.rows, *([result.totals] if result.totals else [])]
    return [[row.label, *(_report_cell(c.value, m.unit) for m, c in zip(result.columns, row.cells, strict=True))]
            for row in rows]


def report_header(result: reports.Result) -> list[str]:
    return [result.dimension_label, *(f"{m.label}(元)" if m.unit == "fen" else m.label for m in result.columns)]


def _report_header(session: Session, viewer: Viewer, params: dict[str, Any]) -> list[str]:
    return report_header(_report_result(session, viewer, params))


def _report_count(session: Session, viewer: Viewer, params: dict[str, Any]) -> int:
    return len(_report_rows(_report_result(session, viewer, params)))


def _report_batch(session: Session, viewer: Viewer, params: dict[str, Any], after: int,
                  limit: int) -> list[tuple[int, list[Any]]]:
    """A report is a few hundred grouped rows at most (one per dimension value): run once per batch, each row
    keyed by its position."""
    rows = list(enumerate(_report_rows(_report_result(session, viewer, params)), start=1))
    return [(key, cells) for key, cells in rows if key > after][:limit]


EXPORTS: dict[str, Export] = {
    "loans": Export("贷款列表", ["合同编号", "客户", "放款本金(元)", "放款日", "状态", "账期", "逾期天数", "未还合计(元)"],
                    _loan_count, _loan_batch),
    "report": Export("自定义报表", _report_header, _report_count, _report_batch),
}


# --- the job ---------------------------------------------------------------------------------------------


def request(session: Session, viewer: Viewer, kind: str, params: dict[str, Any]) -> ExportJob:
    """Record the job and enqueue its task (sent once this unit of work commits)."""
    if kind not in EXPORTS:
        raise ExportNotFound()
    job = ExportJob(kind=kind, params=params, requested_by_staff_id=viewer.staff_id, status="queued",
                    created_at=clock.now())
    session.add(job)
    session.flush()
    outbox.enqueue(session, EXPORT_TASK, job.id)
    audit.record(session, "analytics.export_requested", entity_type="analytics_export_job", entity_id=job.id,
                 after={"kind": kind, "params": params})
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
    export = EXPORTS[kind]
    name = f"{job_id}-{secrets.token_hex(8)}.xlsx"
    target = Path(get_settings().export_dir)
    target.mkdir(parents=True, exist_ok=True)
    try:
        with unit_of_work() as session:
            viewer = Viewer.of(session.get(Staff, staff_id))
            total = export.count(session, viewer, params)
            header = export.header(session, viewer, params) if callable(export.header) else export.header
            session.execute(update(ExportJob).where(ExportJob.id == job_id).values(total_rows=total)
                            .execution_options(synchronize_session=False))
        done, after = 0, 0
        with exports.XlsxWriter(target / name) as book:
            sheet = book.sheet(export.title, header=header)
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
