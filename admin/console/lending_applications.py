"""Lending application pages: the pipeline board, starting an application from a customer, the application
page (checklist, reviews, risk, contract, disbursement) and the printable contract summary.

Routes parse forms and call lending.applications / contracts / disbursement inside a savepoint
(``attempt``); every form carries the CSRF token; every read is data-scoped through the customer
(out of scope is 404).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin import product_matching
from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, templates
from admin.pagination import counted, page_number
from admin.schemas_customers import yuan_text_to_fen
from analytics import export_jobs
from analytics.export_kinds import BoardFilter
from core import clock, money
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm import customers
from crm.models import ROLE_LABELS, STAGE_LABELS, Customer, Department, Staff
from crm.scope import staff_filter
from lending import application_files, application_list, applications, approval, contracts, disbursement, products
from lending.models import (
    APPLICATION_STATUS_LABELS,
    CONTRACT_STATUS_LABELS,
    NODE_KIND_LABELS,
    Application,
    Funder,
    Product,
    RiskEvaluation,
    WorkflowNode,
)
from lending.workflow import definitions
from lending.workflow.machine import EVENT_LABELS

router = APIRouter(prefix="/console/lending", include_in_schema=False)

NOTICES = {
    "started": "申请已创建，进入「进件」节点", "approve": "已通过，申请进入下一节点", "reject": "申请已拒绝",
    "withdraw": "申请已撤回", "fields": "资料已保存", "document": "材料已登记", "signed": "合同已签署，进入放款节点",
    "disbursed": "放款已登记，贷款已生效",
}

templates.env.filters.update(
    yuan=lambda fen: "—" if fen is None else money.format_yuan(fen),
    app_status_label=lambda v: APPLICATION_STATUS_LABELS.get(v, v),
    contract_status_label=lambda v: CONTRACT_STATUS_LABELS.get(v, v),
    event_name=lambda v: EVENT_LABELS.get(v, v), node_kind_label=lambda v: NODE_KIND_LABELS.get(v, v),
    stage_label=lambda v: STAGE_LABELS.get(v, v),
)


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if raw and raw.strip() else None
    except ValueError:
        return None


def _redirect(app_id: int, done: str) -> Response:
    return RedirectResponse(f"/console/lending/applications/{app_id}?done={done}", status_code=303)


# --- the pipeline board ---------------------------------------------------------------------------------


def _board_filters(q: Any) -> dict[str, Any]:
    return {"product_id": parse_int(q.get("product_id")), "owner_id": parse_int(q.get("owner_id")),
            "date_from": _date(q.get("date_from")), "date_to": _date(q.get("date_to")), "mine": q.get("mine") == "1"}


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of the board (every open application it would show, past its 500 cards): the filters as the job
    stores them; the scope is the requester's."""
    return export_jobs.dataclass_params(BoardFilter(**_board_filters(form)))


LIST_KEYS = ("created_from", "created_to", "status", "owner_id", "department_id", "source", "region", "product_id",
             "owner_department_id", "source_detail", "industry", "funder_id", "funder_type")


def _list_filter(session: Session, q: Any) -> tuple[application_list.ApplicationFilter, dict[str, str]]:
    """The list's filters from the query string (the dashboards' drill-down links use the same names)."""
    department_id = parse_int(q.get("department_id", ""))
    path = session.scalar(select(Department.path).where(Department.id == department_id)) if department_id else None
    if department_id and path is None:
        raise ValidationFailed("部门不存在", field="department_id")
    status = (q.get("status") or "").strip() or None
    if status is not None and status not in application_list.STATUS_CHOICES:
        raise ValidationFailed("未知的申请状态", field="status")
    created = {}
    for key, label in (("created_from", "申请开始日期"), ("created_to", "申请结束日期")):
        raw = (q.get(key) or "").strip()
        created[key] = _date(raw)
        if raw and created[key] is None:
            raise ValidationFailed(f"{label}格式不正确：{raw}", field=key)
    flt = application_list.ApplicationFilter(
        **created, status=status, owner_id=parse_int(q.get("owner_id", "")), department_path=path,
        source=(q.get("source") or "").strip() or None, region=(q.get("region") or "").strip() or None,
        product_id=parse_int(q.get("product_id", "")), owner_department_id=parse_int(q.get("owner_department_id", "")),
        source_detail=(q.get("source_detail") or "").strip() or None, industry=(q.get("industry") or "").strip() or None,
        funder_id=parse_int(q.get("funder_id", "")), funder_type=(q.get("funder_type") or "").strip() or None)
    return flt, {k: str(q.get(k)).strip() for k in LIST_KEYS if (q.get(k) or "").strip()}


def _list_page(request: Request, session: Session, user: ConsoleUser) -> Response:
    """申请列表: every application (open or decided) in the viewer's scope, as the figures of analytics count them."""
    flt, params = _list_filter(session, request.query_params)
    number = page_number(request.query_params.get("page"))
    page = counted(number, application_list.count(session, user.viewer, flt), "/console/lending/applications",
                   {"view": "list", **params}, size=50)
    rows = application_list.list_applications(session, user.viewer, flt, limit=50, offset=page.offset)
    owners = list(session.scalars(select(Staff).where(staff_filter(user.viewer)).order_by(Staff.display_name)
                                  .limit(500)))
    names = {s.id: s.display_name for s in owners}
    names.update(_staff_names(session, {r.owner_id for r in rows} - set(names)))
    form_keys = ("created_from", "created_to", "status", "owner_id", "product_id")
    return render(request, "lending/application_list.html", {
        "rows": rows, "page": page, "filters": {k: params.get(k, "") for k in LIST_KEYS},
        "hidden_filters": {k: v for k, v in params.items() if k not in form_keys},
        "statuses": application_list.STATUS_CHOICES, "owners": owners, "staff_names": names,
        "products": list(session.scalars(select(Product).order_by(Product.code))),
        "mask_name": contracts.mask_name,
    })


def _staff_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(wanted))).all())


@router.get("/applications")
def pipeline(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    if request.query_params.get("view") == "list":
        return _list_page(request, session, user)
    filters = _board_filters(request.query_params)
    board = applications.pipeline(session, user.viewer, **filters)
    owners = list(session.scalars(select(Staff).where(staff_filter(user.viewer)).order_by(Staff.display_name)
                                  .limit(500)))
    return render(request, "lending/applications.html", {
        "board": board, "filters": filters, "products": list(session.scalars(select(Product).order_by(Product.code))),
        "owners": owners, "staff_names": {s.id: s.display_name for s in owners},
        "export_params": export_params(session, user, dict(request.query_params)),
    })


# --- start an application -------------------------------------------------------------------------------


def _new_page(request: Request, session: SessionDep, user: ConsoleUser, customer_id: int, *,
              error: AppError | None = None, form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    customer = customers.get_customer(session, user.viewer, customer_id)
    form = form or {
        "amount": request.query_params.get("amount") or (
            str(money.fen_to_yuan(customer.demand_amount)) if customer.demand_amount else ""),
        "term_months": request.query_params.get("term_months") or str(customer.demand_term_months or "")}
    return render(request, "lending/application_new.html", {
        "c": customer, "error": error, "form": form,
        **product_matching.context(session, customer, form.get("amount", ""), form.get("term_months", "")),
    }, status_code=status_code)


@router.get("/applications/new")
def new_application(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    customer_id = parse_int(request.query_params.get("customer_id"))
    if customer_id is None:
        raise ValidationFailed("请从客户页面发起申请（缺少客户）", field="customer_id")
    return _new_page(request, session, user, customer_id)


@router.get("/applications/new/match")
def new_application_match(request: Request, session: SessionDep, user: CurrentUser, customer_id: int,
                          amount: str = "", term_months: str = "", product_version_id: str = "") -> Response:
    """An htmx fragment: the product matching again as the amount or term is typed."""
    customer = customers.get_customer(session, user.viewer, customer_id)
    return render(request, "lending/_product_match.html", {
        "form": {"product_version_id": product_version_id}, **product_matching.context(session, customer, amount, term_months)})


@router.post("/applications", dependencies=[CsrfChecked])
def create_application(request: Request, session: SessionDep, user: CurrentUser,
                       customer_id: Annotated[str, Form()] = "", product_version_id: Annotated[str, Form()] = "",
                       amount: Annotated[str, Form()] = "", term_months: Annotated[str, Form()] = "",
                       idempotency_key: Annotated[str, Form()] = "") -> Response:
    cid = parse_int(customer_id)
    if cid is None:
        raise ValidationFailed("缺少客户", field="customer_id")

    def run() -> Application:
        version_id = parse_int(product_version_id)
        if version_id is None:
            raise ValidationFailed("请选择产品", field="product_version_id")
        fen = yuan_text_to_fen(amount, "amount", "申请金额")
        if fen is None:
            raise ValidationFailed("请填写申请金额", field="amount")
        term = parse_int(term_months)
        if term is None:
            raise ValidationFailed("请填写期限（月）", field="term_months")
        return applications.start_application(session, cid, version_id, fen, term, viewer=user.viewer,
                                              channel="console", idempotency_key=idempotency_key or None)

    app, error = attempt(session, run)
    if error or app is None:
        form = {"amount": amount, "term_months": term_months, "product_version_id": product_version_id}
        return _new_page(request, session, user, cid, error=error, form=form,
                         status_code=error.status if error else 400)
    return _redirect(app.id, "started")


# --- the application page --------------------------------------------------------------------------------


def _context(session: SessionDep, user: ConsoleUser, app: Application) -> dict[str, Any]:
    customer = session.get(Customer, app.customer_id)
    version = products.get_version(session, app.product_version_id)
    product = session.get(Product, app.product_id)
    funder = session.get(Funder, product.funder_id) if product else None
    node = session.get(WorkflowNode, app.current_node_id) if app.current_node_id else None
    try:
        quote = products.quote(version, app.requested_amount, app.term_months)
    except AppError:
        quote = None
    contract = contracts.contract_for(session, app.id)
    loan = disbursement.loan_for(session, app.id)
    staff_ids = {t.by_staff_id for t in applications.transitions(session, app.id) if t.by_staff_id}
    staff_ids |= {f.by_staff_id for f in application_files.files(session, app.id) if f.by_staff_id}
    if customer and customer.owner_id:
        staff_ids.add(customer.owner_id)
    names = dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(staff_ids))).all())
    risk = session.get(RiskEvaluation, app.risk_evaluation_id) if app.risk_evaluation_id else None
    visit = applications.engine.open_visit(session, app.id)
    may_act = node is not None and applications.may_act(session, user.viewer, app)
    return {
        "may_act": may_act, "approval": approval.options(session, user.viewer, app, node, may_act=may_act),
        "app": app, "c": customer, "version": version, "product": product, "funder": funder, "node": node,
        "quote": quote, "contract": contract, "loan": loan,
        "lines": contracts.lines(session, contract.id) if contract and contract.snapshot else [],
        "installments": disbursement.installments(session, loan.id) if loan else [],
        "checklist": applications.checklist(session, app, node), "fields": definitions.FIELDS,
        "documents": applications.documents(session, app.id), "files": application_files.files(session, app.id),
        "file_types": application_files.TYPE_LABELS, "transitions": applications.transitions(session, app.id),
        "visits": applications.visits(session, app.id), "staff_names": names, "risk": risk,
        "risk_labels": {"pass": "通过", "warn": "警示", "manual_review": "人工审核", "reject": "拒绝"},
        "open_visit": visit, "now": clock.now(), "mask_name": contracts.mask_name, "dwell_label": applications.dwell_label,
        "role_labels": ROLE_LABELS, "can_disburse": user.viewer.role in disbursement.DISBURSERS,
        "nodes": applications.machine_for(session, app).nodes,
        "node_names": {n.id: n.name for n in applications.machine_for(session, app).nodes},
        "principal_yuan": str(money.fen_to_yuan(contract.principal_amount)) if contract else "",
    }


def _page(request: Request, session: SessionDep, user: ConsoleUser, app_id: int, *, error: AppError | None = None,
          status_code: int = 200) -> Response:
    app = applications.get_application(session, user.viewer, app_id)
    ctx = _context(session, user, app)
    ctx.update(error=error, notice=NOTICES.get(request.query_params.get("done", "")))
    return render(request, "lending/application.html", ctx, status_code=status_code)


@router.get("/applications/{app_id}")
def application_page(app_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _page(request, session, user, app_id)


def _act(request: Request, session: SessionDep, user: ConsoleUser, app_id: int, action: Any, done: str) -> Response:
    applications.get_application(session, user.viewer, app_id)  # 404 outside the scope, before anything else
    _, error = attempt(session, action)
    if error:
        return _page(request, session, user, app_id, error=error, status_code=error.status)
    return _redirect(app_id, done)


@router.post("/applications/{app_id}/approve", dependencies=[CsrfChecked])
def approve(app_id: int, request: Request, session: SessionDep, user: CurrentUser,
            comment: Annotated[str, Form()] = "", node_id: Annotated[str, Form()] = "",
            override_reason: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, app_id, lambda: applications.approve(
        session, app_id, viewer=user.viewer, comment=comment, expected_node_id=parse_int(node_id),
        override_reason=override_reason or None), "approve")


@router.post("/applications/{app_id}/reject", dependencies=[CsrfChecked])
def reject(app_id: int, request: Request, session: SessionDep, user: CurrentUser,
           reason: Annotated[str, Form()] = "", node_id: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, app_id, lambda: applications.reject(
        session, app_id, reason, viewer=user.viewer, expected_node_id=parse_int(node_id)), "reject")


@router.post("/applications/{app_id}/withdraw", dependencies=[CsrfChecked])
def withdraw(app_id: int, request: Request, session: SessionDep, user: CurrentUser,
             reason: Annotated[str, Form()] = "", node_id: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, app_id, lambda: applications.withdraw(
        session, app_id, reason, viewer=user.viewer, expected_node_id=parse_int(node_id)), "withdraw")


@router.post("/applications/{app_id}/fields", dependencies=[CsrfChecked])
async def save_fields(app_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    values = {k[len("field_"):]: str(v) for k, v in form.items() if k.startswith("field_")}
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(_act, request, session, user, app_id, lambda: applications.set_fields(
        session, app_id, values, viewer=user.viewer), "fields")


@router.post("/applications/{app_id}/documents", dependencies=[CsrfChecked])
def add_document(app_id: int, request: Request, session: SessionDep, user: CurrentUser,
                 kind: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
                 file: Annotated[UploadFile | None, File()] = None) -> Response:
    """A document received: with its file (kept encrypted) when one is chosen, else only marked received."""
    if file is not None and file.filename:
        data = file.file.read(application_files.MAX_BYTES + 1)
        return _act(request, session, user, app_id, lambda: application_files.attach(
            session, app_id, kind, data, viewer=user.viewer, file_name=file.filename, note=note), "document")
    return _act(request, session, user, app_id, lambda: applications.add_document(
        session, app_id, kind, viewer=user.viewer, note=note), "document")


@router.get("/applications/{app_id}/files/{file_id}")
def open_file(app_id: int, file_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """The file itself, decrypted for someone who may see the application; each opening is audit-logged."""
    row, data = application_files.open_file(session, user.viewer, app_id, file_id)
    session.commit()  # the audit row of this opening is kept even if the download is interrupted
    return Response(data, media_type=row.content_type, headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(row.file_name)}",
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.post("/applications/{app_id}/sign", dependencies=[CsrfChecked])
def sign(app_id: int, request: Request, session: SessionDep, user: CurrentUser,
         comment: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, user, app_id, lambda: contracts.sign_contract(
        session, app_id, viewer=user.viewer, comment=comment), "signed")


@router.post("/applications/{app_id}/disburse", dependencies=[CsrfChecked])
def disburse(app_id: int, request: Request, session: SessionDep, user: CurrentUser,
             funder_reference: Annotated[str, Form()] = "", disbursement_date: Annotated[str, Form()] = "",
             amount: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        day = None
        if disbursement_date.strip():
            day = _date(disbursement_date)
            if day is None:
                raise ValidationFailed("放款日期格式不正确", field="disbursement_date")
        return disbursement.disburse(session, app_id, viewer=user.viewer, funder_reference=funder_reference,
                                     disbursement_date=day, amount=yuan_text_to_fen(amount, "amount", "放款金额"))

    return _act(request, session, user, app_id, run, "disbursed")


@router.get("/contracts/{contract_id}/print")
def contract_print(contract_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    contract = contracts.get_contract(session, user.viewer, contract_id)  # 404 outside the viewer's scope
    return render(request, "lending/contract_print.html", {
        "contract": contract, "borrower": contracts.borrower_for_print(session, contract), "lines": contracts.lines(session, contract.id),
        "snapshot": contract.snapshot or {}, "today": clock.today(),
    })
