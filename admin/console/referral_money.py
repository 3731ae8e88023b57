"""推荐佣金 console, money side: a referrer's ledger and balance, reversals, withdrawal approval,
payout batches with their transfer files, reports and monthly statements (Excel)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.console.referral_setup import REFERRAL_ROLES, Editor, Reader, Text, page
from admin.deps import ConsoleUser, CsrfChecked, attempt, require_roles
from core import clock, exports
from core.errors import ValidationFailed
from core.web import SessionDep
from referral import attribution, ledger, payouts, referrers, reports
from referral.models import ENTRY_KIND_LABELS, WITHDRAWAL_STATUS_LABELS

router = APIRouter(prefix="/console/referral", include_in_schema=False)

XLSX = exports.XLSX_MEDIA_TYPE


def _month(text: str | None) -> date:
    if text:
        try:
            year, month = (int(p) for p in text.split("-")[:2])
            return date(year, month, 1)
        except ValueError as exc:
            raise ValidationFailed("月份格式应为 YYYY-MM") from exc
    return clock.today().replace(day=1)


def _download(body: bytes, filename: str, media_type: str) -> Response:
    from urllib.parse import quote

    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}", "Cache-Control": "no-store"})


# --- a referrer's ledger -------------------------------------------------------------------------

def _referrer_page(request: Request, session: SessionDep, user: ConsoleUser, referrer_id: int, *,
                   error: Any = None, status_code: int = 200) -> Response:
    referrer = referrers.get_referrer(session, referrer_id)
    entries = ledger.entries(session, referrer_id, limit=300)
    reversed_ids = {e.reverses_entry_id for e in entries if e.reverses_entry_id}
    confirmed_ids = {e.confirms_entry_id for e in entries if e.confirms_entry_id}
    parent = referrers.get_referrer(session, referrer.parent_id) if referrer.parent_id else None
    ctx = {"referrer": referrer, "parent": parent, "balance": ledger.balance(session, referrer_id),
           "entries": entries, "reversed_ids": reversed_ids, "confirmed_ids": confirmed_ids,
           "entry_labels": ENTRY_KIND_LABELS, "invitees": attribution.list_attributions(session, user.viewer,
                                                                                       referrer_id=referrer_id),
           "month": clock.today().strftime("%Y-%m")}
    response = page(request, user, "referral/referrer.html", "referrers", ctx, error=error, status_code=status_code)
    return response


@router.get("/referrers/{referrer_id}")
def referrer_detail(request: Request, session: SessionDep, user: Reader, referrer_id: int) -> Response:
    return _referrer_page(request, session, user, referrer_id)


@router.post("/entries/{entry_id}/reverse", dependencies=[CsrfChecked])
def reverse_entry(request: Request, session: SessionDep, user: Reader, entry_id: int, referrer_id: Text = "",
                  reason: Text = "") -> Response:
    def action() -> object:
        if not reason.strip():
            raise ValidationFailed("请填写冲回原因（退款、作废或取消）")
        from core import audit

        new_id = ledger.reverse_entry(session, entry_id, reason.strip())
        audit.record(session, "referral.entry.reverse", entity_type="commission_entry", entity_id=entry_id,
                     after={"reversal_id": new_id}, detail=reason)
        return new_id

    _, error = attempt(session, action)
    rid = int(referrer_id) if referrer_id.isdigit() else 0
    if error is not None:
        return _referrer_page(request, session, user, rid, error=error, status_code=error.status)
    return RedirectResponse(f"/console/referral/referrers/{rid}?done=reversed", status_code=303)


@router.get("/referrers/{referrer_id}/statement.xlsx")
def statement(session: SessionDep, user: Reader, referrer_id: int, month: str = "") -> Response:
    st = reports.monthly_statement(session, referrer_id, _month(month))
    return _download(reports.statement_xlsx(st), f"月结单-{st.referrer.code}-{st.month:%Y-%m}.xlsx", XLSX)


# --- withdrawals ---------------------------------------------------------------------------------

def _withdrawals_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
                      status_code: int = 200) -> Response:
    status = request.query_params.get("status") or None
    return page(request, user, "referral/withdrawals.html", "withdrawals", {
        "export_params": export_params(session, user, dict(request.query_params)),
        "rows": payouts.list_withdrawals(session, status), "status": status or "",
        "status_labels": WITHDRAWAL_STATUS_LABELS,
        "channel_labels": payouts.CHANNEL_LABELS,
    }, error=error, status_code=status_code)


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of the withdrawal list (the referral roles): its filter as the job stores it."""
    require_roles(REFERRAL_ROLES)(user)
    status = form.get("status")
    return {"status": status} if status in WITHDRAWAL_STATUS_LABELS else {}


@router.get("/withdrawals")
def withdrawal_list(request: Request, session: SessionDep, user: Reader) -> Response:
    return _withdrawals_page(request, session, user)


@router.post("/withdrawals/{withdrawal_id}/approve", dependencies=[CsrfChecked])
def approve(request: Request, session: SessionDep, user: Reader, withdrawal_id: int) -> Response:
    _, error = attempt(session, lambda: payouts.approve(session, user.viewer, withdrawal_id))
    if error is not None:
        return _withdrawals_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/referral/withdrawals?done=approved", status_code=303)


@router.post("/withdrawals/{withdrawal_id}/reject", dependencies=[CsrfChecked])
def reject(request: Request, session: SessionDep, user: Reader, withdrawal_id: int, reason: Text = "") -> Response:
    _, error = attempt(session, lambda: payouts.reject(session, user.viewer, withdrawal_id, reason))
    if error is not None:
        return _withdrawals_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/referral/withdrawals?done=rejected", status_code=303)


# --- payout batches --------------------------------------------------------------------------------

def _batches_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
                  status_code: int = 200) -> Response:
    return page(request, user, "referral/batches.html", "batches", {
        "rows": payouts.list_batches(session), "channel_labels": payouts.CHANNEL_LABELS,
    }, error=error, status_code=status_code)


@router.get("/batches")
def batch_list(request: Request, session: SessionDep, user: Reader) -> Response:
    return _batches_page(request, session, user)


@router.post("/batches", dependencies=[CsrfChecked])
def create_batch(request: Request, session: SessionDep, user: Reader, channel: Text = "bank") -> Response:
    _, error = attempt(session, lambda: payouts.create_batch(session, user.viewer, channel))
    if error is not None:
        return _batches_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/referral/batches?done=batch", status_code=303)


@router.post("/batches/{batch_id}/paid", dependencies=[CsrfChecked])
def mark_paid(request: Request, session: SessionDep, user: Reader, batch_id: int) -> Response:
    _, error = attempt(session, lambda: payouts.mark_paid(session, user.viewer, batch_id))
    if error is not None:
        return _batches_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/referral/batches?done=paid", status_code=303)


@router.get("/batches/{batch_id}/export.{fmt}")
def export_batch(session: SessionDep, user: Reader, batch_id: int, fmt: str) -> Response:
    if fmt == "csv":
        return _download(payouts.export_csv(session, user.viewer, batch_id), f"佣金发放-{batch_id}.csv",
                         exports.CSV_MEDIA_TYPE)
    if fmt == "xlsx":
        return _download(payouts.export_xlsx(session, user.viewer, batch_id), f"佣金发放-{batch_id}.xlsx", XLSX)
    raise ValidationFailed("导出格式只能是 csv 或 xlsx")


# --- reports ---------------------------------------------------------------------------------------

@router.get("/reports")
def report_page(request: Request, session: SessionDep, user: Reader, month: str = "", kind: str = "") -> Response:
    chosen = _month(month) if month else None
    return page(request, user, "referral/reports.html", "reports", {
        "month": month, "kind": kind,
        "rows": reports.referrer_report(session, kind=kind or None, month=chosen),
        "leaders": reports.leaderboard(session, month=chosen or clock.today().replace(day=1)),
        "sales": reports.salesperson_report(session, user.viewer, month=chosen),
        "this_month": clock.today().strftime("%Y-%m"),
    })


@router.get("/reports/export.xlsx")
def report_export(session: SessionDep, user: Reader, month: str = "", kind: str = "") -> Response:
    rows = reports.referrer_report(session, kind=kind or None, month=_month(month) if month else None)
    return _download(reports.referrer_report_xlsx(rows), f"推荐人报表-{month or '全部'}.xlsx", XLSX)


__all__ = ["Editor", "router"]
