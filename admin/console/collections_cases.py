"""Collections pages (贷后催收): the case queue and the case page (script, one-click outcomes, promise, history,
take / assign / write-off).

Routes parse forms and call ``postloan.cases`` inside a savepoint (``attempt``); every form carries the CSRF
token; a case out of the viewer's scope is 404. The phone is shown masked and never revealed here: the 拨打
button has the server dial it (``admin.console.telephony``), and every dial is audit-logged.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, templates
from admin.pagination import page_number
from admin.schemas_customers import yuan_text_to_fen
from analytics import export_jobs
from analytics.export_kinds import CaseFilter
from core.errors import AppError, PermissionDenied, ValidationFailed
from core.web import SessionDep
from crm.models import Customer, Staff, StaffStatus
from crm.permissions import holder_roles
from lending import contracts
from lending.models import BUCKETS, Contract, Loan
from postloan import actions, cases, scripts
from postloan.models import (
    ACTION_KIND_LABELS,
    CASE_CLOSE_LABELS,
    CASE_STATUS_LABELS,
    OUTCOME_LABELS,
    PROMISE_STATUS_LABELS,
    RISK_TIER_LABELS,
)

router = APIRouter(prefix="/console/collections", include_in_schema=False)

NOTICES = {"taken": "已领取该案件", "outcome": "催收结果已登记", "action": "催收记录已保存", "assigned": "案件分配已更新",
           "closed": "案件已结案", "tier": "风险等级已调整"}

templates.env.filters.update(
    risk_tier_label=lambda v: RISK_TIER_LABELS.get(v, v),
    case_status_label=lambda v: CASE_STATUS_LABELS.get(v, v),
    case_close_label=lambda v: CASE_CLOSE_LABELS.get(v, v),
    collection_kind_label=lambda v: ACTION_KIND_LABELS.get(v, v),
    collection_promise_label=lambda v: PROMISE_STATUS_LABELS.get(v, v),
)


def _staff_only(user: ConsoleUser) -> None:
    if user.viewer.role not in actions.COLLECTORS | actions.MANAGERS:
        raise PermissionDenied("只有催收、风控、经理或管理员可以查看催收案件")


def _date(raw: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(f"承诺还款日期格式不正确：{raw}", field="promised_date") from None


def _filters(q: Any) -> dict[str, Any]:
    return {"bucket": q.get("bucket") if q.get("bucket") in BUCKETS[1:] else "",
            "tier": q.get("tier") if q.get("tier") in RISK_TIER_LABELS else "",
            "status": "closed" if q.get("status") == "closed" else "open",
            "mine": q.get("mine") == "1", "unassigned": q.get("unassigned") == "1"}


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of the case queue: its filters as the job stores them."""
    _staff_only(user)
    f = _filters(form)
    return export_jobs.dataclass_params(CaseFilter(status=f["status"], bucket=f["bucket"] or None,
                                                   risk_tier=f["tier"] or None, mine=f["mine"],
                                                   unassigned=f["unassigned"]))


@router.get("/cases")
def case_queue(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _staff_only(user)
    q = request.query_params
    page = page_number(q.get("page"))
    filters = _filters(q)
    rows = cases.queue(session, user.viewer, status=filters["status"], bucket=filters["bucket"] or None,
                       risk_tier=filters["tier"] or None, mine=filters["mine"], unassigned=filters["unassigned"],
                       limit=51, offset=(page - 1) * 50)
    query = urlencode({k: ("1" if v is True else v) for k, v in filters.items() if v})
    return render(request, "collections/cases.html", {
        "tab": "cases", "is_manager": user.viewer.role in actions.MANAGERS, "rows": rows[:50], "has_next": len(rows) > 50, "page": page, "filters": filters, "query": query,
        "buckets": BUCKETS[1:], "tiers": RISK_TIER_LABELS, "mask_name": contracts.mask_name,
        "export_params": export_params(session, user, dict(q)),
    })


def _context(session: SessionDep, user: ConsoleUser, case_id: int) -> dict[str, Any]:
    case = cases.get_case(session, user.viewer, case_id)
    loan = session.get(Loan, case.loan_id)
    assert loan is not None
    customer = session.get(Customer, case.customer_id)
    contract = session.get(Contract, loan.contract_id)
    script, script_text = scripts.render_for(session, case)
    role = user.viewer.role
    collectors = []
    if role in actions.MANAGERS:
        collectors = list(session.scalars(select(Staff).where(Staff.role.in_(holder_roles(session, actions.COLLECTORS)),
                                                              Staff.status == StaffStatus.ACTIVE)
                                          .order_by(Staff.display_name).limit(200)))
    collector = session.get(Staff, case.collector_staff_id) if case.collector_staff_id else None
    return {
        "case": case, "loan": loan, "c": customer, "contract": contract, "mask_name": contracts.mask_name,
        "script": script, "script_text": script_text, "history": cases.history_of(session, case),
        "collector": collector, "collectors": collectors, "outcomes": OUTCOME_LABELS,
        "action_kinds": {k: ACTION_KIND_LABELS[k] for k in actions.LOGGED_KINDS},
        "can_take": case.status == "open" and case.collector_staff_id is None and role in actions.COLLECTORS,
        "can_work": case.status == "open" and (role in actions.MANAGERS or case.collector_staff_id == user.viewer.staff_id),
        "is_manager": role in actions.MANAGERS, "close_reasons": CASE_CLOSE_LABELS, "tiers": RISK_TIER_LABELS,
    }


def _page(request: Request, session: SessionDep, user: ConsoleUser, case_id: int, *, error: AppError | None = None,
          form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    ctx = _context(session, user, case_id)
    ctx.update(error=error, form=form or {}, notice=NOTICES.get(request.query_params.get("done", "")))
    return render(request, "collections/case.html", ctx, status_code=status_code)


def _redirect(case_id: int, done: str) -> Response:
    return RedirectResponse(f"/console/collections/cases/{case_id}?done={done}", status_code=303)


@router.get("/cases/{case_id}")
def case_page(case_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _staff_only(user)
    return _page(request, session, user, case_id)


@router.post("/cases/{case_id}/take", dependencies=[CsrfChecked])
def take(case_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _, error = attempt(session, lambda: cases.take_case(session, case_id, viewer=user.viewer))
    if error:
        return _page(request, session, user, case_id, error=error, status_code=error.status)
    return _redirect(case_id, "taken")


@router.post("/cases/{case_id}/outcome", dependencies=[CsrfChecked])
def outcome(case_id: int, request: Request, session: SessionDep, user: CurrentUser,
            outcome: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
            promised_date: Annotated[str, Form()] = "", promised_amount: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        return cases.record_outcome(
            session, case_id, viewer=user.viewer, outcome=outcome, note=note,
            promised_date=_date(promised_date) if outcome == "promise" else None,
            promised_amount=(yuan_text_to_fen(promised_amount, "promised_amount", "承诺还款金额")
                             if outcome == "promise" else None))

    _, error = attempt(session, run)
    if error:
        form = {"note": note, "promised_date": promised_date, "promised_amount": promised_amount}
        return _page(request, session, user, case_id, error=error, form=form, status_code=error.status)
    return _redirect(case_id, "outcome")


@router.post("/cases/{case_id}/actions", dependencies=[CsrfChecked])
def action(case_id: int, request: Request, session: SessionDep, user: CurrentUser,
           kind: Annotated[str, Form()] = "", outcome: Annotated[str, Form()] = "",
           note: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: cases.record_action(session, case_id, viewer=user.viewer, kind=kind,
                                                            outcome=outcome, note=note))
    if error:
        return _page(request, session, user, case_id, error=error, form={"kind": kind, "note": note},
                     status_code=error.status)
    return _redirect(case_id, "action")


@router.post("/cases/{case_id}/assign", dependencies=[CsrfChecked])
def assign(case_id: int, request: Request, session: SessionDep, user: CurrentUser,
           collector_id: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: cases.assign_case(session, case_id, parse_int(collector_id),
                                                          viewer=user.viewer))
    if error:
        return _page(request, session, user, case_id, error=error, status_code=error.status)
    return _redirect(case_id, "assigned")


@router.post("/cases/{case_id}/tier", dependencies=[CsrfChecked])
def set_tier(case_id: int, request: Request, session: SessionDep, user: CurrentUser,
             risk_tier: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: cases.set_tier(session, case_id, risk_tier, viewer=user.viewer,
                                                       reason=reason))
    if error:
        return _page(request, session, user, case_id, error=error, form={"reason": reason}, status_code=error.status)
    return _redirect(case_id, "tier")


@router.post("/cases/{case_id}/close", dependencies=[CsrfChecked])
def close(case_id: int, request: Request, session: SessionDep, user: CurrentUser,
          reason: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: cases.close_case(session, case_id, reason, viewer=user.viewer, note=note))
    if error:
        return _page(request, session, user, case_id, error=error, status_code=error.status)
    return _redirect(case_id, "closed")
