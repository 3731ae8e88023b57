"""Staff JSON API of loan applications: start (the same function the WeCom command and the mini-program
call), list (data-scoped), read, approve / reject / withdraw, fields and documents, sign the contract,
record the disbursement."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from admin.api.deps import ERROR_RESPONSES, Caller
from admin.schemas import ErrorBody
from core.web import SessionDep
from crm.models import Customer
from lending import applications, contracts, disbursement
from lending.models import Application, WorkflowNode

router = APIRouter(prefix="/api/v1/lending", tags=["lending-applications"], responses=ERROR_RESPONSES)

_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "不存在或不在您的数据范围内"}}
_409: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody,
                                               "description": "状态冲突（已有进行中的申请、已签署、已放款、节点已变化）"}}
_422: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody, "description": "输入不正确或本节点资料不全（中文说明）"}}
_403: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "不是本节点负责人 / 无放款权限"}}


class ApplicationCreate(BaseModel):
    customer_id: int
    product_version_id: int = Field(description="产品版本 id（须为产品当前版本）")
    amount: int = Field(gt=0, description="申请金额（分）")
    term_months: int = Field(gt=0, description="期限（月）")
    idempotency_key: str | None = Field(None, max_length=80, description="幂等键：同一键重复提交返回同一申请")


class ApplicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    product_id: int
    product_version_id: int
    definition_id: int
    status: str = Field(description="intake | reviewing | approved | signed | disbursed | rejected | withdrawn")
    node_code: str | None = None
    node_name: str | None = None
    requested_amount: int = Field(description="分")
    term_months: int
    channel: str
    fields: dict[str, Any]
    risk_evaluation_id: int | None
    created_at: datetime
    closed_at: datetime | None
    close_reason: str | None


class Decision(BaseModel):
    comment: str | None = Field(None, max_length=500, description="意见；拒绝 / 撤回时必填（原因）")
    expected_node_id: int | None = Field(None, description="页面所见的节点 id：节点已变化则 409 stale_node")
    to_node_code: str | None = Field(None, description="通过时的目标节点编码（只能是下一节点）")
    override_reason: str | None = Field(
        None, max_length=300, description="越权理由：风控结论为拒绝或申请金额超过授信额度时，批准须有越权权限并填写"
                                          "（否则 403 override_not_allowed / 422 override_reason_required）")


class FieldsUpdate(BaseModel):
    fields: dict[str, str] = Field(description="字段键见流程配置（purpose、monthly_income 等）；空值清除")


class DocumentCreate(BaseModel):
    kind: str = Field(max_length=40, description="材料名称，如 身份证")
    note: str | None = Field(None, max_length=200)


class ContractRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    application_id: int
    status: str = Field(description="draft | signed | disbursed")
    principal_amount: int
    term_months: int
    annual_rate: Decimal
    apr_rate: Decimal | None
    start_date: date | None
    maturity_date: date | None
    parties: dict[str, Any]
    snapshot: dict[str, Any] | None
    signed_at: datetime | None


class DisbursementCreate(BaseModel):
    funder_reference: str = Field(max_length=64, description="资方放款流水号（唯一）")
    disbursement_date: date | None = Field(None, description="放款日期，默认今天（上海）")
    amount: int | None = Field(None, description="分；若填写须等于合同本金")


class LoanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contract_id: int
    application_id: int
    principal_amount: int
    status: str
    start_date: date


def _read(session: SessionDep, app: Application) -> ApplicationRead:
    node = session.get(WorkflowNode, app.current_node_id) if app.current_node_id else None
    out = ApplicationRead.model_validate(app)
    out.node_code, out.node_name = (node.code, node.name) if node else (None, None)
    return out


@router.post("/applications", response_model=ApplicationRead, status_code=201, responses={**_404, **_409, **_422},
             summary="发起贷款申请",
             description="合格线索转为申请，进入流程首节点（进件）。黑名单客户、金额或期限超出产品范围、产品已更新版本、"
                         "同一客户同一产品已有进行中的申请均被拒绝（中文原因）。客户阶段随申请推进。")
def start(body: ApplicationCreate, session: SessionDep, caller: Caller) -> ApplicationRead:
    app = applications.start_application(session, body.customer_id, body.product_version_id, body.amount,
                                         body.term_months, viewer=caller.viewer, channel="console",
                                         idempotency_key=body.idempotency_key)
    return _read(session, app)


@router.get("/applications", response_model=list[ApplicationRead], summary="贷款申请列表（按数据范围）")
def list_applications(session: SessionDep, caller: Caller,
                      status: str | None = Query(None, description="按状态筛选"),
                      customer_id: int | None = Query(None), product_id: int | None = Query(None),
                      limit: int = Query(100, ge=1, le=500)) -> list[ApplicationRead]:
    stmt = (select(Application).join(Customer, Customer.id == Application.customer_id)
            .where(applications.visible_clause(caller.viewer)).order_by(Application.id.desc()).limit(limit))
    if status:
        stmt = stmt.where(Application.status == status)
    if customer_id:
        stmt = stmt.where(Application.customer_id == customer_id)
    if product_id:
        stmt = stmt.where(Application.product_id == product_id)
    return [_read(session, a) for a in session.scalars(stmt)]


@router.get("/applications/{application_id}", response_model=ApplicationRead, responses=_404, summary="贷款申请详情")
def read(application_id: int, session: SessionDep, caller: Caller) -> ApplicationRead:
    return _read(session, applications.get_application(session, caller.viewer, application_id))


@router.post("/applications/{application_id}/approve", response_model=ApplicationRead,
             responses={**_403, **_404, **_409, **_422}, summary="通过当前节点（只能进入下一节点）")
def approve(application_id: int, body: Decision, session: SessionDep, caller: Caller) -> ApplicationRead:
    return _read(session, applications.approve(session, application_id, viewer=caller.viewer, comment=body.comment,
                                               expected_node_id=body.expected_node_id,
                                               to_node_code=body.to_node_code, override_reason=body.override_reason))


@router.post("/applications/{application_id}/reject", response_model=ApplicationRead,
             responses={**_403, **_404, **_409, **_422}, summary="拒绝（须填写原因）")
def reject(application_id: int, body: Decision, session: SessionDep, caller: Caller) -> ApplicationRead:
    return _read(session, applications.reject(session, application_id, body.comment or "", viewer=caller.viewer,
                                              expected_node_id=body.expected_node_id))


@router.post("/applications/{application_id}/withdraw", response_model=ApplicationRead,
             responses={**_404, **_409, **_422}, summary="客户撤回（须填写原因）")
def withdraw(application_id: int, body: Decision, session: SessionDep, caller: Caller) -> ApplicationRead:
    return _read(session, applications.withdraw(session, application_id, body.comment or "", viewer=caller.viewer,
                                                expected_node_id=body.expected_node_id))


@router.post("/applications/{application_id}/fields", response_model=ApplicationRead,
             responses={**_404, **_409, **_422}, summary="填写申请资料字段")
def set_fields(application_id: int, body: FieldsUpdate, session: SessionDep, caller: Caller) -> ApplicationRead:
    return _read(session, applications.set_fields(session, application_id, body.fields, viewer=caller.viewer))


@router.post("/applications/{application_id}/documents", status_code=201, responses={**_404, **_409, **_422},
             summary="登记已收材料")
def add_document(application_id: int, body: DocumentCreate, session: SessionDep, caller: Caller) -> dict[str, Any]:
    doc = applications.add_document(session, application_id, body.kind, viewer=caller.viewer, note=body.note)
    return {"id": doc.id, "kind": doc.kind}


@router.get("/applications/{application_id}/contract", response_model=ContractRead, responses=_404,
            summary="申请的合同（含签署时锁定的费息快照）")
def read_contract(application_id: int, session: SessionDep, caller: Caller) -> ContractRead:
    applications.get_application(session, caller.viewer, application_id)
    contract = contracts.contract_for(session, application_id)
    if contract is None:
        raise contracts.ContractNotFound()
    return ContractRead.model_validate(contract)


@router.post("/applications/{application_id}/contract/sign", response_model=ContractRead,
             responses={**_404, **_409}, summary="签署合同",
             description="锁定产品版本的条款、费用与完整还款计划；重复签署返回 409 contract_already_signed。")
def sign(application_id: int, session: SessionDep, caller: Caller) -> ContractRead:
    return ContractRead.model_validate(contracts.sign_contract(session, application_id, viewer=caller.viewer))


@router.post("/applications/{application_id}/disbursement", response_model=LoanRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="登记放款（财务）",
             description="金额 = 合同本金；同一合同只能放款一次（409 already_disbursed），资方流水号唯一。"
                         "成功后贷款生效并发送事件 lending.loan_disbursed。")
def disburse(application_id: int, body: DisbursementCreate, session: SessionDep, caller: Caller) -> LoanRead:
    loan = disbursement.disburse(session, application_id, viewer=caller.viewer, funder_reference=body.funder_reference,
                                 disbursement_date=body.disbursement_date, amount=body.amount)
    return LoanRead.model_validate(loan)


__all__ = ["router"]
