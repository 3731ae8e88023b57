"""Customers: the scoped list, intake, the record, profile edits, grade, stage, blacklist, timeline, and the
audited phone reveal. Another salesperson's customer is a 404, like one that does not exist."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from admin import nav
from admin.api.deps import ERROR_RESPONSES, ApiCaller, Caller, require_roles
from admin.customer_flows import intake_by_staff
from admin.pagination import MAX_PAGE
from admin.schemas import ErrorBody
from admin.schemas_customers import (
    BlacklistSet,
    CustomerCreate,
    CustomerPage,
    CustomerRead,
    CustomerUpdate,
    EventRead,
    GradeSet,
    IntakeRead,
    RevealRead,
    RevealRequest,
    StageSet,
)
from core.web import SessionDep
from crm import customer_queries, customers, segment_profile

router = APIRouter(prefix="/api/v1/customers", tags=["customers"], responses=ERROR_RESPONSES)

CustomerManager = Annotated[ApiCaller, Depends(require_roles(nav.CUSTOMER_MANAGERS))]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "客户不存在或不在数据范围内"}}
REFUSED: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND, 409: {"model": ErrorBody}, 422: {"model": ErrorBody, "description": "输入不正确（中文说明）"}}


@router.get("", response_model=CustomerPage, summary="客户列表（按数据范围，可筛选、分页）",
            responses={422: {"model": ErrorBody}})
def list_customers(
    session: SessionDep, caller: Caller,
    q: Annotated[str | None, Query(description="姓名、拼音（全拼或首字母）、完整手机号或身份证号（按盲索引精确匹配）、"
                                               "手机尾号 4 位、标签名")] = None,
    stage: str | None = None, grade: str | None = None,
    status: Annotated[str | None, Query(description="owned（私海）| pool（公海）| blacklist")] = None,
    region: str | None = None, customer_type: str | None = None, source: str | None = None,
    owner_id: int | None = None,
    department_id: Annotated[int | None, Query(description="归属人在该部门及其下级")] = None,
    owner_department_id: Annotated[int | None, Query(description="归属人在该部门本身（不含下级）")] = None,
    source_detail: Annotated[str | None, Query(description="来源明细，精确匹配（如 渠道码：<名称> / <活动>）")] = None,
    industry: Annotated[str | None, Query(description="资质中的所属行业：行业选项名按前缀匹配（建筑 含 建筑装修），其他精确匹配")] = None,
    created_from: date | None = None, created_to: date | None = None,
    next_followup_from: date | None = None, next_followup_to: date | None = None,
    sort: Annotated[str, Query(description=" | ".join(customer_queries.SORTS))] = customer_queries.DEFAULT_SORT,
    cf_field: Annotated[str, Query(description="资质或自定义字段：qualification.<字段> 或 custom.<字段代码>")] = "",
    cf_cmp: Annotated[str, Query(description="equals | contains | in | not_in | gte | lte | after | before | "
                                             "is_empty | not_empty")] = "equals",
    cf_value: Annotated[str, Query(description="比较值；in 可用逗号分隔多个（代码或中文）")] = "",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=customer_queries.MAX_PAGE_SIZE)] = 50,
) -> CustomerPage:
    flt = customer_queries.CustomerFilter(
        q=q, stage=stage, grade=grade, status=status, region=region, customer_type=customer_type, source=source,
        owner_id=owner_id, department_id=department_id, owner_department_id=owner_department_id,
        source_detail=source_detail, industry=industry, created_from=created_from, created_to=created_to,
        next_followup_from=next_followup_from, next_followup_to=next_followup_to, sort=sort)
    clause = segment_profile.list_clause(session, cf_field, cf_cmp, cf_value)
    found = customer_queries.search(session, caller.viewer, flt, page=page, page_size=page_size,
                                    extra=() if clause is None else (clause,))
    return CustomerPage(items=[CustomerRead.of(c) for c in found.items], total=found.total, page=found.page,
                        page_size=found.page_size)


@router.post("", response_model=IntakeRead, status_code=201, summary="录入客户（去重：新建、合并或撞单）",
             responses={200: {"model": IntakeRead, "description": "已有客户：合并或撞单"}, **REFUSED})
def create_customer(session: SessionDep, caller: Caller, body: CustomerCreate, response: Response) -> IntakeRead:
    done = intake_by_staff(session, caller.viewer, body.to_input(), to_pool=body.to_pool, channel="api")
    if done.outcome != "created":
        response.status_code = 200
    customer = done.result.customer
    return IntakeRead(outcome=done.outcome, message=done.message, customer_id=customer.id if done.visible else None,
                      customer=CustomerRead.of(customer) if done.visible else None, owner_name=done.owner_name)


@router.get("/{customer_id}", response_model=CustomerRead, summary="客户详情（仅掩码信息）", responses=NOT_FOUND)
def read_customer(session: SessionDep, caller: Caller, customer_id: int) -> CustomerRead:
    return CustomerRead.of(customers.get_customer(session, caller.viewer, customer_id))


@router.patch("/{customer_id}", response_model=CustomerRead, summary="修改客户资料（只改传入的字段）",
              responses=REFUSED)
def update_customer(session: SessionDep, caller: Caller, customer_id: int, body: CustomerUpdate) -> CustomerRead:
    customers.get_customer(session, caller.viewer, customer_id)  # out of scope: 404 before any validation
    return CustomerRead.of(customers.update_profile(session, caller.viewer, customer_id, body.changes()))


@router.post("/{customer_id}/grade", response_model=CustomerRead, summary="设置客户等级", responses=REFUSED)
def set_grade(session: SessionDep, caller: Caller, customer_id: int, body: GradeSet) -> CustomerRead:
    return CustomerRead.of(customers.set_grade(session, caller.viewer, customer_id, body.grade))


@router.post("/{customer_id}/stage", response_model=CustomerRead, summary="设置客户阶段", responses=REFUSED)
def set_stage(session: SessionDep, caller: Caller, customer_id: int, body: StageSet) -> CustomerRead:
    return CustomerRead.of(customers.set_stage(session, customer_id, body.stage, viewer=caller.viewer))


@router.post("/{customer_id}/blacklist", response_model=CustomerRead, summary="拉黑或移出黑名单（系统管理员、经理、主管）",
             responses={403: {"model": ErrorBody}, **REFUSED})
def set_blacklist(session: SessionDep, caller: CustomerManager, customer_id: int, body: BlacklistSet) -> CustomerRead:
    if body.blacklisted:
        customer = customers.blacklist(session, caller.viewer, customer_id, body.reason or "")
    else:
        customer = customers.unblacklist(session, caller.viewer, customer_id)
    return CustomerRead.of(customer)


@router.get("/{customer_id}/timeline", response_model=list[EventRead], summary="客户时间线（最新在前）",
            responses=NOT_FOUND)
def read_timeline(session: SessionDep, caller: Caller, customer_id: int,
                  limit: Annotated[int, Query(ge=1, le=500)] = 200) -> list[EventRead]:
    customers.get_customer(session, caller.viewer, customer_id)
    return [EventRead.of(e) for e in customers.timeline(session, customer_id, limit=limit)]


@router.post("/{customer_id}/reveal-phone", response_model=RevealRead, summary="查看完整手机号（记入审计日志）",
             responses=REFUSED)
def reveal_phone(session: SessionDep, caller: Caller, customer_id: int, response: Response,
                 body: RevealRequest | None = None) -> RevealRead:
    phone = customers.reveal_phone(session, caller.viewer, customer_id, body.reason if body else None)
    response.headers["Cache-Control"] = "no-store"
    return RevealRead(customer_id=customer_id, phone=phone)
