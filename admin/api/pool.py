"""Public pools (公海) in the staff JSON API: list pools and their customers, claim, release, and for
managers move between pools and allocate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from admin.api.deps import ERROR_RESPONSES, Caller
from admin.pagination import MAX_PAGE
from admin.schemas import ErrorBody
from core.web import SessionDep
from crm import allocation, pool_service
from crm.models import Customer, Pool

router = APIRouter(prefix="/api/v1", tags=["pools"], responses=ERROR_RESPONSES)

NOT_FOUND = {404: {"model": ErrorBody, "description": "不存在或不在数据范围内"}}
REFUSED = {**NOT_FOUND, 409: {"model": ErrorBody, "description": "已被他人领取、黑名单、冷却期内、达到每日或私海上限"},
           422: {"model": ErrorBody, "description": "输入不正确"}}


class PoolRead(BaseModel):
    id: int
    name: str
    department_id: int | None
    is_default: bool
    waiting: int = Field(description="customers waiting in the pool")
    daily_claim_cap: int
    cooldown_days: int
    protection_days: int


class PoolCustomerRead(BaseModel):
    id: int
    name: str
    phone_masked: str | None = Field(description="masked, e.g. 138****1111; the plaintext is never served")
    region: str | None
    customer_type: str
    grade: str | None
    stage: str
    source: str
    released_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, c: Customer) -> PoolCustomerRead:
        return cls(id=c.id, name=c.name, phone_masked=c.phone_masked, region=c.region, customer_type=c.customer_type,
                   grade=c.grade, stage=c.stage, source=c.source, released_at=c.released_at, created_at=c.created_at)


class PoolCustomerPage(BaseModel):
    items: list[PoolCustomerRead]
    total: int
    page: int
    page_size: int


class OwnershipRead(BaseModel):
    customer_id: int
    status: str = Field(description="owned | pool")
    owner_id: int | None
    pool_id: int | None


class ReleaseBody(BaseModel):
    reason: str = Field(min_length=1, max_length=200, examples=["客户暂无贷款需求"])
    pool_id: int | None = Field(None, description="target pool; default: the pool of the owner's branch")


class MoveBody(BaseModel):
    pool_id: int = Field(description="the pool to move the waiting customer to")
    reason: str | None = Field(None, max_length=200)


class AllocateBody(BaseModel):
    customer_ids: list[int] = Field(min_length=1, max_length=1000, description="pool customers to allocate")
    to_staff_id: int | None = Field(None, description="one salesperson (mode manual); omit to use the rules")
    mode: str | None = Field(None, description="round_robin | region | customer_type | weighted | manual; "
                                               "omit for the matching allocation rule's own")


class AllocationOutcome(BaseModel):
    customer_id: int
    owner_id: int | None = Field(description="the new owner; null: it stayed in the pool (no rule matched, "
                                             "nobody eligible or with room, not in a pool you can see)")


class AllocateRead(BaseModel):
    allocated: int
    left_in_pool: int
    items: list[AllocationOutcome]


def pool_read(session: SessionDep, pool: Pool, waiting: int) -> PoolRead:
    s = pool_service.settings_for(session, pool.id)
    return PoolRead(id=pool.id, name=pool.name, department_id=pool.department_id, is_default=pool.is_default,
                    waiting=waiting, daily_claim_cap=s.daily_claim_cap, cooldown_days=s.cooldown_days,
                    protection_days=s.protection_days)


def _ownership(c: Customer) -> OwnershipRead:
    return OwnershipRead(customer_id=c.id, status=c.status, owner_id=c.owner_id, pool_id=c.pool_id)


@router.get("/pools", response_model=list[PoolRead], summary="可见的公海（本部门树及全公司公海）")
def list_pools(session: SessionDep, caller: Caller) -> list[PoolRead]:
    return [pool_read(session, p, n) for p, n in pool_service.list_pools(session, caller.viewer)]


@router.get("/pools/{pool_id}/customers", response_model=PoolCustomerPage, summary="公海中的客户（仅掩码手机号）",
            responses=NOT_FOUND)
def pool_customers(session: SessionDep, caller: Caller, pool_id: int,
                   region: str | None = None, customer_type: str | None = None, grade: str | None = None,
                   source: str | None = None, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
                   page_size: Annotated[int, Query(ge=1, le=200)] = 50) -> PoolCustomerPage:
    filters = pool_service.PoolFilters(region=region, customer_type=customer_type, grade=grade, source=source)
    rows, total = pool_service.pool_customers(session, caller.viewer, pool_id, filters, limit=page_size,
                                              offset=(page - 1) * page_size)
    return PoolCustomerPage(items=[PoolCustomerRead.of(c) for c in rows], total=total, page=page, page_size=page_size)


@router.post("/customers/{customer_id}/claim", response_model=OwnershipRead, summary="从公海领取客户（先到先得）",
             responses=REFUSED)
def claim(session: SessionDep, caller: Caller, customer_id: int) -> OwnershipRead:
    return _ownership(pool_service.claim(session, caller.viewer, customer_id))


@router.post("/customers/{customer_id}/release", response_model=OwnershipRead, summary="释放客户到公海（需填写原因）",
             responses={**REFUSED, 403: {"model": ErrorBody, "description": "不是负责人或其上级"}})
def release(session: SessionDep, caller: Caller, customer_id: int, body: ReleaseBody) -> OwnershipRead:
    return _ownership(pool_service.release(session, caller.viewer, customer_id, body.reason, pool_id=body.pool_id))


MANAGER_ONLY = {403: {"model": ErrorBody, "description": "只有经理或系统管理员可以执行此操作"}}


@router.post("/customers/{customer_id}/move", response_model=OwnershipRead, summary="把公海客户移到另一个公海（经理）",
             responses={**REFUSED, **MANAGER_ONLY})
def move(session: SessionDep, caller: Caller, customer_id: int, body: MoveBody) -> OwnershipRead:
    return _ownership(pool_service.move(session, caller.viewer, customer_id, body.pool_id, body.reason))


@router.post("/pools/allocate", response_model=AllocateRead, summary="分配公海客户（经理；指定销售或按分配规则）",
             responses={**REFUSED, **MANAGER_ONLY})
def allocate(session: SessionDep, caller: Caller, body: AllocateBody) -> AllocateRead:
    mode = "manual" if body.to_staff_id is not None else body.mode
    result = allocation.allocate_for(session, caller.viewer, body.customer_ids, mode=mode,
                                     to_staff_id=body.to_staff_id)
    items = [AllocationOutcome(customer_id=cid, owner_id=owner) for cid, owner in result.items()]
    won = sum(1 for i in items if i.owner_id is not None)
    return AllocateRead(allocated=won, left_in_pool=len(items) - won, items=items)
