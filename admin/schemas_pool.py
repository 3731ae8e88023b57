"""Request and response bodies of the pool setup API: pools, pool settings, recycle rules (回收规则),
allocation rules (分配规则) and a salesperson's allocation profile (擅长类型、容量).

Ranges and known values are checked by the crm services (Chinese messages, 422); these models only
fix the shapes, so a wrong type is FastAPI's own 422.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from crm.models import AllocationRule, PoolSetting, RecycleRule


class PoolCreate(BaseModel):
    name: str = Field(description="unique, at most 60 characters", examples=["浦东分部公海"])
    department_id: int | None = Field(None, description="who may see and claim from it: this department's subtree; "
                                                        "null: everyone")


class PoolSettingsRead(BaseModel):
    pool_id: int
    daily_claim_cap: int = Field(description="claims per salesperson per business day (0: claiming closed)")
    cooldown_days: int = Field(description="days the previous owner waits before re-claiming")
    protection_days: int = Field(description="days a new lead allocated from this pool is not recycled")
    check_private_cap: bool = Field(description="refuse a claim beyond the claimer's private capacity")
    saved: bool = Field(description="false: never saved, these are the defaults")

    @classmethod
    def of(cls, row: PoolSetting, *, saved: bool) -> PoolSettingsRead:
        return cls(pool_id=row.pool_id, daily_claim_cap=row.daily_claim_cap, cooldown_days=row.cooldown_days,
                   protection_days=row.protection_days, check_private_cap=row.check_private_cap, saved=saved)


class PoolSettingsUpdate(BaseModel):
    """Only the fields sent change; the others keep their current values."""

    daily_claim_cap: int | None = Field(None, description="0–1000")
    cooldown_days: int | None = Field(None, description="0–365")
    protection_days: int | None = Field(None, description="0–365")
    check_private_cap: bool | None = None


def _csv(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


class RecycleRuleRead(BaseModel):
    id: int
    name: str
    combinator: str = Field(description="and: every set condition holds | or: any set condition holds")
    no_followup_days: int | None
    not_converted_days: int | None
    converted_stage: str | None = Field(description="the stage that counts as converted; null: applied")
    grades: list[str]
    stages: list[str]
    target_pool_id: int | None = Field(description="null: the default pool")
    department_id: int | None = Field(description="owners in this department's subtree; null: everyone")
    warn_hours: int
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, r: RecycleRule) -> RecycleRuleRead:
        return cls(id=r.id, name=r.name, combinator=r.combinator, no_followup_days=r.no_followup_days,
                   not_converted_days=r.not_converted_days, converted_stage=r.converted_stage,
                   grades=_csv(r.grades), stages=_csv(r.stages), target_pool_id=r.target_pool_id,
                   department_id=r.department_id, warn_hours=r.warn_hours, active=r.active, created_at=r.created_at)


class RecycleRuleCreate(BaseModel):
    """At least one condition (no_followup_days, not_converted_days, grades, stages) must be set."""

    name: str = Field(description="at most 60 characters", examples=["7 天未跟进收回"])
    combinator: str = Field("and", description="and（全部满足）| or（任一满足）")
    no_followup_days: int | None = Field(None, description="no follow-up for this many days (1–3650)")
    not_converted_days: int | None = Field(None, description="this many days after assignment still before "
                                                             "converted_stage (1–3650)")
    converted_stage: str | None = Field(None, description="stage code; default applied")
    grades: list[str] = Field(default_factory=list, description="grade codes, e.g. [\"C\", \"D\"]")
    stages: list[str] = Field(default_factory=list, description="stage codes")
    target_pool_id: int | None = None
    department_id: int | None = None
    warn_hours: int = Field(24, description="warn the owner this many hours before (0–720)")
    active: bool = True


class RecycleRuleUpdate(BaseModel):
    """Only the fields sent change (send null to clear a condition); the rule is then checked as a whole."""

    name: str | None = None
    combinator: str | None = None
    no_followup_days: int | None = None
    not_converted_days: int | None = None
    converted_stage: str | None = None
    grades: list[str] | None = None
    stages: list[str] | None = None
    target_pool_id: int | None = None
    department_id: int | None = None
    warn_hours: int | None = None
    active: bool | None = None


class AllocationRuleRead(BaseModel):
    id: int
    name: str
    mode: str = Field(description="round_robin | region | customer_type | weighted | manual")
    source_pattern: str | None = Field(description="lead source, * as wildcard")
    pool_id: int | None
    department_id: int | None
    target_staff_id: int | None = Field(description="manual mode: the salesperson")
    member_ids: list[int] = Field(description="listed members; empty: the active sales of department_id "
                                              "(or of the pool's department)")
    priority: int = Field(description="lower first")
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, r: AllocationRule, member_ids: list[int]) -> AllocationRuleRead:
        return cls(id=r.id, name=r.name, mode=r.mode, source_pattern=r.source_pattern, pool_id=r.pool_id,
                   department_id=r.department_id, target_staff_id=r.target_staff_id, member_ids=member_ids,
                   priority=r.priority, active=r.active, created_at=r.created_at)


class AllocationRuleCreate(BaseModel):
    """A source pattern or a pool (or both) is required; manual mode needs target_staff_id."""

    name: str = Field(description="at most 60 characters", examples=["抖音线索轮流分配"])
    mode: str = Field(description="round_robin | region | customer_type | weighted | manual")
    source_pattern: str | None = Field(None, description="at most 40 characters, * as wildcard", examples=["douyin*"])
    pool_id: int | None = None
    department_id: int | None = None
    target_staff_id: int | None = None
    member_ids: list[int] = Field(default_factory=list)
    priority: int = Field(100, description="-1000–1000, lower first")
    active: bool = True


class AllocationRuleUpdate(BaseModel):
    """Only the fields sent change; the rule is then checked as a whole."""

    name: str | None = None
    mode: str | None = None
    source_pattern: str | None = None
    pool_id: int | None = None
    department_id: int | None = None
    target_staff_id: int | None = None
    member_ids: list[int] | None = None
    priority: int | None = None
    active: bool | None = None


class StaffAllocationRead(BaseModel):
    staff_id: int
    display_name: str
    customer_types: list[str] = Field(description="customer types handled (allocation by customer type)")
    capacity: int = Field(description="at most this many private customers (私海上限)")
    level: int = Field(description="weight in weighted allocation")
    region: str | None = Field(description="matched in allocation by region")
    owned: int = Field(description="private customers held now")


class StaffAllocationUpdate(BaseModel):
    """Only the fields sent change."""

    customer_types: list[str] | None = Field(None, description="replaces the list; [] clears it")
    capacity: int | None = Field(None, description="0–100000")
    level: int | None = Field(None, description="1–100")
