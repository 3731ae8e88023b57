"""Handover pages (离职交接 / 在职转接): the cases list, opening a departure case from a staff member's
page, an in-service case for chosen customers, the case page (customers with masked phones, open tasks
and visits, the plan with per-customer overrides), execution, and per-customer results with the WeCom
transfer status. Managers and admins only, inside their data scope; rules live in crm.handover."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from admin.pagination import counted, page_number
from core.audit import AuditLog
from core.errors import AppError
from core.web import SessionDep
from crm import customers, handover, handover_flows, org_service
from crm.handover import Plan, Target
from crm.handover_exceptions import HandoverInvalid
from crm.models import (
    CASE_STATUS_LABELS,
    HANDOVER_KIND_LABELS,
    ITEM_STATUS_LABELS,
    SKIP_REASON_LABELS,
    STAGE_LABELS,
    TRANSFER_STATUS_LABELS,
    Customer,
    CustomerStatus,
    Pool,
    Staff,
)
from crm.scope import Viewer

router = APIRouter(prefix="/console/handover", include_in_schema=False)

HandoverManager = Annotated[ConsoleUser, Depends(require_roles(nav.HANDOVER_MANAGERS))]
PAGE = 50
NOTICES = {"opened": "交接单已创建，请选择交接方式后执行", "cancelled": "交接单已取消"}
LABELS = {
    "case_status_labels": CASE_STATUS_LABELS, "kind_labels": HANDOVER_KIND_LABELS,
    "item_status_labels": ITEM_STATUS_LABELS, "skip_labels": SKIP_REASON_LABELS,
    "transfer_labels": TRANSFER_STATUS_LABELS, "stage_labels": STAGE_LABELS,
}


def _successor_choices(session: Session, viewer: Viewer, exclude: int) -> list[Staff]:
    return [s for s in org_service.owner_choices(session, viewer) if s.id != exclude]  # who may own customers


def _pool_choices(session: Session, viewer: Viewer) -> list[Pool]:
    return list(session.scalars(select(Pool).where(customers.pool_visible_clause(viewer)).order_by(Pool.id)))


@router.get("")
def case_list(request: Request, session: SessionDep, user: HandoverManager, status: str = "",
              page: str = "1") -> Response:
    number = page_number(page)
    rows, total = handover.list_cases(session, user.viewer, status=status or None, limit=20,
                                      offset=(number - 1) * 20)
    return render(request, "handover/list.html", {
        "rows": rows, "status": status, "page": counted(number, total, "/console/handover", {"status": status}),
        **LABELS,
    })


def _new_page(request: Request, session: Session, user: ConsoleUser, staff_id: int,
              error: AppError | None = None) -> Response:
    target = handover.ensure_may_hand_over(session, user.viewer, staff_id)
    owned = session.scalar(select(func.count()).select_from(Customer).where(
        Customer.owner_id == target.id, Customer.status == CustomerStatus.OWNED)) or 0
    recent = list(session.scalars(select(Customer).where(
        Customer.owner_id == target.id, Customer.status == CustomerStatus.OWNED).order_by(Customer.id).limit(200)))
    return render(request, "handover/new.html", {
        "target": target, "owned": owned, "recent": recent, "error": error, **LABELS,
    }, status_code=error.status if error else 200)


@router.get("/new")
def new_case(request: Request, session: SessionDep, user: HandoverManager, staff_id: str = "") -> Response:
    sid = parse_int(staff_id)
    if sid is None:
        return RedirectResponse("/console/staff", status_code=303)
    return _new_page(request, session, user, sid)


@router.post("/new", dependencies=[CsrfChecked])
async def open_case(request: Request, session: SessionDep, user: HandoverManager) -> Response:
    form = await request.form()
    sid = parse_int(str(form.get("staff_id", "")))
    kind = str(form.get("kind", "departure"))
    note = str(form.get("note", "")).strip() or None
    if sid is None:
        return RedirectResponse("/console/staff", status_code=303)
    if kind == "in_service":
        ids = [int(v) for v in form.getlist("customer_id") if str(v).isdigit()]
        action: Any = lambda: handover.open_in_service_case(session, user.viewer, sid, ids, note)  # noqa: E731
    else:
        action = lambda: handover_flows.start_departure(session, user.viewer, sid, note)  # noqa: E731
    case, error = await run_in_threadpool(attempt, session, action)
    if error or case is None:
        return await run_in_threadpool(_new_page, request, session, user, sid, error)
    return RedirectResponse(f"/console/handover/{case.id}?done=opened", status_code=303)


def _case_page(request: Request, session: Session, user: ConsoleUser, case_id: int, *, page: str = "1",
               status: str = "", error: AppError | None = None, form: dict[str, Any] | None = None) -> Response:
    case = handover.get_case(session, user.viewer, case_id)
    from_staff = org_service.get_staff(session, case.from_staff_id)
    number = page_number(page)
    rows, total = handover.case_rows(session, user.viewer, case.id, status=status or None, limit=PAGE,
                                     offset=(number - 1) * PAGE)
    is_open = case.status == "open"
    # In-service customers WeCom would refuse (2 transfers in 90 days) are flagged before execution.
    limited = handover.over_in_service_limit(
        session, [r.customer.id for r in rows if r.customer.wecom_external_userid]) \
        if is_open and case.kind == "in_service" else set()
    names = {}
    if case.summary:
        ids = [int(k) for k in case.summary.get("to_staff", {})]
        names = dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids))).all()) if ids else {}
    return render(request, "handover/case.html", {
        "case": case, "from_staff": from_staff, "rows": rows, "counts": handover.case_counts(session, case.id),
        "page": counted(number, total, f"/console/handover/{case.id}", {"status": status}, PAGE),
        "status": status, "is_open": is_open, "error": error, "form": form or {"mode": "successor"},
        "work_items": handover.open_work_items(session, case.from_staff_id) if is_open else [],
        "successors": _successor_choices(session, user.viewer, case.from_staff_id) if is_open else [],
        "departments": org_service.list_departments(session, user.viewer) if is_open else [],
        "pools": _pool_choices(session, user.viewer) if is_open else [],
        "successor_names": names, "limited": limited, "notice": NOTICES.get(request.query_params.get("done", "")),
        "chat_transfers": _chat_transfers(session, case.id), **LABELS,
    }, status_code=error.status if error else 200)


def _chat_transfers(session: Session, case_id: int) -> list[AuditLog]:
    """The bot's group-chat transfers of a departed owner, audit-logged on the case (bot.transfers)."""
    return list(session.scalars(select(AuditLog).where(
        AuditLog.action == "wecom.groupchat.transfer", AuditLog.entity_type == "handover_case",
        AuditLog.entity_id == str(case_id)).order_by(AuditLog.id)))


@router.get("/{case_id}")
def case_detail(request: Request, session: SessionDep, user: HandoverManager, case_id: int, page: str = "1",
                status: str = "") -> Response:
    return _case_page(request, session, user, case_id, page=page, status=status)


def plan_from_form(form: FormData) -> Plan:
    """mode, to_staff_id, department_id, pool_id, allow_over_capacity, override_<customer id>=staff:N|pool:N."""
    overrides: dict[int, Target] = {}
    for key, value in form.multi_items():
        if key.startswith("override_") and str(value).strip():
            cid = parse_int(key.removeprefix("override_"))
            if cid is None:
                raise HandoverInvalid(f"无法识别的客户：{key}")
            overrides[cid] = Target.parse(str(value).strip())
    return Plan(mode=str(form.get("mode", "")), to_staff_id=parse_int(str(form.get("to_staff_id", ""))),
                department_id=parse_int(str(form.get("department_id", ""))),
                pool_id=parse_int(str(form.get("pool_id", ""))), overrides=overrides,
                allow_over_capacity=form.get("allow_over_capacity") == "1")


@router.post("/{case_id}/execute", dependencies=[CsrfChecked])
async def execute(request: Request, session: SessionDep, user: HandoverManager, case_id: int) -> Response:
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}

    def run() -> Any:
        return handover_flows.execute_case(session, user.viewer, case_id, plan_from_form(form))

    _, error = await run_in_threadpool(attempt, session, run)
    if error:
        return await run_in_threadpool(lambda: _case_page(request, session, user, case_id, error=error,
                                                          form=values))
    return RedirectResponse(f"/console/handover/{case_id}", status_code=303)


@router.post("/{case_id}/cancel", dependencies=[CsrfChecked])
def cancel(request: Request, session: SessionDep, user: HandoverManager, case_id: int) -> Response:
    _, error = attempt(session, lambda: handover.cancel_case(session, user.viewer, case_id))
    if error:
        return _case_page(request, session, user, case_id, error=error)
    return RedirectResponse(f"/console/handover/{case_id}?done=cancelled", status_code=303)
