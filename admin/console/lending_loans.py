"""Servicing pages (贷后): the loan list with status and bucket filters, the loan page (schedule with due / paid /
outstanding and penalty per installment, record a repayment, repayment history with reversal and the refund of a reversed one, collection actions),
and the collections queue (催收队列).

Routes parse forms and call lending.servicing inside a savepoint (``attempt``); every form carries the CSRF
token; every read is data-scoped (out of scope is 404). Phones are masked; revealing one is audit-logged.
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
from analytics import export_jobs, snapshot_drill
from core import clock, money
from core.errors import AppError, PermissionDenied, ValidationFailed
from core.web import SessionDep
from crm.models import Customer, Department, Staff, StaffStatus
from crm.permissions import holder_roles
from lending import contracts
from lending.models import (
    BUCKET_LABELS,
    BUCKETS,
    COMPONENT_LABELS,
    INSTALLMENT_STATUS_LABELS,
    LOAN_STATUS_LABELS,
    REPAYMENT_CHANNEL_LABELS,
    REPAYMENT_PURPOSE_LABELS,
    RESTRUCTURE_KIND_LABELS,
    SCHEDULE_REASON_LABELS,
    Contract,
)
from lending.servicing import loans, prepayments, refunds, reminders, repayments, restructures, state, versions, waivers
from postloan import actions as collections
from postloan.models import ACTION_KIND_LABELS, PROMISE_STATUS_LABELS, CollectionCase

router = APIRouter(prefix="/console/lending", include_in_schema=False)

NOTICES = {"repaid": "还款已入账", "reversed": "还款已冲正", "action": "催收记录已保存", "assigned": "催收分配已更新",
           "prepaid": "提前还款已入账，还款计划已更新", "waiver_requested": "减免申请已提交，待审批",
           "waiver_approved": "减免已批准并入账", "waiver_rejected": "减免申请已驳回",
           "refunded": "退款已办理", "credit_refunded": "溢缴款退款已办理，其余仍为溢缴款", "restructure_requested": "展期/重组申请已提交，待审批",
           "restructure_approved": "展期/重组已批准，还款计划已更新", "restructure_rejected": "展期/重组申请已驳回"}

templates.env.filters.update(
    yuan=lambda fen: "—" if fen is None else money.format_yuan(fen),
    loan_status_label=lambda v: LOAN_STATUS_LABELS.get(v, v),
    installment_status_label=lambda v: INSTALLMENT_STATUS_LABELS.get(v, v),
    bucket_label=lambda v: BUCKET_LABELS.get(v, v),
    channel_label=lambda v: REPAYMENT_CHANNEL_LABELS.get(v, v),
    action_kind_label=lambda v: ACTION_KIND_LABELS.get(v, v),
    promise_status_label=lambda v: PROMISE_STATUS_LABELS.get(v, v),
    repayment_purpose_label=lambda v: REPAYMENT_PURPOSE_LABELS.get(v, v),  # payments owns purpose_label
    schedule_reason_label=lambda v: SCHEDULE_REASON_LABELS.get(v, v),
)


def _date(raw: str, field: str, label: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(f"{label}格式不正确：{raw}", field=field) from None


# --- the loan list ---------------------------------------------------------------------------------------


LOAN_FILTER_KEYS = ("status", "bucket", "disbursed_from", "disbursed_to", "owner_id", "department_id", "source",
                    "region", "product_id", "owner_department_id", "source_detail", "industry", "funder_id",
                    "funder_type",
                    *snapshot_drill.PARAMS)  # a snapshot chart's drill-down (analytics.snapshot_drill)


def loan_filter_from_query(session: SessionDep, q: Any) -> tuple[loans.LoanFilter, dict[str, str]]:
    """The list's filters from the query string (the dashboards' drill-down links use the same names)."""
    status = q.get("status") if q.get("status") in LOAN_STATUS_LABELS else None
    bucket = q.get("bucket") if q.get("bucket") in (*BUCKETS, "overdue") else None
    department_id = parse_int(q.get("department_id", ""))
    path = session.scalar(select(Department.path).where(Department.id == department_id)) if department_id else None
    flt = loans.LoanFilter(
        status=status, bucket=bucket,
        disbursed_from=_date(q.get("disbursed_from", ""), "disbursed_from", "放款开始日期"),
        disbursed_to=_date(q.get("disbursed_to", ""), "disbursed_to", "放款结束日期"),
        owner_id=parse_int(q.get("owner_id", "")), source=(q.get("source") or "").strip() or None,
        department_path=path if department_id else None, region=(q.get("region") or "").strip() or None,
        product_id=parse_int(q.get("product_id", "")), owner_department_id=parse_int(q.get("owner_department_id", "")),
        source_detail=(q.get("source_detail") or "").strip() or None, industry=(q.get("industry") or "").strip() or None,
        funder_id=parse_int(q.get("funder_id", "")), funder_type=(q.get("funder_type") or "").strip() or None)
    if department_id and path is None:
        raise ValidationFailed("部门不存在", field="department_id")
    params = {k: q.get(k, "") for k in LOAN_FILTER_KEYS if q.get(k)}
    params.update(status=status or "", bucket=bucket or "")
    return flt, params


@router.get("/loans")
def loan_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    q = request.query_params
    page = page_number(q.get("page"))
    flt, params = loan_filter_from_query(session, q)
    snap = snapshot_drill.from_params(q)
    rows = loans.list_loans(session, user.viewer, flt=flt, limit=51, offset=(page - 1) * 50,
                            extra=snapshot_drill.clauses(snap))
    names = _staff_names(session, {r.loan.collector_staff_id for r in rows})
    extra = {k: v for k, v in params.items() if k not in ("status", "bucket")}
    return render(request, "lending/loans.html", {
        "snapshot_chips": snapshot_drill.chips(snap),
        "snapshot_summary": snapshot_drill.summary(session, user.viewer, flt, snap) if snap.active else None,
        "rows": rows[:50], "has_next": len(rows) > 50, "page": page, "filters": {"status": flt.status, "bucket": flt.bucket},
        "extra_filters": extra, "query": urlencode(params), "export_params": {k: v for k, v in params.items() if v},
        "buckets": BUCKETS, "statuses": LOAN_STATUS_LABELS, "mask_name": contracts.mask_name, "staff_names": names,
    })


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel: the list's filters as the job stores them."""
    flt, _ = loan_filter_from_query(session, form)
    return {**export_jobs.dataclass_params(flt), **snapshot_drill.params(snapshot_drill.from_params(form))}


def _staff_names(session: SessionDep, ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids))).all())


# --- the loan page ---------------------------------------------------------------------------------------


def _context(session: SessionDep, user: ConsoleUser, loan_id: int) -> dict[str, Any]:
    loan = loans.get_loan(session, user.viewer, loan_id)
    customer = session.get(Customer, loan.customer_id)
    contract = session.get(Contract, loan.contract_id)
    history = loans.repayments(session, loan.id)
    reversed_ids = {r.reversal_of_id for r in history if r.reversal_of_id}
    actions = collections.actions(session, loan.id)
    promises = collections.promises(session, loan.id)
    reminder_rows = reminders.for_loan(session, loan.id)
    staff_ids = ({r.by_staff_id for r in history} | {a.by_staff_id for a in actions} | {loan.collector_staff_id}
                 | {r.staff_id for r in reminder_rows}
                 | {w.requested_by_staff_id for w in waivers.waivers(session, loan_id=loan.id)}
                 | {x.requested_by_staff_id for x in restructures.restructures(session, loan.id)})
    role = user.viewer.role
    collectors = []
    if role in collections.MANAGERS:
        collectors = list(session.scalars(select(Staff).where(Staff.role.in_(holder_roles(session, collections.COLLECTORS)),
                                                              Staff.status == StaffStatus.ACTIVE)
                                          .order_by(Staff.display_name).limit(200)))
    today = clock.today()
    all_refunds = refunds.refunds(session, loan.id)
    overpayment_refunds: dict[int, list[Any]] = {}
    for f in all_refunds:
        if f.kind == "overpayment":
            overpayment_refunds.setdefault(f.repayment_id, []).append(f)
    credits = refunds.credits(session, loan.id)
    return {
        "loan": loan, "c": customer, "contract": contract, "installments": state.installments(session, loan.id),
        "history": history, "reversed_ids": reversed_ids, "actions": actions, "promises": promises,
        "staff_names": _staff_names(session, staff_ids), "mask_name": contracts.mask_name,
        "payable": repayments.payable(session, loan, today) if loan.status == "active" else 0, "today": today,
        "channels": REPAYMENT_CHANNEL_LABELS, "components": COMPONENT_LABELS,
        "can_record": role in repayments.RECORDERS,
        "can_collect": role in collections.COLLECTORS | collections.MANAGERS,
        "can_assign": role in collections.MANAGERS, "collectors": collectors,
        "open_case_id": session.scalar(select(CollectionCase.id).where(CollectionCase.loan_id == loan.id,
                                                                       CollectionCase.status == "open")),
        "action_kinds": {k: ACTION_KIND_LABELS[k] for k in collections.LOGGED_KINDS},
        "terms": state.terms_for(session, loan),
        "versions": versions.history(session, loan.id), "modes": prepayments.MODE_LABELS,
        "waivers": waivers.waivers(session, loan_id=loan.id), "can_request_waiver": role in waivers.REQUESTERS,
        "waiver_limit": waivers.limit_of(session, role), "waiver_components": {
            k: COMPONENT_LABELS[k] for k in ("penalty", "interest", "fee")},
        "installment_numbers": {i.id: i.number for i in state.installments(session, loan.id)},
        "current_staff_id": user.viewer.staff_id,
        # the latest refund of each reversed repayment (a failed one may be retried), the overpayment refunds
        "refunded": {f.repayment_id: f for f in all_refunds if f.kind == "reversed"},
        "overpayment_refunds": overpayment_refunds, "credits": credits, "loan_credit": sum(credits.values()),
        "refund_payment_channels": refunds.PAYMENT_CHANNELS,
        "restructure_rows": restructures.restructures(session, loan.id), "restructure_kinds": RESTRUCTURE_KIND_LABELS,
        "can_request_restructure": role in restructures.REQUESTERS,
        "can_approve_restructure": role in restructures.APPROVERS,
        "reminder_rows": reminder_rows, "reminder_label": reminders.label,
        "reminder_audiences": reminders.AUDIENCE_LABELS, "reminder_statuses": reminders.STATUS_LABELS,
    }


def _quote(session: SessionDep, loan_id: int, request: Request, viewer: Any) -> dict[str, Any]:
    """The prepayment quote asked for in the query (试算), or its refusal; nothing when not asked."""
    q = request.query_params
    form = {"quote_date": q.get("quote_date", ""), "quote_amount": q.get("quote_amount", ""),
            "quote_mode": q.get("quote_mode", "keep_term")}
    if not form["quote_date"]:
        return {"quote": None, "quote_error": None, "quote_form": form}
    try:
        loan = loans.get_loan(session, viewer, loan_id)
        day = _date(form["quote_date"], "quote_date", "提前还款日期")
        assert day is not None
        amount = yuan_text_to_fen(form["quote_amount"], "quote_amount", "支付金额")
        quote = prepayments.quote(session, loan, day, amount=amount, mode=form["quote_mode"])
    except AppError as exc:
        return {"quote": None, "quote_error": exc, "quote_form": form}
    return {"quote": quote, "quote_error": None, "quote_form": form,
            "quote_yuan": str(money.fen_to_yuan(quote.total_amount))}


def _page(request: Request, session: SessionDep, user: ConsoleUser, loan_id: int, *, error: AppError | None = None,
          form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    ctx = _context(session, user, loan_id)
    ctx.update(_quote(session, loan_id, request, user.viewer))
    ctx.update(error=error, form=form or {}, notice=NOTICES.get(request.query_params.get("done", "")))
    return render(request, "lending/loan.html", ctx, status_code=status_code)


def _redirect(loan_id: int, done: str) -> Response:
    return RedirectResponse(f"/console/lending/loans/{loan_id}?done={done}", status_code=303)


@router.get("/loans/{loan_id}")
def loan_page(loan_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _page(request, session, user, loan_id)


@router.post("/loans/{loan_id}/repayments", dependencies=[CsrfChecked])
def record_repayment(loan_id: int, request: Request, session: SessionDep, user: CurrentUser,
                     amount: Annotated[str, Form()] = "", repayment_date: Annotated[str, Form()] = "",
                     channel: Annotated[str, Form()] = "bank_transfer",
                     external_reference: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
                     prepayment_mode: Annotated[str, Form()] = "", keep_excess: Annotated[str, Form()] = "") -> Response:
    loans.get_loan(session, user.viewer, loan_id)  # 404 outside the scope, before anything else

    def run() -> object:
        fen = yuan_text_to_fen(amount, "amount", "还款金额")
        if fen is None:
            raise ValidationFailed("请填写还款金额", field="amount")
        return repayments.record_repayment(
            session, loan_id, viewer=user.viewer, amount=fen, channel=channel, external_reference=external_reference,
            repayment_date=_date(repayment_date, "repayment_date", "还款日期"), note=note,
            prepayment_mode=prepayment_mode or None, keep_excess=bool(keep_excess) and not prepayment_mode)

    _, error = attempt(session, run)
    if error:
        form = {"amount": amount, "repayment_date": repayment_date, "channel": channel,
                "external_reference": external_reference, "note": note, "keep_excess": keep_excess}
        return _page(request, session, user, loan_id, error=error, form=form, status_code=error.status)
    return _redirect(loan_id, "prepaid" if prepayment_mode else "repaid")


@router.post("/repayments/{repayment_id}/reverse", dependencies=[CsrfChecked])
def reverse_repayment(repayment_id: int, request: Request, session: SessionDep, user: CurrentUser,
                      reason: Annotated[str, Form()] = "") -> Response:
    original = repayments.get_repayment(session, user.viewer, repayment_id)
    _, error = attempt(session, lambda: repayments.reverse_repayment(session, repayment_id, viewer=user.viewer,
                                                                      reason=reason))
    if error:
        return _page(request, session, user, original.loan_id, error=error, status_code=error.status)
    return _redirect(original.loan_id, "reversed")


@router.post("/repayments/{repayment_id}/refund", dependencies=[CsrfChecked])
def refund_repayment(repayment_id: int, request: Request, session: SessionDep, user: CurrentUser,
                     reason: Annotated[str, Form()] = "", reference: Annotated[str, Form()] = "") -> Response:
    original = repayments.get_repayment(session, user.viewer, repayment_id)
    _, error = attempt(session, lambda: refunds.refund_reversed(session, repayment_id, viewer=user.viewer,
                                                                 reason=reason, reference=reference))
    if error:
        return _page(request, session, user, original.loan_id, error=error, status_code=error.status)
    return _redirect(original.loan_id, "refunded")


@router.post("/repayments/{repayment_id}/refund-overpayment", dependencies=[CsrfChecked])
def refund_overpayment(repayment_id: int, request: Request, session: SessionDep, user: CurrentUser,
                       amount: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
                       reference: Annotated[str, Form()] = "") -> Response:
    original = repayments.get_repayment(session, user.viewer, repayment_id)

    def run() -> object:
        fen = yuan_text_to_fen(amount, "amount", "退款金额")
        if fen is None:
            raise ValidationFailed("请填写退款金额", field="amount")
        return refunds.refund_overpayment(session, repayment_id, viewer=user.viewer, amount=fen, reason=reason,
                                          reference=reference)

    _, error = attempt(session, run)
    if error:
        form = {"o_repayment_id": str(repayment_id), "o_amount": amount, "o_reason": reason, "o_reference": reference}
        return _page(request, session, user, original.loan_id, error=error, form=form, status_code=error.status)
    return _redirect(original.loan_id, "credit_refunded")


@router.post("/loans/{loan_id}/waivers", dependencies=[CsrfChecked])
def request_waiver(loan_id: int, request: Request, session: SessionDep, user: CurrentUser,
                   installment_number: Annotated[str, Form()] = "", component: Annotated[str, Form()] = "",
                   amount: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "") -> Response:
    loans.get_loan(session, user.viewer, loan_id)

    def run() -> object:
        fen = yuan_text_to_fen(amount, "amount", "减免金额")
        number = parse_int(installment_number)
        if fen is None or number is None:
            raise ValidationFailed("请填写期数和减免金额", field="amount")
        return waivers.request_waiver(session, loan_id, viewer=user.viewer, installment_number=number,
                                      component=component, amount=fen, reason=reason)

    _, error = attempt(session, run)
    if error:
        form = {"w_installment_number": installment_number, "w_component": component, "w_amount": amount,
                "w_reason": reason}
        return _page(request, session, user, loan_id, error=error, form=form, status_code=error.status)
    return _redirect(loan_id, "waiver_requested")


@router.post("/waivers/{waiver_id}/{decision}", dependencies=[CsrfChecked])
def decide_waiver(waiver_id: int, decision: str, request: Request, session: SessionDep, user: CurrentUser,
                  note: Annotated[str, Form()] = "") -> Response:
    if decision not in ("approve", "reject"):
        raise ValidationFailed("未知的审批操作", field="decision")
    waiver = waivers.get_waiver(session, user.viewer, waiver_id)
    decide = waivers.approve_waiver if decision == "approve" else waivers.reject_waiver
    _, error = attempt(session, lambda: decide(session, waiver_id, viewer=user.viewer, note=note))
    if error:
        return _page(request, session, user, waiver.loan_id, error=error, status_code=error.status)
    return _redirect(waiver.loan_id, "waiver_approved" if decision == "approve" else "waiver_rejected")


@router.post("/loans/{loan_id}/restructures", dependencies=[CsrfChecked])
def request_restructure(loan_id: int, request: Request, session: SessionDep, user: CurrentUser,
                        kind: Annotated[str, Form()] = "extension", periods: Annotated[str, Form()] = "",
                        reason: Annotated[str, Form()] = "", annual_rate: Annotated[str, Form()] = "",
                        capitalise: Annotated[str, Form()] = "") -> Response:
    loans.get_loan(session, user.viewer, loan_id)

    def run() -> object:
        count = parse_int(periods)
        if count is None:
            raise ValidationFailed("请填写期数", field="periods")
        rate = None
        if annual_rate.strip():  # typed as a percent: 8 or 8% is 8% a year
            rate = money.parse_rate(annual_rate.strip().removesuffix("%").strip() + "%")
        return restructures.request(session, loan_id, viewer=user.viewer, kind=kind, reason=reason,
                                    extra_periods=count if kind == "extension" else None,
                                    periods=count if kind != "extension" else None, annual_rate=rate,
                                    capitalise=bool(capitalise))

    _, error = attempt(session, run)
    if error:
        form = {"r_kind": kind, "r_periods": periods, "r_reason": reason, "r_annual_rate": annual_rate,
                "r_capitalise": capitalise}
        return _page(request, session, user, loan_id, error=error, form=form, status_code=error.status)
    return _redirect(loan_id, "restructure_requested")


@router.post("/restructures/{restructure_id}/{decision}", dependencies=[CsrfChecked])
def decide_restructure(restructure_id: int, decision: str, request: Request, session: SessionDep, user: CurrentUser,
                       note: Annotated[str, Form()] = "") -> Response:
    if decision not in ("approve", "reject"):
        raise ValidationFailed("未知的审批操作", field="decision")
    loan_id = restructures.get(session, user.viewer, restructure_id).loan_id
    decide = restructures.approve if decision == "approve" else restructures.reject
    _, error = attempt(session, lambda: decide(session, restructure_id, viewer=user.viewer, note=note))
    if error:
        return _page(request, session, user, loan_id, error=error, status_code=error.status)
    return _redirect(loan_id, "restructure_approved" if decision == "approve" else "restructure_rejected")


@router.post("/loans/{loan_id}/actions", dependencies=[CsrfChecked])
def log_action(loan_id: int, request: Request, session: SessionDep, user: CurrentUser,
               kind: Annotated[str, Form()] = "", outcome: Annotated[str, Form()] = "",
               note: Annotated[str, Form()] = "", promised_date: Annotated[str, Form()] = "",
               promised_amount: Annotated[str, Form()] = "") -> Response:
    loans.get_loan(session, user.viewer, loan_id)

    def run() -> object:
        return collections.log_action(
            session, loan_id, viewer=user.viewer, kind=kind, outcome=outcome, note=note,
            promised_date=_date(promised_date, "promised_date", "承诺还款日期"),
            promised_amount=yuan_text_to_fen(promised_amount, "promised_amount", "承诺还款金额"))

    _, error = attempt(session, run)
    if error:
        form = {"kind": kind, "outcome": outcome, "note": note, "promised_date": promised_date,
                "promised_amount": promised_amount}
        return _page(request, session, user, loan_id, error=error, form=form, status_code=error.status)
    return _redirect(loan_id, "action")


@router.post("/loans/{loan_id}/assign", dependencies=[CsrfChecked])
def assign(loan_id: int, request: Request, session: SessionDep, user: CurrentUser,
           collector_id: Annotated[str, Form()] = "") -> Response:
    loans.get_loan(session, user.viewer, loan_id)
    _, error = attempt(session, lambda: collections.assign(session, loan_id, parse_int(collector_id),
                                                           viewer=user.viewer))
    if error:
        return _page(request, session, user, loan_id, error=error, status_code=error.status)
    return _redirect(loan_id, "assigned")


# --- the collections queue -------------------------------------------------------------------------------


@router.get("/collections")
def collections_queue(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    if user.viewer.role not in collections.COLLECTORS | collections.MANAGERS:
        raise PermissionDenied("只有催收、风控、经理或管理员可以查看催收队列")
    q = request.query_params
    bucket = q.get("bucket") if q.get("bucket") in BUCKETS[1:] else None
    filters = {"bucket": bucket, "mine": q.get("mine") == "1", "broken": q.get("broken") == "1"}
    rows = collections.queue(session, user.viewer, bucket=bucket, mine=filters["mine"],
                             broken_only=filters["broken"])
    return render(request, "lending/collections.html", {
        "rows": rows, "filters": filters, "buckets": BUCKETS[1:], "mask_name": contracts.mask_name,
    })
