"""Pool setup in the staff JSON API (managers): create pools, pool settings, recycle rules (回收规则),
allocation rules (分配规则) and a salesperson's allocation profile (擅长类型、私海容量).

The same crm services as the console pages (admin.console.pool, admin.console.staff) decide; a refusal
raises and the request's unit of work rolls back, so nothing of a refused request is written.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.api.deps import ERROR_RESPONSES, ApiCaller, require_roles
from admin.api.pool import PoolRead, pool_read
from admin.schemas import ErrorBody
from admin.schemas_pool import (
    AllocationRuleCreate,
    AllocationRuleRead,
    AllocationRuleUpdate,
    PoolCreate,
    PoolSettingsRead,
    PoolSettingsUpdate,
    RecycleRuleCreate,
    RecycleRuleRead,
    RecycleRuleUpdate,
    StaffAllocationRead,
    StaffAllocationUpdate,
)
from core.errors import NotFound, ValidationFailed
from core.web import SessionDep
from crm import allocation, org_service, pool_service
from crm.models import AllocationRule, PoolSetting, RecycleRule, Staff, StaffSkill

router = APIRouter(prefix="/api/v1", tags=["pool setup"], responses=ERROR_RESPONSES)

_403: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "只有经理或系统管理员可以执行此操作"}}
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "不存在或不在您的数据范围内"}}
_422: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody, "description": "输入不正确（中文说明），未写入任何内容"}}

Manager = Annotated[ApiCaller, Depends(require_roles(pool_service.MANAGER_ROLES))]


def _merged(current: dict[str, Any], body: BaseModel, not_null: set[str]) -> dict[str, Any]:
    """The current values overlaid with the fields sent; a field that cannot be empty refuses an explicit null."""
    sent = body.model_dump(exclude_unset=True)
    for key in sorted(not_null & sent.keys()):
        if sent[key] is None:
            raise ValidationFailed(f"字段 {key} 不能为空", field=key)
    return {**current, **sent}


# --- pools and their settings ----------------------------------------------------------------------

@router.post("/pools", response_model=PoolRead, status_code=201, summary="新建公海（经理）",
             responses={**_403, **_404, **_422})
def create_pool(session: SessionDep, caller: Manager, body: PoolCreate) -> PoolRead:
    pool = pool_service.create_pool(session, caller.viewer, body.name, body.department_id)
    return pool_read(session, pool, 0)


def _settings_read(session: Session, pool_id: int) -> PoolSettingsRead:
    return PoolSettingsRead.of(pool_service.settings_for(session, pool_id),
                               saved=session.get(PoolSetting, pool_id) is not None)


@router.get("/pools/{pool_id}/settings", response_model=PoolSettingsRead, summary="公海设置（经理）",
            responses={**_403, **_404})
def read_pool_settings(session: SessionDep, caller: Manager, pool_id: int) -> PoolSettingsRead:
    pool_service.get_pool(session, caller.viewer, pool_id)
    return _settings_read(session, pool_id)


@router.patch("/pools/{pool_id}/settings", response_model=PoolSettingsRead,
              summary="修改公海设置（经理；只改传入的字段）", responses={**_403, **_404, **_422},
              description="每日领取上限 0–1000，冷却天数与新线索保护天数 0–365。")
def update_pool_settings(session: SessionDep, caller: Manager, pool_id: int,
                         body: PoolSettingsUpdate) -> PoolSettingsRead:
    pool_service.get_pool(session, caller.viewer, pool_id)  # out of scope: 404 before any validation
    s = pool_service.settings_for(session, pool_id)
    current = {"daily_claim_cap": s.daily_claim_cap, "cooldown_days": s.cooldown_days,
               "protection_days": s.protection_days, "check_private_cap": s.check_private_cap}
    values = _merged(current, body, set(current))
    pool_service.update_settings(session, caller.viewer, pool_id, values)
    return _settings_read(session, pool_id)


# --- recycle rules ---------------------------------------------------------------------------------

def _recycle_rule(session: Session, rule_id: int) -> RecycleRule:
    rule = session.get(RecycleRule, rule_id)
    if rule is None:
        raise NotFound("回收规则不存在", code="recycle_rule_not_found")
    return rule


@router.get("/recycle-rules", response_model=list[RecycleRuleRead], summary="公海回收规则（经理）",
            responses=_403)
def list_recycle_rules(session: SessionDep, caller: Manager) -> list[RecycleRuleRead]:
    return [RecycleRuleRead.of(r) for r in pool_service.list_recycle_rules(session)]


@router.post("/recycle-rules", response_model=RecycleRuleRead, status_code=201,
             summary="新建回收规则（经理；条件按「全部满足」或「任一满足」组合）", responses={**_403, **_404, **_422})
def create_recycle_rule(session: SessionDep, caller: Manager, body: RecycleRuleCreate) -> RecycleRuleRead:
    data = pool_service.RecycleRuleInput(**body.model_dump())
    return RecycleRuleRead.of(pool_service.save_recycle_rule(session, caller.viewer, data))


@router.patch("/recycle-rules/{rule_id}", response_model=RecycleRuleRead,
              summary="修改回收规则（经理；只改传入的字段）", responses={**_403, **_404, **_422})
def update_recycle_rule(session: SessionDep, caller: Manager, rule_id: int,
                        body: RecycleRuleUpdate) -> RecycleRuleRead:
    current = RecycleRuleRead.of(_recycle_rule(session, rule_id)).model_dump(exclude={"id", "created_at"})
    values = _merged(current, body, {"name", "combinator", "grades", "stages", "warn_hours", "active"})
    rule = pool_service.save_recycle_rule(session, caller.viewer, pool_service.RecycleRuleInput(**values), rule_id)
    return RecycleRuleRead.of(rule)


# --- allocation rules ------------------------------------------------------------------------------

def _allocation_rule(session: Session, rule_id: int) -> AllocationRule:
    rule = session.get(AllocationRule, rule_id)
    if rule is None:
        raise NotFound("分配规则不存在", code="allocation_rule_not_found")
    return rule


def _allocation_read(session: Session, rule: AllocationRule) -> AllocationRuleRead:
    return AllocationRuleRead.of(rule, allocation.rule_members(session, rule.id))


@router.get("/allocation-rules", response_model=list[AllocationRuleRead], summary="线索分配规则（经理；按优先级）",
            responses=_403)
def list_allocation_rules(session: SessionDep, caller: Manager) -> list[AllocationRuleRead]:
    return [_allocation_read(session, r) for r in allocation.list_rules(session)]


@router.post("/allocation-rules", response_model=AllocationRuleRead, status_code=201,
             summary="新建分配规则（经理）", responses={**_403, **_404, **_422})
def create_allocation_rule(session: SessionDep, caller: Manager, body: AllocationRuleCreate) -> AllocationRuleRead:
    rule = allocation.save_rule(session, caller.viewer, allocation.AllocationRuleInput(**body.model_dump()))
    return _allocation_read(session, rule)


@router.patch("/allocation-rules/{rule_id}", response_model=AllocationRuleRead,
              summary="修改分配规则（经理；只改传入的字段）", responses={**_403, **_404, **_422})
def update_allocation_rule(session: SessionDep, caller: Manager, rule_id: int,
                           body: AllocationRuleUpdate) -> AllocationRuleRead:
    current = _allocation_read(session, _allocation_rule(session, rule_id)).model_dump(exclude={"id", "created_at"})
    values = _merged(current, body, {"name", "mode", "member_ids", "priority", "active"})
    rule = allocation.save_rule(session, caller.viewer, allocation.AllocationRuleInput(**values), rule_id)
    return _allocation_read(session, rule)


# --- a salesperson's allocation profile ------------------------------------------------------------

def _staff_allocation(session: Session, staff: Staff) -> StaffAllocationRead:
    types = list(session.scalars(select(StaffSkill.customer_type).where(StaffSkill.staff_id == staff.id)
                                 .order_by(StaffSkill.customer_type)))
    return StaffAllocationRead(staff_id=staff.id, display_name=staff.display_name, customer_types=types,
                               capacity=staff.capacity, level=staff.level, region=staff.region,
                               owned=pool_service.owned_count(session, staff.id))


@router.get("/staff/{staff_id}/allocation", response_model=StaffAllocationRead,
            summary="员工的分配设置：擅长客户类型、私海容量、权重（经理）", responses={**_403, **_404})
def read_staff_allocation(session: SessionDep, caller: Manager, staff_id: int) -> StaffAllocationRead:
    return _staff_allocation(session, org_service.get_staff(session, staff_id, caller.viewer))


@router.patch("/staff/{staff_id}/allocation", response_model=StaffAllocationRead,
              summary="修改员工的分配设置（经理；只改传入的字段）", responses={**_403, **_404, **_422},
              description="擅长类型与控制台「分配规则」页相同；容量（0–100000）与权重（1–100）按员工编辑的规则校验。")
def update_staff_allocation(session: SessionDep, caller: Manager, staff_id: int,
                            body: StaffAllocationUpdate) -> StaffAllocationRead:
    staff = org_service.get_staff(session, staff_id, caller.viewer)
    sent = _merged({}, body, {"customer_types", "capacity", "level"})
    if "capacity" in sent or "level" in sent:
        data = org_service.StaffInput(
            username=staff.username, display_name=staff.display_name, role=str(staff.role),
            department_id=staff.department_id, wecom_userid=staff.wecom_userid, region=staff.region,
            capacity=sent.get("capacity", staff.capacity), level=sent.get("level", staff.level),
            data_scope=str(staff.data_scope))
        staff = org_service.update_staff(session, staff.id, data, caller.viewer)
    if "customer_types" in sent:
        allocation.set_skills(session, caller.viewer, staff.id, sent["customer_types"])
    return _staff_allocation(session, staff)
