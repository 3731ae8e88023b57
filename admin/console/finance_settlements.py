"""Finance center pages (财务中心) after disbursement: 结算管理 (list, export), the settlement page (charge with
discount, split payment, added fees and rebates; voucher confirmations; 结单; fee refunds), the printable
customer and internal vouchers (客户凭证 / 内部凭证), and the ledger (科目余额, 总账校验, 月结).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.console.finance_cases import staff_names
from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, require_roles
from analytics import export_jobs
from analytics.export_kinds import SettlementFilter
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm.models import Customer
from finance import deposits, ledger, settlements
from finance import payment_purposes as fee_purposes
from finance.access import FINANCE, require
from finance.amounts import rate_text, yuan_text
from finance.models import (
    DISCOUNT_KIND_LABELS,
    FUNDER_KIND_LABELS,
    METHOD_LABELS,
    SETTLEMENT_STATUS_LABELS,
    Account,
    Agreement,
)
from lending.contracts import mask_name

router = APIRouter(prefix="/console/finance", include_in_schema=False)
NOTICES = {"charged": "收费已保存，请做单专员、做单主管与营销专员确认内部凭证", "confirmed": "已确认内部凭证",
           "settled": "已结单，案件已结算并入账", "fee_refunded": "服务费已退，相关员工佣金已冲回",
           "withholding": "已发起代扣，扣款结果到达后自动入账",
           "closed": "月结完成", "fee_type": "费用类型已添加"}
PAYMENT_ROWS = 3
REBATE_ROWS = 2


def _filters(q: Any) -> dict[str, Any]:

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(q.get(name, "").strip()) if q.get(name, "").strip() else None
        except ValueError:
            return None

    return {"status": q.get("status") if q.get("status") in SETTLEMENT_STATUS_LABELS else None,
            "funder_type": q.get("funder_type") if q.get("funder_type") in FUNDER_KIND_LABELS else None,
            "since": day("since"), "until": day("until")}


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of 结算管理 (finance staff): the list's filters as the job stores them."""
    require(user.viewer, FINANCE, "导出结算")
    return export_jobs.dataclass_params(SettlementFilter(**_filters(form)))


@router.get("/settlements")
def settlement_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    filters = _filters(request.query_params)
    page = max(1, parse_int(request.query_params.get("page"), default=1) or 1)
    rows = settlements.list_settlements(session, user.viewer, **filters, limit=51, offset=(page - 1) * 50)
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return render(request, "finance/settlements.html", {
        "rows": rows[:50], "has_next": len(rows) > 50, "page": page, "filters": filters, "query": query,
        "statuses": SETTLEMENT_STATUS_LABELS, "funder_kinds": FUNDER_KIND_LABELS, "mask_name": mask_name,
        "is_finance": user.viewer.role in FINANCE,
        "export_params": export_jobs.dataclass_params(SettlementFilter(**filters))})


def _context(session: SessionDep, user: ConsoleUser, settlement_id: int) -> dict[str, Any]:
    s = settlements.get_settlement(session, user.viewer, settlement_id)
    a = session.get(Agreement, s.agreement_id)
    detail = settlements.details(session, s.id)
    me, role = user.viewer.staff_id, user.viewer.role
    can_confirm = {"officer": me == a.case_officer_id, "sales": me == a.sales_staff_id,
                   "supervisor": role in settlements.SUPERVISOR_ROLES}
    preview = None
    if s.status == "pending":
        try:
            with session.begin_nested():
                preview = settlements.compute(session, s, settlements.ChargeInput())
        except AppError:
            preview = None
    return {
        "s": s, "a": a, "c": session.get(Customer, a.customer_id), **detail, "preview": preview,
        "fee_types": settlements.fee_types(session), "methods": METHOD_LABELS, "discounts": DISCOUNT_KIND_LABELS,
        "names": staff_names(session, {a.sales_staff_id, a.case_officer_id, s.officer_confirmed_by_staff_id,
                                       s.supervisor_confirmed_by_staff_id, s.sales_confirmed_by_staff_id,
                                       s.settled_by_staff_id, s.charged_by_staff_id}),
        "mask_name": mask_name, "is_finance": role in FINANCE, "can_confirm": can_confirm,
        "confirmers": settlements.CONFIRMERS, "missing": settlements.missing_confirmations(s),
        "loans": [ln for ln in deposits.loans_of(session, a.id)], "held": deposits.held_amount(session, a.id),
        "payment_rows": PAYMENT_ROWS, "rebate_rows": REBATE_ROWS,
        "fee_revenue": settlements.fee_revenue_of(s),
        "wechat_due": fee_purposes.settlement_bill(session, s) if role in FINANCE else None,
    }


def _page(request: Request, session: SessionDep, user: ConsoleUser, settlement_id: int, *,
          error: AppError | None = None, form: dict[str, str] | None = None) -> Response:
    ctx = _context(session, user, settlement_id)
    ctx.update(error=error, form=form or {}, notice=NOTICES.get(request.query_params.get("done", "")))
    return render(request, "finance/settlement.html", ctx, status_code=error.status if error else 200)


def _act(request: Request, session: SessionDep, user: ConsoleUser, settlement_id: int, action: Any, done: str,
         form: dict[str, str] | None = None) -> Response:
    settlements.get_settlement(session, user.viewer, settlement_id)
    _, error = attempt(session, action)
    if error is not None:
        return _page(request, session, user, settlement_id, error=error, form=form)
    return RedirectResponse(f"/console/finance/settlements/{settlement_id}?done={done}", status_code=303)


@router.get("/settlements/{settlement_id}")
def settlement_page(settlement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _page(request, session, user, settlement_id)


def _charge_input(form: dict[str, str]) -> settlements.ChargeInput:
    kind = form.get("discount_kind", "none")
    data = settlements.ChargeInput(discount_kind=kind)
    if kind == "percent":
        data.discount_rate = rate_text(form.get("discount_rate"), "优惠比例", "discount_rate")
    elif kind == "fixed":
        data.discount_amount = yuan_text(form.get("discount_amount"), "优惠金额", "discount_amount", allow_zero=True)
    data.installment_fee_amount = yuan_text(form.get("installment_fee"), "分期手续费", "installment_fee_amount",
                                            allow_zero=True, required=False) or 0
    for key, value in form.items():
        if key.startswith("fee_") and value.strip():
            amount = yuan_text(value, "追加费用", "fees", required=False)
            if amount:
                data.fees.append((int(key[4:]), amount))
    for i in range(PAYMENT_ROWS):
        amount = yuan_text(form.get(f"pay_amount_{i}"), f"第 {i + 1} 笔收款金额", "payments", required=False)
        if amount:
            data.payments.append((form.get(f"pay_method_{i}", ""), amount))
    for i in range(REBATE_ROWS):
        partner = form.get(f"rebate_partner_{i}", "").strip()
        amount = yuan_text(form.get(f"rebate_amount_{i}"), f"第 {i + 1} 笔返点金额", "rebates", required=False)
        if partner or amount:
            data.rebates.append((partner, amount or 0))
    revision = parse_int(form.get("revision"))
    data.expected_revision = revision
    return data


@router.post("/settlements/{settlement_id}/charge", dependencies=[CsrfChecked])
async def charge(settlement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    return _act(request, session, user, settlement_id,
                lambda: settlements.charge(session, settlement_id, _charge_input(form), viewer=user.viewer),
                "charged", form)


@router.post("/settlements/{settlement_id}/confirm", dependencies=[CsrfChecked])
async def confirm(settlement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    who, revision = str(form.get("as", "")), parse_int(str(form.get("revision", "")))

    def run() -> Any:
        if revision is None:
            raise ValidationFailed("缺少凭证版本，请刷新页面后重试", field="revision")
        return settlements.confirm_voucher(session, settlement_id, who, revision=revision, viewer=user.viewer)

    return _act(request, session, user, settlement_id, run, "confirmed")


@router.post("/settlements/{settlement_id}/close", dependencies=[CsrfChecked])
def close(settlement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _act(request, session, user, settlement_id,
                lambda: settlements.close(session, settlement_id, viewer=user.viewer), "settled")


@router.post("/settlements/{settlement_id}/withhold", dependencies=[CsrfChecked])
def withhold(settlement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Debit the charge's WeChat part under the customer's withholding authorisation (代扣服务费)."""
    def run() -> Any:
        require(user.viewer, FINANCE, "发起代扣")
        s = settlements.get_settlement(session, user.viewer, settlement_id)
        return fee_purposes.withhold_settlement(session, s, staff_id=user.viewer.staff_id)

    return _act(request, session, user, settlement_id, run, "withholding")


@router.post("/settlements/{settlement_id}/fee-refund", dependencies=[CsrfChecked])
async def fee_refund(settlement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    return _act(request, session, user, settlement_id, lambda: settlements.refund_fee(
        session, settlement_id, amount=yuan_text(form.get("amount"), "退费金额", "amount"),
        method=form.get("method", ""), reason=form.get("reason", ""), viewer=user.viewer), "fee_refunded", form)


@router.get("/settlements/{settlement_id}/voucher")
def voucher(settlement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """客户凭证 (?kind=customer, without rebates) or 内部凭证 (?kind=internal, with rebates and confirmations)."""
    kind = "internal" if request.query_params.get("kind") == "internal" else "customer"
    ctx = _context(session, user, settlement_id)
    if ctx["s"].status == "pending":
        raise ValidationFailed("尚未完成结算收费，暂无凭证")
    paper = "A5" if request.query_params.get("paper") == "a5" else "A4"
    ctx.update(kind=kind, paper=paper, extra_query=f"&kind={kind}")
    return render(request, "finance/print_voucher.html", ctx)


# --- ledger -------------------------------------------------------------------------------------------------

_FINANCE_ONLY = require_roles(FINANCE)


@router.get("/ledger")
def ledger_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _ledger(request, session, user)


def _ledger(request: Request, session: SessionDep, user: ConsoleUser, error: AppError | None = None) -> Response:
    _FINANCE_ONLY(user)
    run = request.query_params.get("check") == "1"
    return render(request, "finance/ledger.html", {
        "accounts": list(session.scalars(select(Account).order_by(Account.number))),
        "closed": ledger.closed_months(session), "open": ledger.open_months(session),
        "result": ledger.run_check(session) if run else None, "error": error,
        "fee_types": settlements.fee_types(session, active_only=False),
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=error.status if error else 200)


@router.post("/ledger/close", dependencies=[CsrfChecked])
async def close_month(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    raw = str(form.get("month", "")).strip()

    def run() -> Any:
        try:
            month = date.fromisoformat(f"{raw}-01")
        except ValueError:
            raise ValidationFailed(f"月份格式不正确：{raw}（应为 YYYY-MM）", field="month") from None
        return ledger.close_period(session, month, viewer=user.viewer)

    _, error = attempt(session, run)
    if error is not None:
        return _ledger(request, session, user, error)
    return RedirectResponse("/console/finance/ledger?done=closed", status_code=303)


@router.post("/ledger/fee-types", dependencies=[CsrfChecked])
async def add_fee_type(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    _, error = attempt(session, lambda: settlements.add_fee_type(session, str(form.get("name", "")),
                                                                 viewer=user.viewer))
    if error is not None:
        return _ledger(request, session, user, error)
    return RedirectResponse("/console/finance/ledger?done=fee_type", status_code=303)


__all__ = ["router"]
