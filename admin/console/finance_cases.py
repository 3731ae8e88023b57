"""Finance center pages (财务中心) for the case: 签单 (list, new, detail with 合同确认, approval and amendments),
定金列表, 做单中心, deposits (receive, confirm, refund, void, printable receipt), customer loans and the
disbursement recorded by hand.

Routes parse forms and call the finance services inside a savepoint (``attempt``): a refusal re-renders the
page with the Chinese reason and nothing written. Every form carries the CSRF token; every read is
data-scoped (out of scope is 404).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, templates
from core import clock, money
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm import org_service
from crm.models import Customer, Staff, StaffStatus, Visit, VisitStatus
from crm.permissions import holder_roles
from crm.scope import owner_filter, staff_filter
from finance import agreements, deposits, receipt_pdf, settlements
from finance.access import APPROVERS, FINANCE, SIGNERS
from finance.amounts import rate_text, yuan_text
from finance.models import (
    AGREEMENT_STATUS_LABELS,
    DEPOSIT_STATUS_LABELS,
    FUNDER_KIND_LABELS,
    METHOD_LABELS,
    REFUND_STATUS_LABELS,
    SETTLEMENT_STATUS_LABELS,
)
from lending.contracts import mask_name
from lending.schedule.apr import percent
from lending.schedule.terms import RepaymentMethod

router = APIRouter(prefix="/console/finance", include_in_schema=False)

NOTICES = {
    "created": "签单已录入，等待财务合同确认", "confirmed": "合同已确认，金额已锁定", "approved": "已审批，进入定金列表",
    "cancelled": "签单已取消", "amended": "变更已提交，等待财务确认", "amendment_confirmed": "变更已确认生效",
    "amendment_rejected": "变更已驳回", "deposit": "定金已登记，等待财务确认", "deposit_confirmed": "定金已确认入账，案件进入做单中心",
    "voided": "定金已作废（已冲销入账）", "refund": "退款申请已提交", "refund_confirmed": "退款已确认入账",
    "refund_rejected": "退款申请已驳回", "loan": "客户借款已登记入账", "disbursed": "放款已登记，案件进入待结算",
}
METHOD_NAMES = {m.value: m.label for m in RepaymentMethod}

templates.env.filters.update(
    yuan=lambda fen: "—" if fen is None else money.format_yuan(fen),
    pct=lambda rate: "—" if rate is None else f"{percent(Decimal(rate))}%",
    agreement_status=lambda v: AGREEMENT_STATUS_LABELS.get(v, v),
    deposit_status=lambda v: DEPOSIT_STATUS_LABELS.get(v, v),
    refund_status=lambda v: REFUND_STATUS_LABELS.get(v, v),
    settlement_status=lambda v: SETTLEMENT_STATUS_LABELS.get(v, v),
    method_label=lambda v: METHOD_LABELS.get(v, v),
    funder_kind=lambda v: FUNDER_KIND_LABELS.get(v, v),
    repayment_label=lambda v: METHOD_NAMES.get(v, v),
)


def staff_names(session: SessionDep, ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids))).all())


def _day(raw: str, field: str, label: str) -> date | None:
    if not (raw or "").strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(f"{label}格式不正确：{raw}", field=field) from None


def _int(raw: str, field: str, label: str) -> int:
    value = parse_int(raw)
    if value is None:
        raise ValidationFailed(f"请填写{label}", field=field)
    return value


# --- lists ------------------------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def home(request: Request, session: SessionDep, user: CurrentUser) -> Response:  # noqa: ARG001
    return RedirectResponse("/console/finance/agreements", status_code=303)


def _agreement_status(q: Any) -> str | None:
    return q.get("status") if q.get("status") in AGREEMENT_STATUS_LABELS else None


def _deposit_filter(q: Any) -> tuple[str | None, bool]:
    status = q.get("status")
    return (status if status in DEPOSIT_STATUS_LABELS else None), q.get("held") == "1"


def agreement_export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of 签单管理: the list's filters as the job stores them (the scope is the requester's)."""
    return {k: v for k, v in (("status", _agreement_status(form)), ("q", (form.get("q") or "").strip())) if v}


def deposit_export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    status, held = _deposit_filter(form)
    return {k: v for k, v in (("status", status), ("held", held)) if v}


@router.get("/agreements")
def agreement_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    q = request.query_params
    status = _agreement_status(q)
    page = max(1, parse_int(q.get("page"), default=1) or 1)
    rows = agreements.list_agreements(session, user.viewer, status=status, q=q.get("q"), limit=51,
                                      offset=(page - 1) * 50)
    names = staff_names(session, {a.sales_staff_id for a, _ in rows} | {a.case_officer_id for a, _ in rows})
    return render(request, "finance/agreements.html", {
        "rows": rows[:50], "has_next": len(rows) > 50, "page": page, "status": status, "q": q.get("q") or "",
        "statuses": AGREEMENT_STATUS_LABELS, "counts": agreements.count_by_status(session, user.viewer),
        "names": names, "mask_name": mask_name, "can_sign": user.viewer.role in SIGNERS,
        "notice": NOTICES.get(q.get("done", "")), "export_params": agreement_export_params(session, user, dict(q)),
    })


@router.get("/deposits")
def deposit_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    status, held = _deposit_filter(request.query_params)
    return render(request, "finance/deposits.html", {
        "rows": deposits.deposit_list(session, user.viewer, status=status, held=held, limit=100),
        "awaiting": deposits.awaiting_deposit(session, user.viewer), "status": status, "held": held,
        "statuses": DEPOSIT_STATUS_LABELS, "mask_name": mask_name, "is_finance": user.viewer.role in FINANCE,
        "export_params": deposit_export_params(session, user, dict(request.query_params)),
    })


@router.get("/work")
def work_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    mine = request.query_params.get("mine") == "1"
    rows = deposits.work_list(session, user.viewer, mine=mine, limit=100)
    names = staff_names(session, {a.sales_staff_id for a, _ in rows} | {a.case_officer_id for a, _ in rows})
    return render(request, "finance/work.html", {"rows": rows, "mine": mine, "names": names, "mask_name": mask_name,
                                                  "held": {a.id: deposits.held_amount(session, a.id) for a, _ in rows}})


# --- new agreement ----------------------------------------------------------------------------------------


def _form_context(session: SessionDep, user: ConsoleUser) -> dict[str, Any]:
    customers = list(session.execute(
        select(Customer.id, Customer.name, Customer.phone_masked)
        .where(owner_filter(user.viewer, Customer.owner_id),
               Customer.id.in_(select(Visit.customer_id).where(Visit.status == VisitStatus.ARRIVED)))
        .order_by(Customer.id.desc()).limit(300)).all())
    owners = holder_roles(session, org_service.CUSTOMER_OWNER_ROLES)  # who may own customers, custom roles too
    staff = list(session.execute(select(Staff.id, Staff.display_name, Staff.role)
                                 .where(Staff.status == StaffStatus.ACTIVE,
                                        Staff.role.in_([*owners, "manager"]))
                                 .where(staff_filter(user.viewer) if user.viewer.role == "sales" else Staff.id > 0)
                                 .order_by(Staff.display_name).limit(300)).all())
    officers = list(session.execute(select(Staff.id, Staff.display_name).where(
        Staff.status == StaffStatus.ACTIVE, Staff.role.in_(owners)).order_by(Staff.display_name)
        .limit(300)).all())
    return {"customers": customers, "staff": staff, "officers": officers, "methods": METHOD_NAMES,
            "mask_name": mask_name}


@router.get("/agreements/new")
def new_agreement(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    ctx = _form_context(session, user)
    ctx.update(form={"sales_staff_id": str(user.viewer.staff_id), "repayment_method": "equal_installment"},
               error=None, quote=None)
    return render(request, "finance/agreement_form.html", ctx)


def _terms_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The form's term fields (yuan and percent as typed) as the finance functions take them (fen, fractions)."""
    other = []
    for i in (1, 2):
        name = form.get(f"other_name_{i}", "").strip()
        amount = yuan_text(form.get(f"other_amount_{i}"), f"其他费用{i}", "other_fees", required=False)
        if name or amount:
            other.append({"name": name, "amount": amount})
    return dict(
        loan_amount=yuan_text(form.get("loan_amount"), "贷款金额", "loan_amount"),
        term_months=_int(form.get("term_months", ""), "term_months", "期限"),
        funder_annual_rate=rate_text(form.get("funder_annual_rate"), "资方年利率", "funder_annual_rate"),
        repayment_method=form.get("repayment_method", ""),
        funder_fee_amount=yuan_text(form.get("funder_fee_amount"), "资方费用", "funder_fee_amount",
                                    allow_zero=True, required=False) or 0,
        service_fee_rate=rate_text(form.get("service_fee_rate"), "服务费率", "service_fee_rate"),
        service_fee_fixed_amount=yuan_text(form.get("service_fee_fixed_amount"), "固定服务费",
                                           "service_fee_fixed_amount", allow_zero=True, required=False) or 0,
        deposit_amount=yuan_text(form.get("deposit_amount"), "定金", "deposit_amount", allow_zero=True,
                                 required=False) or 0,
        other_fees=other)


@router.post("/agreements/new", dependencies=[CsrfChecked])
async def create_agreement(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """保存签单, or 试算 (``action=quote``): the all-in cost and the cap shown on the form, nothing saved."""
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    quoting = form.pop("action", "") == "quote"

    def run() -> Any:
        signed = _day(form.get("signed_date", ""), "signed_date", "签单日期")
        if quoting:
            return agreements.quote(_terms_from_form(form), signed_date=signed, viewer=user.viewer)
        data = agreements.AgreementInput(
            customer_id=_int(form.get("customer_id", ""), "customer_id", "客户"),
            sales_staff_id=_int(form.get("sales_staff_id", ""), "sales_staff_id", "营销专员"),
            case_officer_id=_int(form.get("case_officer_id", ""), "case_officer_id", "做单专员"),
            number=form.get("number"), signed_date=signed, note=form.get("note"), **_terms_from_form(form))
        return agreements.create_agreement(session, data, viewer=user.viewer)

    result, error = attempt(session, run)
    if error is not None or quoting:
        ctx = _form_context(session, user)
        ctx.update(form=form, error=error, quote=result)
        return render(request, "finance/agreement_form.html", ctx, status_code=error.status if error else 200)
    return RedirectResponse(f"/console/finance/agreements/{result.id}?done=created", status_code=303)


# --- the agreement page -----------------------------------------------------------------------------------


def _agreement_context(session: SessionDep, user: ConsoleUser, agreement_id: int) -> dict[str, Any]:
    a = agreements.get_agreement(session, user.viewer, agreement_id)
    items = deposits.deposits_of(session, a.id)
    refunds = deposits.refunds_of(session, a.id)
    loans = deposits.loans_of(session, a.id)
    amendments = agreements.amendments(session, a.id)
    role, me = user.viewer.role, user.viewer.staff_id
    ids = {a.sales_staff_id, a.case_officer_id, a.confirmed_by_staff_id, a.approved_by_staff_id}
    ids |= {d.entered_by_staff_id for d in items} | {d.confirmed_by_staff_id for d in items}
    ids |= {r.requested_by_staff_id for r in refunds} | {m.proposed_by_staff_id for m in amendments}
    terms = agreements.terms_of(a)
    return {
        "a": a, "c": session.get(Customer, a.customer_id), "deposits": items, "refunds": refunds, "loans": loans,
        "amendments": amendments, "settlement": settlements.settlement_for(session, a.id),
        "held": deposits.held_amount(session, a.id), "service_fee": terms.service_fee_amount,
        "names": staff_names(session, ids), "mask_name": mask_name, "methods": METHOD_LABELS,
        "funder_kinds": FUNDER_KIND_LABELS, "term_labels": agreements.TERM_LABELS,
        "is_finance": role in FINANCE, "can_approve": role in APPROVERS, "can_sign": role in SIGNERS,
        "is_officer": me in (a.case_officer_id, a.sales_staff_id) or role in FINANCE | APPROVERS,
        "pending_amendment": next((m for m in amendments if m.status == "pending"), None),
        "repayment_methods": METHOD_NAMES,
    }


def _page(request: Request, session: SessionDep, user: ConsoleUser, agreement_id: int, *,
          error: AppError | None = None, form: dict[str, str] | None = None) -> Response:
    ctx = _agreement_context(session, user, agreement_id)
    ctx.update(error=error, form=form or {}, notice=NOTICES.get(request.query_params.get("done", "")))
    return render(request, "finance/agreement.html", ctx, status_code=error.status if error else 200)


def _done(agreement_id: int, what: str) -> Response:
    return RedirectResponse(f"/console/finance/agreements/{agreement_id}?done={what}", status_code=303)


def _act(request: Request, session: SessionDep, user: ConsoleUser, agreement_id: int, action: Any, done: str,
         form: dict[str, str] | None = None) -> Response:
    agreements.get_agreement(session, user.viewer, agreement_id)  # 404 outside the scope, first
    _, error = attempt(session, action)
    if error is not None:
        return _page(request, session, user, agreement_id, error=error, form=form)
    return _done(agreement_id, done)


@router.get("/agreements/{agreement_id}")
def agreement_page(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _page(request, session, user, agreement_id)


@router.post("/agreements/{agreement_id}/confirm", dependencies=[CsrfChecked])
def confirm(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _act(request, session, user, agreement_id,
                lambda: agreements.confirm(session, agreement_id, viewer=user.viewer), "confirmed")


@router.post("/agreements/{agreement_id}/approve", dependencies=[CsrfChecked])
def approve(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _act(request, session, user, agreement_id,
                lambda: agreements.approve(session, agreement_id, viewer=user.viewer), "approved")


@router.post("/agreements/{agreement_id}/cancel", dependencies=[CsrfChecked])
def cancel(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser,
           reason: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, agreement_id,
                lambda: agreements.cancel(session, agreement_id, viewer=user.viewer, reason=reason), "cancelled")


@router.post("/agreements/{agreement_id}/amend", dependencies=[CsrfChecked])
async def amend(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}

    def run() -> Any:
        changes: dict[str, Any] = {}
        for name in ("loan_amount", "funder_fee_amount", "service_fee_fixed_amount", "deposit_amount"):
            if form.get(name, "").strip():
                changes[name] = yuan_text(form[name], agreements.TERM_LABELS[name], name, allow_zero=True)
        for name in ("funder_annual_rate", "service_fee_rate"):
            if form.get(name, "").strip():
                changes[name] = rate_text(form[name], agreements.TERM_LABELS[name], name)
        if form.get("term_months", "").strip():
            changes["term_months"] = _int(form["term_months"], "term_months", "期限")
        if form.get("repayment_method", "").strip():
            changes["repayment_method"] = form["repayment_method"].strip()
        return agreements.propose_amendment(session, agreement_id, changes, reason=form.get("reason", ""),
                                            viewer=user.viewer)

    return _act(request, session, user, agreement_id, run, "amended", form)


@router.post("/amendments/{amendment_id}/decide", dependencies=[CsrfChecked])
def decide_amendment(amendment_id: int, request: Request, session: SessionDep, user: CurrentUser,
                     agreement_id: Annotated[int, Form()], accept: Annotated[str, Form()] = "1") -> Response:
    ok = accept == "1"
    return _act(request, session, user, agreement_id,
                lambda: agreements.decide_amendment(session, amendment_id, accept=ok, viewer=user.viewer),
                "amendment_confirmed" if ok else "amendment_rejected")


@router.post("/agreements/{agreement_id}/deposits", dependencies=[CsrfChecked])
def record_deposit(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser,
                   amount: Annotated[str, Form()] = "", method: Annotated[str, Form()] = "",
                   received_date: Annotated[str, Form()] = "", reference: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, agreement_id, lambda: deposits.record_deposit(
        session, agreement_id, amount=yuan_text(amount, "定金金额", "amount"), method=method,
        received_date=_day(received_date, "received_date", "收款日期"), reference=reference, viewer=user.viewer),
        "deposit", {"amount": amount, "reference": reference})


@router.post("/deposits/{deposit_id}/confirm", dependencies=[CsrfChecked])
def confirm_deposit(deposit_id: int, request: Request, session: SessionDep, user: CurrentUser,
                    agreement_id: Annotated[int, Form()]) -> Response:
    return _act(request, session, user, agreement_id,
                lambda: deposits.confirm_deposit(session, deposit_id, viewer=user.viewer), "deposit_confirmed")


@router.post("/deposits/{deposit_id}/void", dependencies=[CsrfChecked])
def void_deposit(deposit_id: int, request: Request, session: SessionDep, user: CurrentUser,
                 agreement_id: Annotated[int, Form()], reason: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, agreement_id,
                lambda: deposits.void_deposit(session, deposit_id, reason=reason, viewer=user.viewer), "voided")


@router.post("/deposits/{deposit_id}/refunds", dependencies=[CsrfChecked])
def request_refund(deposit_id: int, request: Request, session: SessionDep, user: CurrentUser,
                   agreement_id: Annotated[int, Form()], amount: Annotated[str, Form()] = "",
                   method: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, agreement_id, lambda: deposits.request_refund(
        session, deposit_id, amount=yuan_text(amount, "退款金额", "amount"), method=method, reason=reason,
        viewer=user.viewer), "refund", {"refund_amount": amount, "refund_reason": reason})


@router.post("/refunds/{refund_id}/decide", dependencies=[CsrfChecked])
def decide_refund(refund_id: int, request: Request, session: SessionDep, user: CurrentUser,
                  agreement_id: Annotated[int, Form()], accept: Annotated[str, Form()] = "1") -> Response:
    ok = accept == "1"
    return _act(request, session, user, agreement_id,
                lambda: deposits.decide_refund(session, refund_id, accept=ok, viewer=user.viewer),
                "refund_confirmed" if ok else "refund_rejected")


@router.post("/agreements/{agreement_id}/loans", dependencies=[CsrfChecked])
def lend(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser,
         principal: Annotated[str, Form()] = "", interest: Annotated[str, Form()] = "",
         cost: Annotated[str, Form()] = "", method: Annotated[str, Form()] = "",
         loan_date: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, agreement_id, lambda: deposits.lend_to_customer(
        session, agreement_id, principal_amount=yuan_text(principal, "借款本金", "principal_amount"),
        interest_amount=yuan_text(interest, "借款利息", "interest_amount", allow_zero=True, required=False) or 0,
        cost_amount=yuan_text(cost, "借款成本", "cost_amount", allow_zero=True, required=False) or 0,
        method=method, loan_date=_day(loan_date, "loan_date", "借款日期"), viewer=user.viewer), "loan")


@router.post("/agreements/{agreement_id}/disbursement", dependencies=[CsrfChecked])
def disbursement(agreement_id: int, request: Request, session: SessionDep, user: CurrentUser,
                 funder_name: Annotated[str, Form()] = "", funder_type: Annotated[str, Form()] = "",
                 amount: Annotated[str, Form()] = "", disbursed_date: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, agreement_id, lambda: settlements.record_disbursement(
        session, agreement_id, funder_name=funder_name, funder_type=funder_type,
        amount=yuan_text(amount, "放款金额", "amount"), disbursed_date=_day(disbursed_date, "disbursed_date", "放款日期"),
        viewer=user.viewer), "disbursed", {"funder_name": funder_name, "disbursed_amount": amount})


def _receipt_context(request: Request, session: Any, user: Any, deposit_id: int) -> dict[str, Any]:
    d = deposits.get_deposit(session, user.viewer, deposit_id)
    a = agreements.get_agreement(session, user.viewer, d.agreement_id)
    return {"d": d, "a": a, "c": session.get(Customer, a.customer_id),
            "refunds": [r for r in deposits.refunds_of(session, a.id) if r.deposit_id == d.id],
            "names": staff_names(session, {a.sales_staff_id, a.case_officer_id, d.confirmed_by_staff_id}),
            "paper": "A5" if request.query_params.get("paper") == "a5" else "A4"}


@router.get("/deposits/{deposit_id}/receipt")
def deposit_receipt(deposit_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """定金结算清单: a page made for printing (A4 by default, ?paper=a5)."""
    return render(request, "finance/print_deposit.html",
                  {**_receipt_context(request, session, user, deposit_id), "mask_name": mask_name})


@router.get("/deposits/{deposit_id}/receipt.pdf")
def deposit_receipt_pdf(deposit_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """定金结算清单 as PDF (A4 by default, ?paper=a5): the same figures as the printable page."""
    ctx = _receipt_context(request, session, user, deposit_id)
    d, a, c, names = ctx["d"], ctx["a"], ctx["c"], ctx["names"]

    def amount(fen: int) -> str:
        return money.format_yuan(fen, symbol=False)

    def local(at: Any) -> str:
        return clock.ensure_aware(at).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M") if at else "—"

    data = receipt_pdf.ReceiptData(
        receipt_number=f"D{d.id:06d}", agreement_number=a.number, customer=mask_name(c.name), phone=c.phone_masked or "—",
        sales=names.get(a.sales_staff_id, "—"), case_officer=names.get(a.case_officer_id, "—"),
        agreed=amount(a.deposit_amount), received=amount(d.amount), method=METHOD_LABELS.get(d.method, d.method),
        received_date=d.received_date.isoformat(), reference=d.reference or "—",
        confirmed_by=names.get(d.confirmed_by_staff_id, "—" if d.confirmed_by_staff_id else "微信支付自动确认"),
        refunded=amount(d.refunded_amount), held=amount(d.amount - d.refunded_amount), printed_at=local(d.confirmed_at),
        refunds=[(local(r.requested_at), amount(r.amount), REFUND_STATUS_LABELS.get(r.status, r.status))
                 for r in ctx["refunds"]])
    body = receipt_pdf.render(data, paper=ctx["paper"])
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="deposit-receipt-D{d.id:06d}.pdf"', "Cache-Control": "no-store"})


