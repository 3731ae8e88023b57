"""Payment pages (/console/payments): payment orders (JSAPI and withholding) with their transitions and the
actions a person takes (query the provider, close, refund or apply money held for review), withholding
orders (and starting a debit for a loan), withholding authorisations (record one, revoke), and
reconciliation (run a day, the report, resolve each difference).

Finance, managers and admins. Routes parse forms and call ``payments`` inside a savepoint (``attempt``);
every form carries the CSRF token.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles, templates
from admin.nav import PAYMENT_STAFF
from admin.schemas_customers import yuan_text_to_fen
from core import clock, money
from core.errors import AppError, NotFound, ValidationFailed
from core.web import SessionDep
from crm.models import Customer
from lending import contracts
from lending.models import Loan
from lending.payment_purposes import request_withholding
from payments import orders, purposes, reconciliation, refunds, withholding
from payments.models import (
    AUTHORIZATION_STATUS_LABELS,
    ITEM_KIND_LABELS,
    ITEM_STATUS_LABELS,
    METHOD_LABELS,
    ORDER_STATUS_LABELS,
    REFUND_STATUS_LABELS,
    PaymentOrder,
    PaymentRefund,
    ReconciliationRun,
    WithholdingAuthorization,
)

router = APIRouter(prefix="/console/payments", include_in_schema=False)
Staff = Annotated[ConsoleUser, Depends(require_roles(PAYMENT_STAFF))]

SOURCE_LABELS = {"notify": "支付通知", "poll": "主动查询", "staff": "人工", "system": "系统", "customer": "客户"}
NOTICES = {"polled": "已向渠道查询并更新", "closed": "订单已关闭", "refunded": "已提交退款", "applied": "已确认入账",
           "withhold": "代扣已发起，结果将通过通知或查询更新", "authorized": "代扣授权已登记", "revoked": "代扣授权已撤销",
           "ran": "对账完成", "resolved": "差异已处理"}

templates.env.filters.update(
    yuan=lambda fen: "—" if fen is None else money.format_yuan(fen),
    pay_status_label=lambda v: ORDER_STATUS_LABELS.get(v, v),
    pay_method_label=lambda v: METHOD_LABELS.get(v, v),
    pay_source_label=lambda v: SOURCE_LABELS.get(v, v),
    purpose_label=purposes.label,
    refund_status_label=lambda v: REFUND_STATUS_LABELS.get(v, v),
    auth_status_label=lambda v: AUTHORIZATION_STATUS_LABELS.get(v, v),
    item_kind_label=lambda v: ITEM_KIND_LABELS.get(v, v),
    item_status_label=lambda v: ITEM_STATUS_LABELS.get(v, v),
    purpose_scope_label=lambda v: "、".join(purposes.label(p) for p in v.split(",")),
    applied_ref_label=lambda v: _ref_label(v),
)

REF_LABELS = {"lending_repayment": "还款记录", "finance_entry": "财务凭证"}


def _ref_label(ref: str | None) -> str:
    kind, _, ident = (ref or "").partition(":")
    return f"{REF_LABELS[kind]} #{ident}" if kind in REF_LABELS else (ref or "—")


def _names(session: SessionDep, ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {i: contracts.mask_name(n) for i, n in session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_(ids)))}


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def _orders_page(request: Request, session: SessionDep, method: str | None, template: str,
                 extra: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    q = request.query_params
    status = q.get("status") if q.get("status") in ORDER_STATUS_LABELS else None
    page = max(1, parse_int(q.get("page"), default=1) or 1)
    stmt = orders.listing_query(method=method, status=status)
    rows = list(session.scalars(stmt.order_by(PaymentOrder.id.desc()).limit(51).offset((page - 1) * 50)))
    counts = dict(session.execute(select(PaymentOrder.status, func.count()).where(
        PaymentOrder.method == method if method else PaymentOrder.id.is_not(None)).group_by(PaymentOrder.status)).all())
    ctx = {"rows": rows[:50], "has_next": len(rows) > 50, "page": page, "status": status,
           "statuses": ORDER_STATUS_LABELS, "counts": counts, "names": _names(session, {r.customer_id for r in rows}),
           "notice": _notice(request), "error": None, "form": {},
           "export_params": {k: v for k, v in (("method", method), ("status", status)) if v}}
    ctx.update(extra or {})
    return render(request, template, ctx, status_code=status_code)


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of 支付订单 / 代扣 (payment staff): the list's filters as the job stores them."""
    require_roles(PAYMENT_STAFF)(user)
    method = form.get("method") if form.get("method") in METHOD_LABELS else None
    status = form.get("status") if form.get("status") in ORDER_STATUS_LABELS else None
    return {k: v for k, v in (("method", method), ("status", status)) if v}


@router.get("")
def payment_list(request: Request, session: SessionDep, user: Staff) -> Response:
    return _orders_page(request, session, None, "payments/orders.html")


def _order_page(request: Request, session: SessionDep, order_id: int, *, error: AppError | None = None,
                status_code: int = 200) -> Response:
    order = orders.get(session, order_id)
    auth = session.get(WithholdingAuthorization, order.authorization_id) if order.authorization_id else None
    refunds = list(session.scalars(select(PaymentRefund).where(PaymentRefund.order_id == order.id)))
    return render(request, "payments/order.html", {
        "o": order, "transitions": orders.transitions(session, order.id), "refunds": refunds, "auth": auth,
        "name": _names(session, {order.customer_id}).get(order.customer_id or 0, "—"), "error": error,
        "notice": _notice(request), "open": order.status in orders.OPEN,
        "held": order.status == "review" and order.applied_at is None,
    }, status_code=status_code)


@router.get("/orders/{order_id}")
def order_page(order_id: int, request: Request, session: SessionDep, user: Staff) -> Response:
    return _order_page(request, session, order_id)


def _order_action(request: Request, session: SessionDep, order_id: int, action: Any, done: str) -> Response:
    _, error = attempt(session, action)
    if error:
        return _order_page(request, session, order_id, error=error, status_code=error.status)
    return RedirectResponse(f"/console/payments/orders/{order_id}?done={done}", status_code=303)


@router.post("/orders/{order_id}/poll", dependencies=[CsrfChecked])
def poll(order_id: int, request: Request, session: SessionDep, user: Staff) -> Response:
    return _order_action(request, session, order_id, lambda: orders.poll(session, order_id), "polled")


@router.post("/orders/{order_id}/close", dependencies=[CsrfChecked])
def close(order_id: int, request: Request, session: SessionDep, user: Staff,
          reason: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        if not reason.strip():
            raise ValidationFailed("请填写关闭原因", field="reason")
        return orders.cancel(session, order_id, reason=reason.strip(), staff_id=user.staff.id)

    return _order_action(request, session, order_id, run, "closed")


@router.post("/orders/{order_id}/refund", dependencies=[CsrfChecked])
def refund(order_id: int, request: Request, session: SessionDep, user: Staff,
           reason: Annotated[str, Form()] = "") -> Response:
    return _order_action(request, session, order_id,
                         lambda: refunds.refund_held(session, order_id, reason=reason, staff_id=user.staff.id), "refunded")


@router.post("/orders/{order_id}/apply", dependencies=[CsrfChecked])
def apply_reviewed(order_id: int, request: Request, session: SessionDep, user: Staff,
                   note: Annotated[str, Form()] = "") -> Response:
    return _order_action(request, session, order_id,
                         lambda: orders.apply_reviewed(session, order_id, staff_id=user.staff.id, note=note.strip()),
                         "applied")


# --- withholding orders ------------------------------------------------------------------------------

@router.get("/withholding")
def withholding_list(request: Request, session: SessionDep, user: Staff) -> Response:
    return _orders_page(request, session, "withholding", "payments/withholding.html",
                        {"schedule": withholding.RETRY_SCHEDULE})


@router.post("/withholding", dependencies=[CsrfChecked])
def start_withholding(request: Request, session: SessionDep, user: Staff,
                      loan_id: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        lid = parse_int(loan_id)
        loan = session.get(Loan, lid) if lid else None
        if loan is None:
            raise ValidationFailed("请填写存在的贷款编号", field="loan_id")
        return request_withholding(session, loan, staff_id=user.staff.id)

    _, error = attempt(session, run)
    if error:
        return _orders_page(request, session, "withholding", "payments/withholding.html",
                            {"schedule": withholding.RETRY_SCHEDULE, "error": error, "form": {"loan_id": loan_id}},
                            status_code=error.status)
    return RedirectResponse("/console/payments/withholding?done=withhold", status_code=303)


# --- authorisations -----------------------------------------------------------------------------------

def _auth_page(request: Request, session: SessionDep, *, error: AppError | None = None,
               form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    rows = list(session.scalars(select(WithholdingAuthorization).order_by(WithholdingAuthorization.id.desc())
                                .limit(200)))
    return render(request, "payments/authorizations.html", {
        "rows": rows, "names": _names(session, {r.customer_id for r in rows}), "error": error, "form": form or {},
        "notice": _notice(request), "purposes": {p: purposes.label(p) for p in purposes.registered()
                                                 if not p.startswith("test.")},
    }, status_code=status_code)


@router.get("/authorizations")
def authorization_list(request: Request, session: SessionDep, user: Staff) -> Response:
    return _auth_page(request, session)


@router.post("/authorizations", dependencies=[CsrfChecked])
def authorize(request: Request, session: SessionDep, user: Staff, customer_id: Annotated[str, Form()] = "",
              account_no: Annotated[str, Form()] = "", holder_name: Annotated[str, Form()] = "",
              bank_name: Annotated[str, Form()] = "", max_amount: Annotated[str, Form()] = "",
              scope: Annotated[list[str] | None, Form()] = None) -> Response:
    form = {"customer_id": customer_id, "account_no": account_no, "holder_name": holder_name,
            "bank_name": bank_name, "max_amount": max_amount}

    def run() -> object:
        cid = parse_int(customer_id)
        if cid is None or session.get(Customer, cid) is None:
            raise ValidationFailed("请填写存在的客户编号", field="customer_id")
        return withholding.authorize(session, customer_id=cid, account_no=account_no, holder_name=holder_name,
                                     bank_name=bank_name, scope=list(scope or []),
                                     max_amount=yuan_text_to_fen(max_amount, "max_amount", "单笔上限") or 0,
                                     signed_via="console", staff_id=user.staff.id)

    _, error = attempt(session, run)
    if error:
        return _auth_page(request, session, error=error, form=form, status_code=error.status)
    return RedirectResponse("/console/payments/authorizations?done=authorized", status_code=303)


@router.post("/authorizations/{authorization_id}/revoke", dependencies=[CsrfChecked])
def revoke(authorization_id: int, request: Request, session: SessionDep, user: Staff,
           reason: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: withholding.revoke(session, authorization_id, reason=reason,
                                                           staff_id=user.staff.id))
    if error:
        return _auth_page(request, session, error=error, status_code=error.status)
    return RedirectResponse("/console/payments/authorizations?done=revoked", status_code=303)


# --- reconciliation -------------------------------------------------------------------------------------

def _recon_page(request: Request, session: SessionDep, *, error: AppError | None = None,
                status_code: int = 200) -> Response:
    runs = list(session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(60)))
    return render(request, "payments/reconciliation.html", {
        "runs": runs, "error": error, "notice": _notice(request),
        "yesterday": (clock.today() - timedelta(days=1)).isoformat(),
    }, status_code=status_code)


@router.get("/reconciliation")
def reconciliation_list(request: Request, session: SessionDep, user: Staff) -> Response:
    return _recon_page(request, session)


@router.post("/reconciliation", dependencies=[CsrfChecked])
def run_reconciliation(request: Request, session: SessionDep, user: Staff,
                       bill_date: Annotated[str, Form()] = "") -> Response:
    def run() -> ReconciliationRun:
        try:
            day = date.fromisoformat(bill_date.strip())
        except ValueError:
            raise ValidationFailed("请选择对账日期", field="bill_date") from None
        return reconciliation.run(session, day, staff_id=user.staff.id)

    recon, error = attempt(session, run)
    if error or recon is None:
        return _recon_page(request, session, error=error, status_code=error.status if error else 400)
    return RedirectResponse(f"/console/payments/reconciliation/{recon.id}?done=ran", status_code=303)


def _run_page(request: Request, session: SessionDep, run_id: int, *, error: AppError | None = None,
              status_code: int = 200) -> Response:
    recon = session.get(ReconciliationRun, run_id)
    if recon is None:
        raise NotFound("对账记录不存在")
    return render(request, "payments/reconciliation_run.html", {
        "r": recon, "items": reconciliation.items(session, recon.id), "actions_for": reconciliation.actions_for,
        "error": error, "notice": _notice(request),
    }, status_code=status_code)


@router.get("/reconciliation/{run_id}")
def reconciliation_run(run_id: int, request: Request, session: SessionDep, user: Staff) -> Response:
    return _run_page(request, session, run_id)


@router.post("/reconciliation/items/{item_id}", dependencies=[CsrfChecked])
def resolve_item(item_id: int, request: Request, session: SessionDep, user: Staff,
                 action: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
                 run_id: Annotated[str, Form()] = "") -> Response:
    rid = parse_int(run_id) or 0
    _, error = attempt(session, lambda: reconciliation.resolve(session, item_id, action=action, note=note,
                                                               staff_id=user.staff.id))
    if error:
        return _run_page(request, session, rid, error=error, status_code=error.status)
    return RedirectResponse(f"/console/payments/reconciliation/{rid}?done=resolved", status_code=303)
