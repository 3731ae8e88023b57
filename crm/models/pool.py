"""Rules beside the public pools (公海): pool settings, the per-day claim counter, allocation rules
with their members and round-robin cursors, staff skills, recycle rules and the recycle warnings sent."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "ALLOCATION_MODE_LABELS", "AllocationCursor", "AllocationMember", "AllocationMode", "AllocationRule",
    "ClaimCounter", "PoolSetting", "RecycleRule", "RecycleWarning", "StaffSkill",
]


class PoolSetting(Base):
    """Per-pool limits. A pool without a row uses the defaults below."""

    __tablename__ = "crm_pool_setting"
    __table_args__ = (
        CheckConstraint("daily_claim_cap >= 0", name="daily_claim_cap_non_negative"),
        CheckConstraint("cooldown_days >= 0", name="cooldown_days_non_negative"),
        CheckConstraint("protection_days >= 0", name="protection_days_non_negative"),
    )

    pool_id: Mapped[int] = mapped_column(ForeignKey("crm_pool.id", ondelete="CASCADE"), primary_key=True)
    daily_claim_cap: Mapped[int] = mapped_column(default=20)  # claims per salesperson per business day
    check_private_cap: Mapped[bool] = mapped_column(default=True)  # refuse a claim beyond staff.capacity
    cooldown_days: Mapped[int] = mapped_column(default=7)  # the previous owner waits this long to re-claim
    protection_days: Mapped[int] = mapped_column(default=3)  # new leads allocated from here: not recycled
    updated_at: Mapped[datetime]


class ClaimCounter(Base):
    """Claims per salesperson per business day; incremented by one conditional upsert, so the
    database decides the daily cap even when two claims of the same person race."""

    __tablename__ = "crm_claim_counter"
    __table_args__ = (UniqueConstraint("staff_id", "claim_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    claim_date: Mapped[date]
    claims: Mapped[int] = mapped_column(default=0)


class AllocationMode(StrEnum):
    ROUND_ROBIN = "round_robin"
    REGION = "region"
    CUSTOMER_TYPE = "customer_type"
    WEIGHTED = "weighted"
    MANUAL = "manual"


ALLOCATION_MODE_LABELS = {
    "round_robin": "轮流分配", "region": "按地区", "customer_type": "按客户类型", "weighted": "按权重（能力）",
    "manual": "指定人员",
}


class AllocationRule(Base):
    """Which leads go to whom: matched by source pattern (``*`` wildcard) or by pool, first by priority."""

    __tablename__ = "crm_allocation_rule"
    __table_args__ = (
        CheckConstraint("source_pattern IS NOT NULL OR pool_id IS NOT NULL", name="matches_something"),
        CheckConstraint("mode <> 'manual' OR target_staff_id IS NOT NULL", name="manual_needs_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    source_pattern: Mapped[str | None] = mapped_column(String(40))  # e.g. "douyin*"
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("crm_pool.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    # Members: the listed staff (AllocationMember) or, with none listed, the active sales of this subtree.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    target_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # manual mode
    priority: Mapped[int] = mapped_column(default=100)  # lower first
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class AllocationMember(Base):
    __tablename__ = "crm_allocation_member"
    __table_args__ = (UniqueConstraint("rule_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("crm_allocation_rule.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)


class AllocationCursor(Base):
    """Round-robin state: the last staff member served under a key; updated under a row lock."""

    __tablename__ = "crm_allocation_cursor"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # "rule:3", "rule:3:region:上海"
    last_staff_id: Mapped[int | None]
    updated_at: Mapped[datetime]


class StaffSkill(Base):
    """Customer types a salesperson handles (for allocation by customer type)."""

    __tablename__ = "crm_staff_skill"
    __table_args__ = (UniqueConstraint("staff_id", "customer_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    customer_type: Mapped[str] = mapped_column(String(16), index=True)


class RecycleRule(Base):
    """When owned customers go back to a pool (掉公海). Set conditions are combined with AND or OR."""

    __tablename__ = "crm_recycle_rule"
    __table_args__ = (CheckConstraint("combinator IN ('and', 'or')", name="combinator_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    # Owners in this department subtree (None: everyone).
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    target_pool_id: Mapped[int | None] = mapped_column(ForeignKey("crm_pool.id"))  # None: the default pool
    combinator: Mapped[str] = mapped_column(String(3), default="and")
    no_followup_days: Mapped[int | None]  # no follow-up for N days (since assignment when never followed up)
    not_converted_days: Mapped[int | None]  # M days after assignment still before converted_stage
    converted_stage: Mapped[str | None] = mapped_column(String(16))  # default "applied"
    grades: Mapped[str | None] = mapped_column(String(80))  # comma-separated grade codes
    stages: Mapped[str | None] = mapped_column(String(200))  # comma-separated stages
    warn_hours: Mapped[int] = mapped_column(default=24)  # notify the owner this long before
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class RecycleWarning(Base):
    """One warning per customer per ownership cycle (the cycle is the customer's assigned_at)."""

    __tablename__ = "crm_recycle_warning"
    __table_args__ = (
        UniqueConstraint("customer_id", "cycle_at"),
        Index("ix_recycle_warning_rule", "rule_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    cycle_at: Mapped[datetime]
    rule_id: Mapped[int] = mapped_column(ForeignKey("crm_recycle_rule.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    warned_at: Mapped[datetime]
