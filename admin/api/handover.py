"""Handover (离职交接 / 在职转接) over the staff API: cases, their customers with the WeCom transfer
status, opening, executing and cancelling. Managers and admins, inside their data scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator

from admin import nav
from admin.api.deps import ERROR_RESPONSES, ApiCaller, require_roles
from admin.pagination import MAX_PAGE
from admin.schemas import ErrorBody
from core.web import SessionDep
from crm import handover, handover_flows
from crm.handover import Plan, Target
from crm.models import HandoverCase

router = APIRouter(prefix="/api/v1/handover", tags=["handover"], responses=ERROR_RESPONSES)

Manager = Annotated[ApiCaller, Depends(require_roles(nav.HANDOVER_MANAGERS))]
REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "不是经理或系统管理员"},
    404: {"model": ErrorBody, "description": "不存在或不在数据范围内"},
    409: {"model": ErrorBody, "description": "交接无法执行（接收人已离职、容量不足、交接单已关闭…），未做任何改动"},
    422: {"model": ErrorBody, "description": "方案不正确"},
}


class CaseRead(BaseModel):
    id: int
    kind: str = Field(description="departure（离职交接）| in_service（在职转接）")
    from_staff_id: int
    status: str = Field(description="open | done | cancelled")
    source: str = Field(description="console | wecom")
    opened_by: int | None
    opened_at: datetime
    closed_at: datetime | None
    note: str | None
    summary: dict[str, Any] | None = Field(description="execution counts: moved, skipped_*, to_staff, to_pool, "
                                                       "transfers_requested, …")
    counts: dict[str, int] | None = None

    @classmethod
    def of(cls, case: HandoverCase, counts: dict[str, int] | None = None) -> CaseRead:
        return cls(id=case.id, kind=case.kind, from_staff_id=case.from_staff_id, status=case.status,
                   source=case.source, opened_by=case.opened_by, opened_at=case.opened_at, closed_at=case.closed_at,
                   note=case.note, summary=case.summary, counts=counts)


class CasePage(BaseModel):
    items: list[CaseRead]
    total: int
    page: int
    page_size: int


class ItemRead(BaseModel):
    customer_id: int
    name: str
    phone_masked: str | None = Field(description="masked; the plaintext is never served")
    status: str = Field(description="pending | moved | skipped")
    skip_reason: str | None = Field(description="not_owned | wecom_limit")
    to_staff_id: int | None
    to_staff_name: str | None
    to_pool_id: int | None
    wecom_contact: bool
    transfer_id: int | None
    transfer_status: str | None = Field(description="requested | waiting | taken_over | refused | limit_reached | failed")
    transfer_errcode: int | None


class ItemPage(BaseModel):
    items: list[ItemRead]
    total: int
    page: int
    page_size: int


class DepartureOpen(BaseModel):
    staff_id: int
    note: str | None = Field(None, max_length=500)


class InServiceOpen(BaseModel):
    staff_id: int
    customer_ids: list[int] = Field(min_length=1, max_length=10_000)
    note: str | None = Field(None, max_length=500)


class Override(BaseModel):
    customer_id: int
    to_staff_id: int | None = None
    to_pool_id: int | None = None

    @model_validator(mode="after")
    def one_target(self) -> Override:
        if (self.to_staff_id is None) == (self.to_pool_id is None):
            raise ValueError("exactly one of to_staff_id and to_pool_id")
        return self


class ExecuteBody(BaseModel):
    mode: Literal["successor", "team", "pool"] = Field(
        description="successor: all to to_staff_id; team: evenly across department_id's active sales by current "
                    "load, honouring capacity; pool: back to pool_id (default pool if omitted)")
    to_staff_id: int | None = None
    department_id: int | None = None
    pool_id: int | None = None
    overrides: list[Override] = Field(default_factory=list, description="per-customer targets, winning over mode")
    allow_over_capacity: bool = False


class ExecuteRead(BaseModel):
    case: CaseRead
    moved: int
    skipped_not_owned: int
    skipped_wecom_limit: int
    to_staff: dict[str, int]
    to_pool: dict[str, int]
    transfers_requested: int
    wecom_not_requested: int
    transfer_task_enqueued: bool = Field(description="false until the WeCom bot registers bot.transfer_customers; "
                                                     "the transfers then stay requested")


@router.get("/cases", response_model=CasePage, summary="交接单列表（按数据范围）")
def list_cases(session: SessionDep, caller: Manager,
               status: Annotated[str | None, Query(description="open | done | cancelled")] = None,
               page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
               page_size: Annotated[int, Query(ge=1, le=200)] = 50) -> CasePage:
    rows, total = handover.list_cases(session, caller.viewer, status=status, limit=page_size,
                                      offset=(page - 1) * page_size)
    return CasePage(items=[CaseRead.of(c) for c, _, _ in rows], total=total, page=page, page_size=page_size)


@router.post("/cases/departure", response_model=CaseRead, status_code=201, responses=REFUSALS,
             summary="员工离职并发起离职交接（幂等：每人只有一张待处理的离职交接单）")
def open_departure(session: SessionDep, caller: Manager, body: DepartureOpen) -> CaseRead:
    case = handover_flows.start_departure(session, caller.viewer, body.staff_id, body.note)
    return CaseRead.of(case, handover.case_counts(session, case.id))


@router.post("/cases/in-service", response_model=CaseRead, status_code=201, responses=REFUSALS,
             summary="发起在职转接（选定客户）")
def open_in_service(session: SessionDep, caller: Manager, body: InServiceOpen) -> CaseRead:
    case = handover.open_in_service_case(session, caller.viewer, body.staff_id, body.customer_ids, body.note)
    return CaseRead.of(case, handover.case_counts(session, case.id))


@router.get("/cases/{case_id}", response_model=CaseRead, responses=REFUSALS, summary="交接单详情")
def read_case(session: SessionDep, caller: Manager, case_id: int) -> CaseRead:
    case = handover.get_case(session, caller.viewer, case_id)
    return CaseRead.of(case, handover.case_counts(session, case.id))


@router.get("/cases/{case_id}/items", response_model=ItemPage, responses=REFUSALS,
            summary="交接单的客户及逐个结果（含企业微信转接状态）")
def case_items(session: SessionDep, caller: Manager, case_id: int,
               status: Annotated[str | None, Query(description="pending | moved | skipped")] = None,
               page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
               page_size: Annotated[int, Query(ge=1, le=500)] = 100) -> ItemPage:
    rows, total = handover.case_rows(session, caller.viewer, case_id, status=status, limit=page_size,
                                     offset=(page - 1) * page_size)
    items = [ItemRead(
        customer_id=r.customer.id, name=r.customer.name, phone_masked=r.customer.phone_masked, status=r.item.status,
        skip_reason=r.item.skip_reason, to_staff_id=r.item.to_staff_id, to_staff_name=r.to_staff_name,
        to_pool_id=r.item.to_pool_id, wecom_contact=bool(r.customer.wecom_external_userid),
        transfer_id=r.transfer.id if r.transfer else None, transfer_status=r.transfer.status if r.transfer else None,
        transfer_errcode=r.transfer.errcode if r.transfer else None) for r in rows]
    return ItemPage(items=items, total=total, page=page, page_size=page_size)


@router.post("/cases/{case_id}/execute", response_model=ExecuteRead, responses=REFUSALS,
             summary="执行交接（一个事务：全部成功或全部不变）")
def execute(session: SessionDep, caller: Manager, case_id: int, body: ExecuteBody) -> ExecuteRead:
    plan = Plan(mode=body.mode, to_staff_id=body.to_staff_id, department_id=body.department_id, pool_id=body.pool_id,
                overrides={o.customer_id: Target(o.to_staff_id, o.to_pool_id) for o in body.overrides},
                allow_over_capacity=body.allow_over_capacity)
    result = handover_flows.execute_case(session, caller.viewer, case_id, plan)
    data = result.summary()
    return ExecuteRead(case=CaseRead.of(result.case, handover.case_counts(session, case_id)),
                       **{k: data[k] for k in ExecuteRead.model_fields if k != "case"})


@router.post("/cases/{case_id}/cancel", response_model=CaseRead, responses=REFUSALS, summary="取消交接单")
def cancel(session: SessionDep, caller: Manager, case_id: int) -> CaseRead:
    return CaseRead.of(handover.cancel_case(session, caller.viewer, case_id))
