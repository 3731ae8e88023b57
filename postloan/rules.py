"""Collector groups and allocation rules (分案规则), as a manager configures them.

Groups by seniority (1 初级 junior, 2 中级, 3 资深 senior); a collector sits in one group (moving them moves
them). A rule names its conditions (empty: any), the group, how to balance, and the days after which a case
without a promise or a payment is re-assigned. Bad input is refused naming the field; nothing is written.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import audit, clock
from crm.models import Staff, StaffStatus
from crm.permissions import staff_holds
from crm.scope import Viewer
from lending.models import BUCKETS, Product
from postloan.actions import COLLECTORS, MANAGERS
from postloan.exceptions import RuleInvalid
from postloan.models import (
    BALANCE_LABELS,
    RISK_TIERS,
    AllocationRule,
    CollectionGroup,
    CollectionGroupMember,
)

__all__ = ["SENIORITY_LABELS", "groups", "members", "rules", "save_group", "save_rule", "set_member"]

SENIORITY_LABELS = {1: "初级", 2: "中级", 3: "资深"}


def _manager(viewer: Viewer) -> None:
    if viewer.role not in MANAGERS:
        raise RuleInvalid("只有经理或管理员可以配置分案规则")


def save_group(session: Session, viewer: Viewer, *, name: str, seniority: int,
               group_id: int | None = None) -> CollectionGroup:
    _manager(viewer)
    name = (name or "").strip()[:40]
    if not name:
        raise RuleInvalid("请填写催收组名称", field="name")
    if seniority not in SENIORITY_LABELS:
        raise RuleInvalid("请选择资历：初级、中级或资深", field="seniority")
    clash = session.scalar(select(CollectionGroup).where(CollectionGroup.name == name))
    if clash is not None and clash.id != group_id:
        raise RuleInvalid(f"已有同名催收组：{name}", field="name")
    group = session.get(CollectionGroup, group_id) if group_id else CollectionGroup(created_at=clock.now())
    if group is None:
        raise RuleInvalid("催收组不存在", field="group_id")
    group.name, group.seniority = name, seniority
    session.add(group)
    session.flush()
    audit.record(session, "collections.group.save", entity_type="postloan_group", entity_id=group.id,
                 after={"name": name, "seniority": seniority})
    return group


def set_member(session: Session, viewer: Viewer, staff_id: int, group_id: int | None) -> None:
    """Put a collector into a group (out of any other), or out of every group with None."""
    _manager(viewer)
    staff = session.get(Staff, staff_id)
    if staff is None or staff.status != StaffStatus.ACTIVE or not staff_holds(session, staff.role, COLLECTORS):
        raise RuleInvalid("请选择在职的催收或风控人员", field="staff_id")
    if group_id is not None and session.get(CollectionGroup, group_id) is None:
        raise RuleInvalid("催收组不存在", field="group_id")
    session.execute(delete(CollectionGroupMember).where(CollectionGroupMember.staff_id == staff_id))
    if group_id is not None:
        session.add(CollectionGroupMember(staff_id=staff_id, group_id=group_id, created_at=clock.now()))
    session.flush()
    audit.record(session, "collections.group.member", entity_type="staff", entity_id=staff_id,
                 after={"group_id": group_id})


def _listed(raw: str | list[str] | None, allowed: tuple[str, ...], field: str, label: str) -> str | None:
    parts = raw if isinstance(raw, list) else (raw or "").replace("，", ",").split(",")
    values = [p.strip() for p in parts if p and p.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise RuleInvalid(f"{label}不正确：{'、'.join(bad)}（可选：{'、'.join(allowed)}）", field=field)
    return ",".join(v for v in allowed if v in values) or None


def save_rule(session: Session, viewer: Viewer, *, name: str, group_id: int | None, priority: int = 100,
              buckets: str | list[str] | None = None, risk_tiers: str | list[str] | None = None,
              min_amount: int | None = None, max_amount: int | None = None, region: str | None = None,
              product_id: int | None = None, balance_by: str = "count", reassign_after_days: int | None = None,
              active: bool = True, rule_id: int | None = None) -> AllocationRule:
    _manager(viewer)
    name = (name or "").strip()[:60]
    if not name:
        raise RuleInvalid("请填写规则名称", field="name")
    if group_id is None or session.get(CollectionGroup, group_id) is None:
        raise RuleInvalid("请选择催收组", field="group_id")
    if balance_by not in BALANCE_LABELS:
        raise RuleInvalid("请选择均衡方式：按案件数或按金额", field="balance_by")
    for value, field, label in ((min_amount, "min_amount", "最低金额"), (max_amount, "max_amount", "最高金额")):
        if value is not None and value < 0:
            raise RuleInvalid(f"{label}不能为负数", field=field)
    if min_amount is not None and max_amount is not None and min_amount > max_amount:
        raise RuleInvalid("最低金额不能高于最高金额", field="max_amount")
    if reassign_after_days is not None and not 1 <= reassign_after_days <= 365:
        raise RuleInvalid("重新分配天数应在 1–365 之间", field="reassign_after_days")
    if product_id is not None and session.get(Product, product_id) is None:
        raise RuleInvalid("产品不存在", field="product_id")
    rule = session.get(AllocationRule, rule_id) if rule_id else AllocationRule()
    if rule is None:
        raise RuleInvalid("规则不存在", field="rule_id")
    rule.name, rule.group_id, rule.priority, rule.balance_by = name, group_id, priority, balance_by
    rule.buckets = _listed(buckets, BUCKETS[1:], "buckets", "账期")
    rule.risk_tiers = _listed(risk_tiers, RISK_TIERS, "risk_tiers", "风险等级")
    rule.min_amount, rule.max_amount = min_amount, max_amount
    rule.region = (region or "").strip()[:40] or None
    rule.product_id, rule.reassign_after_days, rule.active = product_id, reassign_after_days, active
    rule.updated_by_staff_id, rule.updated_at = viewer.staff_id, clock.now()
    session.add(rule)
    session.flush()
    audit.record(session, "collections.rule.save", entity_type="postloan_rule", entity_id=rule.id,
                 after={"name": name, "group_id": group_id, "buckets": rule.buckets, "risk_tiers": rule.risk_tiers,
                        "balance_by": balance_by, "reassign_after_days": reassign_after_days, "active": active})
    return rule


def groups(session: Session) -> list[CollectionGroup]:
    return list(session.scalars(select(CollectionGroup).order_by(CollectionGroup.seniority, CollectionGroup.id)))


def members(session: Session) -> dict[int, int]:
    """staff id -> group id."""
    return dict(session.execute(select(CollectionGroupMember.staff_id, CollectionGroupMember.group_id)).all())


def rules(session: Session) -> list[AllocationRule]:
    return list(session.scalars(select(AllocationRule).order_by(AllocationRule.priority, AllocationRule.id)))
