"""Loan endpoints: products and the calculator, applications with documents, visits, my loans."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from sqlalchemy import select

from core.web import SessionDep
from crm import customers
from crm import visits as crm_visits
from crm.exceptions import DepartmentNotFound
from crm.models import VISIT_STATUS_LABELS, Department, DepartmentKind, Visit
from miniprogram_api import applications, catalog, loans, uploads
from miniprogram_api.deps import Customer, submit_limit
from miniprogram_api.exceptions import DraftSubmitted
from miniprogram_api.models import DRAFT_STATUS_LABELS
from miniprogram_api.responses import (
    ERROR_RESPONSES,
    BranchList,
    CalculatorOut,
    DocumentList,
    DocumentOut,
    DraftList,
    DraftRead,
    DraftSubmittedOut,
    LoanList,
    LoanOut,
    MatchResult,
    Ok,
    PrepaymentQuote,
    ProductList,
    Progress,
    ReminderOptOut,
    VisitList,
    VisitOut,
)
from miniprogram_api.schemas import (
    CalculatorIn,
    CancelIn,
    DraftIn,
    MatchIn,
    RescheduleIn,
    SubmitIn,
    VisitIn,
    to_fen,
    to_rate,
)

router = APIRouter(responses=ERROR_RESPONSES)


# --- products and calculator ----------------------------------------------------------------------

@router.get("/products", summary="在售产品", tags=["产品"], response_model=ProductList)
def product_list(session: SessionDep) -> dict[str, Any]:
    return {"products": catalog.product_list(session)}


@router.post("/calculator", summary="还款计算器", tags=["产品"], response_model=CalculatorOut)
def calculator(body: CalculatorIn, session: SessionDep) -> dict[str, Any]:
    return catalog.calculate(session, amount=to_fen(body.amount), term_months=body.term_months,
                             product_id=body.product_id, annual_rate=to_rate(body.annual_rate),
                             method=body.repayment_method)


@router.post("/products/match", summary="为我匹配产品", tags=["产品"], response_model=MatchResult)
def product_match(body: MatchIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    return catalog.match(session, ident.customer_id, amount=to_fen(body.amount), term_months=body.term_months,
                         income_amount=to_fen(body.income, "income"))


# --- applications ---------------------------------------------------------------------------------

def _draft_input(body: DraftIn) -> applications.DraftInput:
    id_number = body.id_number
    if id_number and "*" in id_number:
        id_number = None  # the masked value read back unchanged: the number stays as registered
    return applications.DraftInput(
        product_id=body.product_id, amount=to_fen(body.amount), term_months=body.term_months, name=body.name,
        id_number=id_number, income_amount=to_fen(body.income, "income"), occupation=body.occupation,
        employer=body.employer, purpose=body.purpose)


def _draft(session: Any, draft: Any) -> dict[str, Any]:
    """The draft in the shape ``PUT`` takes (DraftFields), with what the server keeps."""
    profile = draft.profile or {}
    customer = customers.get_customer(session, None, draft.customer_id)
    return {
        "id": draft.id, "product_id": draft.product_id, "term_months": draft.term_months,
        "amount": catalog.yuan(draft.requested_amount) if draft.requested_amount is not None else None,
        "name": customer.name or None, "id_number": customer.id_number_masked,
        "income": catalog.yuan(profile["income_amount"]) if profile.get("income_amount") is not None else None,
        "occupation": profile.get("occupation"), "employer": profile.get("employer"),
        "purpose": profile.get("purpose"),
        "status": draft.status, "status_label": DRAFT_STATUS_LABELS.get(draft.status, draft.status),
        "created_at": draft.created_at, "updated_at": draft.updated_at,
        "submitted_at": draft.submitted_at, "application_id": draft.application_id,
        "documents": [_document(d) for d in uploads.list_for(session, draft.customer_id, draft.id)],
        "missing": applications.missing_items(session, draft) if draft.status == "draft" else [],
    }


def _document(doc: Any) -> dict[str, Any]:
    return {"id": doc.id, "kind": doc.kind, "kind_label": uploads.KINDS.get(doc.kind, doc.kind),
            "content_type": doc.content_type, "size_bytes": doc.size_bytes, "sha256": doc.sha256,
            "draft_id": doc.draft_id, "created_at": doc.created_at}


@router.get("/applications", summary="我的申请", tags=["进件"], response_model=DraftList)
def draft_list(ident: Customer, session: SessionDep) -> dict[str, Any]:
    return {"applications": [_draft(session, d) for d in applications.list_drafts(session, ident.customer_id)]}


@router.post("/applications", summary="新建申请草稿", tags=["进件"], response_model=DraftRead)
def draft_create(body: DraftIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    draft = applications.create_draft(session, ident.customer_id, _draft_input(body), actor=ident.actor())
    return _draft(session, draft)


@router.get("/applications/{draft_id}", summary="申请详情", tags=["进件"], response_model=DraftRead)
def draft_get(draft_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    return _draft(session, applications.get_draft(session, ident.customer_id, draft_id))


@router.put("/applications/{draft_id}", summary="保存申请草稿（与读取的字段相同，原样写回即可）", tags=["进件"],
            response_model=DraftRead)
@router.patch("/applications/{draft_id}", summary="保存申请草稿（同 PUT）", tags=["进件"], response_model=DraftRead)
def draft_update(draft_id: int, body: DraftIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    return _draft(session, applications.update_draft(session, ident.customer_id, draft_id, _draft_input(body)))


@router.post("/applications/{draft_id}/submit", summary="提交申请（幂等）", dependencies=[Depends(submit_limit)],
             tags=["进件"], response_model=DraftSubmittedOut)
def draft_submit(draft_id: int, body: SubmitIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    draft = applications.submit(session, ident.customer_id, draft_id, body.idempotency_key, actor=ident.actor())
    return {**_draft(session, draft), "progress": applications.status(session, draft)}


@router.get("/applications/{draft_id}/status", summary="申请进度（含流程节点）", tags=["进件"], response_model=Progress)
def draft_status(draft_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    draft = applications.get_draft(session, ident.customer_id, draft_id)
    return applications.status(session, draft)


@router.post("/applications/{draft_id}/documents", summary="上传材料（JPG/PNG，≤5 MB）", tags=["进件"], response_model=DocumentOut)
def document_upload(draft_id: int, ident: Customer, session: SessionDep,
                    kind: Annotated[str, Form(description="id_front | id_back | income | other")],
                    file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    draft = applications.get_draft(session, ident.customer_id, draft_id, for_update=True)
    if draft.status != "draft":
        raise DraftSubmitted()
    data = file.file.read(uploads.MAX_BYTES + 1)
    return _document(uploads.store(session, ident.customer_id, kind, data, draft_id=draft.id))


@router.get("/documents", summary="我上传的材料", tags=["进件"], response_model=DocumentList)
def document_list(ident: Customer, session: SessionDep) -> dict[str, Any]:
    return {"documents": [_document(d) for d in uploads.list_for(session, ident.customer_id)]}


@router.delete("/documents/{document_id}", summary="删除材料", tags=["进件"], response_model=Ok)
def document_delete(document_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    uploads.delete(session, ident.customer_id, document_id)
    return {"ok": True}


# --- visits ---------------------------------------------------------------------------------------

def _visit(visit: Visit, branches: dict[int, str]) -> dict[str, Any]:
    return {"id": visit.id, "department_id": visit.department_id, "branch": branches.get(visit.department_id),
            "scheduled_at": visit.scheduled_at, "ends_at": visit.ends_at, "status": visit.status,
            "status_label": VISIT_STATUS_LABELS.get(visit.status, visit.status), "note": visit.note,
            "rescheduled_to_id": visit.rescheduled_to_id}


def _branches(session: Any) -> dict[int, str]:
    return dict(session.execute(select(Department.id, Department.name)
                                .where(Department.kind == DepartmentKind.BRANCH).order_by(Department.id)).all())


@router.get("/branches", summary="可预约的网点", tags=["预约上门"], response_model=BranchList)
def branch_list(session: SessionDep) -> dict[str, Any]:
    return {"branches": [{"id": k, "name": v} for k, v in _branches(session).items()]}


@router.get("/visits", summary="我的预约", tags=["预约上门"], response_model=VisitList)
def visit_list(ident: Customer, session: SessionDep) -> dict[str, Any]:
    rows = session.scalars(select(Visit).where(Visit.customer_id == ident.customer_id)
                           .order_by(Visit.scheduled_at.desc(), Visit.id.desc()).limit(100))
    branches = _branches(session)
    return {"visits": [_visit(v, branches) for v in rows]}


@router.post("/visits", summary="预约上门", tags=["预约上门"], response_model=VisitOut)
def visit_book(body: VisitIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    branches = _branches(session)
    if body.department_id not in branches:
        raise DepartmentNotFound("请选择可预约的网点")
    visit = crm_visits.schedule_visit(session, ident.customer_id, body.scheduled_at,
                                      department_id=body.department_id, viewer=None, channel="miniprogram",
                                      note=body.note)
    return _visit(visit, branches)


@router.post("/visits/{visit_id}/reschedule", summary="改期", tags=["预约上门"], response_model=VisitOut)
def visit_reschedule(visit_id: int, body: RescheduleIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    visit = crm_visits.reschedule_visit(session, None, visit_id, body.scheduled_at,
                                        reason=body.reason, customer_id=ident.customer_id)
    return _visit(visit, _branches(session))


@router.post("/visits/{visit_id}/cancel", summary="取消预约", tags=["预约上门"], response_model=VisitOut)
def visit_cancel(visit_id: int, body: CancelIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    visit = crm_visits.cancel_visit(session, None, visit_id, body.reason, customer_id=ident.customer_id)
    return _visit(visit, _branches(session))


# --- my loans -------------------------------------------------------------------------------------

@router.get("/loans", summary="我的贷款：合同、还款计划、下期应还", tags=["我的贷款"], response_model=LoanList)
def loan_list(ident: Customer, session: SessionDep) -> dict[str, Any]:
    return loans.my_loans(session, ident.customer_id)


@router.get("/loans/{loan_id}", summary="贷款详情", tags=["我的贷款"], response_model=LoanOut)
def loan_get(loan_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    return loans.my_loan(session, ident.customer_id, loan_id)


@router.put("/reminders/opt-out", summary="退订 / 恢复还款提醒（订阅消息）", tags=["我的贷款"], response_model=ReminderOptOut)
def reminder_opt_out(ident: Customer, session: SessionDep,
                     out: Annotated[bool, Query(description="true 退订，false 恢复")] = True) -> dict[str, Any]:
    loans.set_reminder_opt_out(session, ident.customer_id, out)
    return {"opted_out": out}


@router.get("/loans/{loan_id}/prepayment-quote", summary="提前还款试算：结清或部分提前还款（任意日期）", tags=["我的贷款"], response_model=PrepaymentQuote)
def loan_prepayment_quote(loan_id: int, ident: Customer, session: SessionDep,
                          on: Annotated[date, Query(alias="date", description="YYYY-MM-DD")],
                          amount: Annotated[str | None, Query(description="支付金额（元），不填为提前结清")] = None,
                          mode: Annotated[str, Query(description="keep_term 期限不变 | keep_installment 月供不变")]
                          = "keep_term") -> dict[str, Any]:
    return loans.prepayment_quote(session, ident.customer_id, loan_id, on, to_fen(amount), mode)
