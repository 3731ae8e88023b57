"""Finance center pages: 做单报销 (list with customer, agreement, funder type, amount, category, confirmation,
payer, paid at, entered by, status; submit, confirm, pay, void, resubmit) and 财务业绩 (filters by department,
salesperson and period; per salesperson and by funder type)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.console.finance_cases import staff_names
from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render
from core import clock
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm.models import Customer, Department, Staff, StaffStatus
from crm.scope import department_filter, owner_filter, staff_filter
from finance import agreements, performance, reimbursements
from finance.access import FINANCE, REPORT_READERS, require
from finance.amounts import yuan_text
from finance.models import METHOD_LABELS, REIMBURSEMENT_STATUS_LABELS
from lending.contracts import mask_name

router = APIRouter(prefix="/console/finance", include_in_schema=False)
NOTICES = {"submitted": "报销已提交，等待财务确认", "confirmed": "报销已确认入账", "paid": "报销已支付",
           "voided": "报销已作废", "resubmitted": "已重新提交"}


def _list(request: Request, session: SessionDep, user: ConsoleUser, error: AppError | None = None,
          form: dict[str, str] | None = None) -> Response:
    status = _status(request.query_params)
    rows = reimbursements.listing(session, user.viewer, status=status)
    ids = {r[0].entered_by_staff_id for r in rows} | {r[0].paid_by_staff_id for r in rows}
    ids |= {r[0].approved_by_manager_id for r in rows} | {r[0].confirmed_by_staff_id for r in rows}
    cases = agreements.list_agreements(session, user.viewer, limit=200)
    managers = list(session.execute(select(Staff.id, Staff.display_name).where(
        Staff.status == StaffStatus.ACTIVE, Staff.role.in_(("manager", "supervisor"))).order_by(Staff.display_name)))
    customers = list(session.execute(select(Customer.id, Customer.name).where(
        owner_filter(user.viewer, Customer.owner_id)).order_by(Customer.id.desc()).limit(200)))
    return render(request, "finance/reimbursements.html", {
        "customers": customers,
        "rows": rows, "status": status, "statuses": REIMBURSEMENT_STATUS_LABELS, "names": staff_names(session, ids),
        "mask_name": mask_name, "is_finance": user.viewer.role in FINANCE, "methods": METHOD_LABELS,
        "categories": reimbursements.CATEGORIES, "marketing_categories": reimbursements.MARKETING_CATEGORIES,
        "cases": [(a, c) for a, c in cases if a.status not in ("cancelled",)], "managers": managers,
        "error": error, "form": form or {}, "me_id": user.viewer.staff_id,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "export_params": {"status": status} if status else {},
    }, status_code=error.status if error else 200)


def _status(q: Any) -> str | None:
    return q.get("status") if q.get("status") in REIMBURSEMENT_STATUS_LABELS else None


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of 做单报销: the status filter as the job stores it (the scope is the requester's)."""
    status = _status(form)
    return {"status": status} if status else {}


@router.get("/reimbursements")
def reimbursement_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _list(request, session, user)


def _run(request: Request, session: SessionDep, user: ConsoleUser, action: Any, done: str,
         form: dict[str, str] | None = None) -> Response:
    _, error = attempt(session, action)
    if error is not None:
        return _list(request, session, user, error, form)
    return RedirectResponse(f"/console/finance/reimbursements?done={done}", status_code=303)


@router.post("/reimbursements", dependencies=[CsrfChecked])
async def submit(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}

    marketing = form.get("kind") == "marketing"

    def run() -> Any:
        agreement_id = customer_id = None
        if marketing:  # 营销费用: per customer, no case
            customer_id = parse_int(form.get("customer_id"))
            if customer_id is None:
                raise ValidationFailed("请选择客户", field="customer_id")
        else:
            agreement_id = parse_int(form.get("agreement_id"))
            if agreement_id is None:
                raise ValidationFailed("请选择案件", field="agreement_id")
        spent = form.get("spent_date", "").strip()
        try:
            day = date.fromisoformat(spent) if spent else None
        except ValueError:
            raise ValidationFailed(f"发生日期格式不正确：{spent}", field="spent_date") from None
        return reimbursements.submit(
            session, agreement_id=agreement_id, customer_id=customer_id, category=form.get("category", ""),
            amount=yuan_text(form.get("amount"), "报销金额", "amount"), spent_date=day,
            approved_by_manager_id=parse_int(form.get("approved_by_manager_id")), note=form.get("note"),
            viewer=user.viewer)

    return _run(request, session, user, run, "submitted", form)


@router.post("/reimbursements/{reimbursement_id}/{action}", dependencies=[CsrfChecked])
async def act(reimbursement_id: int, action: str, request: Request, session: SessionDep,
              user: CurrentUser) -> Response:
    form = await request.form()
    actions = {
        "confirm": lambda: reimbursements.confirm(session, reimbursement_id, viewer=user.viewer),
        "pay": lambda: reimbursements.pay(session, reimbursement_id, method=str(form.get("method", "")),
                                          viewer=user.viewer),
        "void": lambda: reimbursements.void(session, reimbursement_id, reason=str(form.get("reason", "")),
                                            viewer=user.viewer),
        "resubmit": lambda: reimbursements.resubmit(
            session, reimbursement_id, viewer=user.viewer,
            amount=yuan_text(str(form.get("amount", "")), "报销金额", "amount", required=False)),
    }
    if action not in actions:
        raise ValidationFailed("未知操作")
    reimbursements.get(session, user.viewer, reimbursement_id)
    done = {"confirm": "confirmed", "pay": "paid", "void": "voided", "resubmit": "resubmitted"}[action]
    return _run(request, session, user, actions[action], done)


@router.get("/performance")
def performance_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require(user.viewer, REPORT_READERS, "查看财务业绩")
    q = request.query_params
    today = clock.today()

    def day(name: str, default: date) -> date:
        try:
            return date.fromisoformat(q.get(name, "").strip()) if q.get(name, "").strip() else default
        except ValueError:
            return default

    since, until = day("since", today.replace(day=1) - timedelta(days=62)), day("until", today)
    department_id, salesperson_id = parse_int(q.get("department_id")), parse_int(q.get("salesperson_id"))
    lines, funders = performance.report(session, user.viewer, since=since, until=until,
                                        department_id=department_id, salesperson_id=salesperson_id)
    departments = list(session.execute(select(Department.id, Department.name)
                                       .where(department_filter(user.viewer, Department.path))
                                       .order_by(Department.path)))
    people = list(session.execute(select(Staff.id, Staff.display_name).where(
        staff_filter(user.viewer), Staff.role.in_(("sales", "supervisor"))).order_by(Staff.display_name)))
    totals = {k: sum(getattr(x, k) for x in lines) for k in ("signed_count", "signed_amount", "disbursed_amount",
                                                             "revenue_amount")}
    return render(request, "finance/performance.html", {
        "lines": lines, "funders": funders, "since": since, "until": until, "department_id": department_id,
        "salesperson_id": salesperson_id, "departments": departments, "people": people, "totals": totals})
