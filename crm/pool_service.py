"""The public pools (公海): settings, listing, claim, release, move, and recycle rules.

Who wins is decided by the database:

* a claim is one conditional ``UPDATE customer … WHERE id = :id AND status = 'pool'``: of two
  simultaneous claimers exactly one changes a row, the other gets :class:`ClaimLost`;
* the daily claim cap is one conditional upsert of ``crm_claim_counter`` (unique staff and day);
* the private-customer cap is counted while the claimer's staff row is locked (``FOR UPDATE``;
  SQLite serialises writers with ``BEGIN IMMEDIATE``), so one person's parallel claims cannot overshoot.

A refusal raises inside a savepoint: nothing it wrote survives. Recycle rules compile to one
``UPDATE … RETURNING`` per rule (plus one insert-from-select for the warnings), never a loop over customers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import is_postgres
from core.errors import AppError, PermissionDenied
from crm import customers, notify, scope, sources
from crm.exceptions import (
    CustomerBlacklisted,
    CustomerNotFound,
    DepartmentNotFound,
    PoolNotFound,
    ValidationFailed,
)
from crm.models import (
    ClaimCounter,
    Customer,
    CustomerEvent,
    CustomerStatus,
    Department,
    Grade,
    OwnerChange,
    Pool,
    PoolSetting,
    RecycleRule,
    RecycleWarning,
    Role,
    Staff,
    Stage,
)
from crm.permissions import permission
from crm.pool_exceptions import (
    ClaimCooldown,
    ClaimLost,
    DailyClaimCapReached,
    InvalidPoolRule,
    NotInPool,
    NotOwned,
    NotOwner,
    PrivateCapacityReached,
)
from crm.pool_homes import home_pool_id, settings_for
from crm.scope import Viewer

RECYCLE_TASK = "crm.recycle_pool"
MANAGER_ROLES = permission("pool.manage", "公海管理", "公海设置、分配规则、把公海客户分配给销售", {Role.ADMIN, Role.MANAGER},
                           group="客户")
RELEASE_ROLES = frozenset({Role.ADMIN.value, Role.MANAGER.value, Role.SUPERVISOR.value})
# The pipeline order "converted" is measured on; "lost" is never past anything.
STAGE_ORDER = [s.value for s in Stage if s != Stage.LOST]
DEFAULT_CONVERTED_STAGE = Stage.APPLIED.value


def ensure_manager(viewer: Viewer) -> None:
    if viewer.role not in MANAGER_ROLES:
        raise PermissionDenied("只有经理或系统管理员可以执行此操作")


def _fmt(instant: datetime) -> str:
    return clock.ensure_aware(instant).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def _label(customer: Customer) -> str:
    return customer.name or customer.phone_masked or f"#{customer.id}"


def expire_customers(session: Session, ids: set[int]) -> None:
    """Bulk UPDATEs bypass the identity map: make loaded customers re-read their row."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer) and obj.id in ids:
            session.expire(obj)


# --- pools and settings -------------------------------------------------------------------------

def get_pool(session: Session, viewer: Viewer | None, pool_id: int) -> Pool:
    stmt = select(Pool).where(Pool.id == pool_id)
    if viewer is not None:
        stmt = stmt.where(customers.pool_visible_clause(viewer))
    pool = session.scalar(stmt)
    if pool is None:
        raise PoolNotFound()
    return pool


def list_pools(session: Session, viewer: Viewer) -> list[tuple[Pool, int]]:
    """Pools the viewer may see, with how many customers wait in each."""
    waiting = (select(Customer.pool_id, func.count().label("n")).where(Customer.status == CustomerStatus.POOL)
               .group_by(Customer.pool_id).subquery())
    rows = session.execute(
        select(Pool, func.coalesce(waiting.c.n, 0)).outerjoin(waiting, waiting.c.pool_id == Pool.id)
        .where(customers.pool_visible_clause(viewer)).order_by(Pool.is_default.desc(), Pool.name))
    return [(pool, int(n)) for pool, n in rows]


def create_pool(session: Session, viewer: Viewer, name: str, department_id: int | None = None) -> Pool:
    ensure_manager(viewer)
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationFailed("公海名称不能为空且不超过 60 个字", field="name")
    if session.scalar(select(Pool.id).where(Pool.name == name)):
        raise ValidationFailed("已有同名公海", field="name")
    if department_id is not None:
        dept = session.get(Department, department_id)
        if dept is None or not (viewer.scope == "all" or dept.path.startswith(viewer.department_path)):
            raise DepartmentNotFound()
    pool = Pool(name=name, department_id=department_id, is_default=False, created_at=clock.now())
    session.add(pool)
    session.flush()
    audit.record(session, "pool.create", entity_type="pool", entity_id=pool.id,
                 after={"name": name, "department_id": department_id})
    return pool


SETTING_LIMITS = {"daily_claim_cap": (0, 1000, "每日领取上限"), "cooldown_days": (0, 365, "冷却天数"),
                  "protection_days": (0, 365, "新线索保护天数")}


def update_settings(session: Session, viewer: Viewer, pool_id: int, values: dict[str, Any]) -> PoolSetting:
    ensure_manager(viewer)
    get_pool(session, viewer, pool_id)
    for key, (low, high, label) in SETTING_LIMITS.items():
        value = values.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValidationFailed(f"{label}必须是 {low}–{high} 之间的整数", field=key)
    row = session.get(PoolSetting, pool_id)
    before = None
    if row is None:
        row = PoolSetting(pool_id=pool_id)
        session.add(row)
    else:
        before = {k: getattr(row, k) for k in (*SETTING_LIMITS, "check_private_cap")}
    for key in SETTING_LIMITS:
        setattr(row, key, values[key])
    row.check_private_cap = bool(values.get("check_private_cap", True))
    row.updated_at = clock.now()
    session.flush()
    audit.record(session, "pool.settings", entity_type="pool", entity_id=pool_id, before=before,
                 after={k: getattr(row, k) for k in (*SETTING_LIMITS, "check_private_cap")})
    return row


@dataclass(frozen=True)
class PoolFilters:
    region: str | None = None
    customer_type: str | None = None
    grade: str | None = None
    source: str | None = None


def pool_customers(session: Session, viewer: Viewer, pool_id: int, filters: PoolFilters = PoolFilters(), *,
                   limit: int = 20, offset: int = 0) -> tuple[list[Customer], int]:
    """Customers waiting in a pool the viewer may see (displays show phone_masked only)."""
    stmt = pool_query(session, viewer, pool_id, filters)
    total = session.scalar(select(func.count()).select_from(stmt.with_only_columns(Customer.id).subquery())) or 0
    rows = session.scalars(stmt.order_by(Customer.released_at.desc().nulls_last(), Customer.id.desc())
                           .limit(limit).offset(offset))
    return list(rows), total


def pool_query(session: Session, viewer: Viewer, pool_id: int, filters: PoolFilters = PoolFilters()) -> Select[Any]:
    """The pool list's SELECT (a pool the viewer may see; its filters; no order): the page and the export."""
    get_pool(session, viewer, pool_id)
    where = [Customer.pool_id == pool_id, Customer.status == CustomerStatus.POOL]
    if filters.region:
        where.append(Customer.region == filters.region)
    if filters.customer_type:
        where.append(Customer.customer_type == filters.customer_type)
    if filters.grade:
        where.append(Customer.grade == filters.grade)
    if filters.source:
        where.append(Customer.source.in_(sources.spellings(filters.source)))
    return select(Customer).where(*where)


# --- claim, release, move -------------------------------------------------------------------------

def _dialect_insert(session: Session, table: Any) -> Any:
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _take_daily_claim(session: Session, staff_id: int, cap: int) -> int:
    """Count one claim for today unless the cap is reached; the database decides (one upsert)."""
    if cap <= 0:
        raise DailyClaimCapReached("该公海已关闭领取（每日领取上限为 0）")
    stmt = _dialect_insert(session, ClaimCounter).values(staff_id=staff_id, claim_date=clock.today(), claims=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["staff_id", "claim_date"], set_={"claims": ClaimCounter.claims + 1},
        where=ClaimCounter.claims < cap,
    ).returning(ClaimCounter.claims)
    taken = session.execute(stmt).scalar()
    if taken is None:
        raise DailyClaimCapReached(f"今日领取已达上限（{cap} 个），明天再来吧", cap=cap)
    return int(taken)


def claims_today(session: Session, staff_id: int) -> int:
    return session.scalar(select(ClaimCounter.claims).where(
        ClaimCounter.staff_id == staff_id, ClaimCounter.claim_date == clock.today())) or 0


def owned_count(session: Session, staff_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Customer).where(
        Customer.owner_id == staff_id, Customer.status == CustomerStatus.OWNED)) or 0


def _cooldown_open(customer_prev: Any, released: Any, staff_id: int, cutoff: datetime) -> ColumnElement[bool]:
    return or_(customer_prev.is_(None), customer_prev != staff_id, released.is_(None), released <= cutoff)


def claim(session: Session, viewer: Viewer, customer_id: int) -> Customer:
    """Take a customer from a pool into one's private customers (私海)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound()
    # Whoever saw it in a pool learns why it is gone (taken, or blacklisted), not whose it is now.
    if customer.status == CustomerStatus.BLACKLIST:
        raise CustomerBlacklisted("该客户已被列入黑名单，不能领取")
    if customer.status != CustomerStatus.POOL or customer.pool_id is None:
        raise ClaimLost()
    if not customers.can_view(session, viewer, customer):
        raise CustomerNotFound()
    pool_id = customer.pool_id
    setting = settings_for(session, pool_id)
    now = clock.now()
    cutoff = now - timedelta(days=setting.cooldown_days)
    staff = session.scalar(select(Staff).where(Staff.id == viewer.staff_id).with_for_update())
    if staff is None or not staff.is_active:
        raise PermissionDenied("离职员工不能领取客户")
    if (setting.cooldown_days and customer.previous_owner_id == staff.id and customer.released_at is not None
            and customer.released_at > cutoff):
        until = customer.released_at + timedelta(days=setting.cooldown_days)
        raise ClaimCooldown(f"您刚释放过该客户，{_fmt(until)} 之后才能再次领取", until=until.isoformat())
    with session.begin_nested():
        if setting.check_private_cap:
            held = owned_count(session, staff.id)
            if held >= staff.capacity:
                raise PrivateCapacityReached(
                    f"私海客户数已达上限（{staff.capacity} 个），请先跟进或释放部分客户", capacity=staff.capacity)
        _take_daily_claim(session, staff.id, setting.daily_claim_cap)
        result = session.execute(
            update(Customer)
            .where(Customer.id == customer.id, Customer.status == CustomerStatus.POOL, Customer.pool_id == pool_id,
                   _cooldown_open(Customer.previous_owner_id, Customer.released_at, staff.id, cutoff))
            .values(status=CustomerStatus.OWNED, owner_id=staff.id, pool_id=None, assigned_at=now,
                    protected_until=None, updated_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise ClaimLost()
    session.refresh(customer)
    pool = session.get(Pool, pool_id)
    customers.record_owner_change(session, customer.id, None, staff.id, pool_id, None, "claim", by_staff_id=staff.id)
    customers.record_event(session, customer.id, "owner.claim", f"{staff.display_name} 从公海「{pool.name}」领取",
                           actor_staff_id=staff.id)
    audit.record(session, "customer.claim", entity_type="customer", entity_id=customer.id,
                 before={"status": "pool", "pool_id": pool_id}, after={"status": "owned", "owner_id": staff.id})
    return customer


def claim_many(session: Session, viewer: Viewer, customer_ids: list[int]) -> dict[int, str | None]:
    """Bulk claim (the ids a person ticked on one page): each one wins or is refused on its own.
    Returns customer id -> None (claimed) or the Chinese reason it was not."""
    results: dict[int, str | None] = {}
    for cid in dict.fromkeys(customer_ids):
        try:
            with session.begin_nested():
                claim(session, viewer, cid)
            results[cid] = None
        except AppError as exc:
            results[cid] = exc.message
    return results


def release(session: Session, viewer: Viewer, customer_id: int, reason: str, *,
            pool_id: int | None = None) -> Customer:
    """Give a private customer back to a pool (the owner, or a supervisor/manager over the owner)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("请填写释放原因", field="reason")
    customer = customers.get_customer(session, viewer, customer_id)
    customers.ensure_not_blacklisted(customer)
    if customer.status != CustomerStatus.OWNED or customer.owner_id is None:
        raise NotOwned()
    owner_id = customer.owner_id
    if owner_id != viewer.staff_id and viewer.role not in RELEASE_ROLES:
        raise NotOwner()
    target = get_pool(session, None, pool_id) if pool_id else session.get(Pool, home_pool_id(session, owner_id))
    now = clock.now()
    result = session.execute(
        update(Customer).where(Customer.id == customer.id, Customer.status == CustomerStatus.OWNED,
                               Customer.owner_id == owner_id)
        .values(status=CustomerStatus.POOL, owner_id=None, pool_id=target.id, previous_owner_id=owner_id,
                released_at=now, protected_until=None, updated_at=now)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise ClaimLost("该客户的归属刚刚发生变化，请刷新后重试")
    session.refresh(customer)
    customers.record_owner_change(session, customer.id, owner_id, None, None, target.id, "release",
                                  by_staff_id=viewer.staff_id, note=reason)
    customers.record_event(session, customer.id, "owner.release", f"释放到公海「{target.name}」：{reason}",
                           actor_staff_id=viewer.staff_id)
    audit.record(session, "customer.release", entity_type="customer", entity_id=customer.id,
                 before={"status": "owned", "owner_id": owner_id},
                 after={"status": "pool", "pool_id": target.id}, detail=reason)
    return customer


def move(session: Session, viewer: Viewer, customer_id: int, pool_id: int, reason: str | None = None) -> Customer:
    """Move a waiting customer to another pool (managers)."""
    ensure_manager(viewer)
    customer = customers.get_customer(session, viewer, customer_id)
    customers.ensure_not_blacklisted(customer)
    if customer.status != CustomerStatus.POOL or customer.pool_id is None:
        raise NotInPool()
    target = get_pool(session, viewer, pool_id)
    source_id = customer.pool_id
    if target.id == source_id:
        return customer
    result = session.execute(
        update(Customer).where(Customer.id == customer.id, Customer.status == CustomerStatus.POOL,
                               Customer.pool_id == source_id)
        .values(pool_id=target.id, updated_at=clock.now()).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise ClaimLost()
    session.refresh(customer)
    source = session.get(Pool, source_id)
    customers.record_owner_change(session, customer.id, None, None, source_id, target.id, "move",
                                  by_staff_id=viewer.staff_id, note=reason)
    customers.record_event(session, customer.id, "pool.move", f"从公海「{source.name}」移到「{target.name}」",
                           actor_staff_id=viewer.staff_id)
    audit.record(session, "customer.pool_move", entity_type="customer", entity_id=customer.id,
                 before={"pool_id": source_id}, after={"pool_id": target.id}, detail=reason)
    return customer


# --- recycle rules ------------------------------------------------------------------------------

@dataclass
class RecycleRuleInput:
    name: str
    combinator: str = "and"
    no_followup_days: int | None = None
    not_converted_days: int | None = None
    converted_stage: str | None = None
    grades: list[str] | None = None
    stages: list[str] | None = None
    target_pool_id: int | None = None
    department_id: int | None = None
    warn_hours: int = 24
    active: bool = True


def _check_days(value: int | None, label: str, field: str) -> None:
    if value is not None and not 1 <= value <= 3650:
        raise InvalidPoolRule(f"{label}必须是 1–3650 之间的整数", field=field)


def save_recycle_rule(session: Session, viewer: Viewer, data: RecycleRuleInput,
                      rule_id: int | None = None) -> RecycleRule:
    ensure_manager(viewer)
    name = (data.name or "").strip()
    if not name or len(name) > 60:
        raise InvalidPoolRule("规则名称不能为空且不超过 60 个字", field="name")
    if data.combinator not in ("and", "or"):
        raise InvalidPoolRule("条件组合方式只能是「全部满足」或「任一满足」", field="combinator")
    _check_days(data.no_followup_days, "未跟进天数", "no_followup_days")
    _check_days(data.not_converted_days, "未转化天数", "not_converted_days")
    if data.converted_stage and data.converted_stage not in STAGE_ORDER[1:]:
        raise InvalidPoolRule(f"未知的转化阶段：{data.converted_stage}", field="converted_stage")
    grades = [g for g in (data.grades or []) if g]
    unknown = set(grades) - set(session.scalars(select(Grade.code).where(Grade.code.in_(grades))))
    if unknown:
        raise InvalidPoolRule(f"未知的客户等级：{'、'.join(sorted(unknown))}", field="grades")
    stages = [s for s in (data.stages or []) if s]
    bad_stages = set(stages) - {s.value for s in Stage}
    if bad_stages:
        raise InvalidPoolRule(f"未知的阶段：{'、'.join(sorted(bad_stages))}", field="stages")
    if data.no_followup_days is None and data.not_converted_days is None and not grades and not stages:
        raise InvalidPoolRule("请至少设置一个回收条件", field="conditions")
    if not 0 <= data.warn_hours <= 720:
        raise InvalidPoolRule("提前提醒小时数必须在 0–720 之间", field="warn_hours")
    if data.target_pool_id is not None:
        get_pool(session, viewer, data.target_pool_id)
    if data.department_id is not None:
        dept = session.get(Department, data.department_id)
        if dept is None or not (viewer.scope == "all" or dept.path.startswith(viewer.department_path)):
            raise DepartmentNotFound()
    rule = session.get(RecycleRule, rule_id) if rule_id else RecycleRule(created_at=clock.now())
    if rule is None:
        raise InvalidPoolRule("回收规则不存在")
    before = None if rule_id is None else _rule_dict(rule)
    rule.name, rule.combinator = name, data.combinator
    rule.no_followup_days, rule.not_converted_days = data.no_followup_days, data.not_converted_days
    rule.converted_stage = data.converted_stage or None
    rule.grades, rule.stages = ",".join(grades) or None, ",".join(stages) or None
    rule.target_pool_id, rule.department_id = data.target_pool_id, data.department_id
    rule.warn_hours, rule.active = data.warn_hours, data.active
    session.add(rule)
    session.flush()
    audit.record(session, "pool.recycle_rule", entity_type="recycle_rule", entity_id=rule.id, before=before,
                 after=_rule_dict(rule))
    return rule


def _rule_dict(rule: RecycleRule) -> dict[str, Any]:
    return {k: getattr(rule, k) for k in ("name", "combinator", "no_followup_days", "not_converted_days",
                                          "converted_stage", "grades", "stages", "target_pool_id",
                                          "department_id", "warn_hours", "active")}


def list_recycle_rules(session: Session) -> list[RecycleRule]:
    return list(session.scalars(select(RecycleRule).order_by(RecycleRule.id)))


def stages_before(stage: str) -> list[str]:
    """Stages not yet past ``stage`` (the stage itself excluded), plus 'lost'."""
    return [*STAGE_ORDER[:STAGE_ORDER.index(stage)], Stage.LOST.value]


def rule_clause(session: Session, rule: RecycleRule, at: datetime) -> ColumnElement[bool]:
    """The rule as one WHERE clause over ``customer``, evaluated as of instant ``at``."""
    conditions: list[ColumnElement[bool]] = []
    if rule.no_followup_days is not None:
        conditions.append(customers.followup_clock() < at - timedelta(days=rule.no_followup_days))
    if rule.not_converted_days is not None:
        conditions.append(and_(
            func.coalesce(Customer.assigned_at, Customer.created_at) < at - timedelta(days=rule.not_converted_days),
            Customer.stage.in_(stages_before(rule.converted_stage or DEFAULT_CONVERTED_STAGE))))
    if rule.grades:
        conditions.append(Customer.grade.in_(rule.grades.split(",")))
    if rule.stages:
        conditions.append(Customer.stage.in_(rule.stages.split(",")))
    if not conditions:
        return Customer.id.is_(None)  # a rule without conditions matches nothing
    combined = and_(*conditions) if rule.combinator == "and" else or_(*conditions)
    base = [Customer.status == CustomerStatus.OWNED,
            or_(Customer.protected_until.is_(None), Customer.protected_until <= at), combined]
    if rule.department_id is not None:
        path = session.scalar(select(Department.path).where(Department.id == rule.department_id))
        base.append(Customer.owner_id.in_(scope.subtree_staff_ids(path or "/nowhere/")))
    return and_(*base)


def _cycle() -> ColumnElement[datetime]:
    """A warning holds for one stretch of neglect: a follow-up or a new owner starts a new one, and the
    owner is warned again before that stretch ends in a recycle."""
    return customers.followup_clock()


@dataclass
class RecycleRun:
    warned: int = 0
    recycled: int = 0


def _warn(session: Session, rule: RecycleRule, now: datetime) -> int:
    """Warn owners of customers the rule will take within warn_hours; once per customer per cycle."""
    at = now + timedelta(hours=rule.warn_hours)
    already = exists().where(RecycleWarning.customer_id == Customer.id, RecycleWarning.cycle_at == _cycle())
    candidates = select(Customer.id, _cycle(), Customer.owner_id).where(rule_clause(session, rule, at), ~already)
    from sqlalchemy import literal

    stmt = _dialect_insert(session, RecycleWarning).from_select(
        ["customer_id", "cycle_at", "owner_id", "rule_id", "warned_at"],
        candidates.add_columns(literal(rule.id), literal(now, type_=RecycleWarning.warned_at.type)),
    ).on_conflict_do_nothing(index_elements=["customer_id", "cycle_at"]).returning(
        RecycleWarning.customer_id, RecycleWarning.owner_id)
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    by_owner: dict[int, list[int]] = defaultdict(list)
    for cid, owner_id in rows:
        by_owner[owner_id].append(cid)
    labels = _labels(session, [cid for cid, _ in rows])
    session.execute(insert(CustomerEvent), [
        {"customer_id": cid, "at": now, "kind": "recycle.warning",
         "summary": f"将于 {rule.warn_hours} 小时后按规则「{rule.name}」收回公海"[:300]}
        for cid, _ in rows])
    for owner_id, ids in by_owner.items():
        names = "、".join(labels[c] for c in ids[:10]) + (f" 等 {len(ids)} 位" if len(ids) > 10 else "")
        notify.notify(session, owner_id, "recycle.warning", "客户即将收回公海",
                      f"按规则「{rule.name}」，{names} 将在 {rule.warn_hours} 小时后收回公海，请尽快跟进。",
                      customer_id=ids[0] if len(ids) == 1 else None)
    return len(rows)


def _labels(session: Session, ids: list[int]) -> dict[int, str]:
    rows = session.execute(select(Customer.id, Customer.name, Customer.phone_masked).where(Customer.id.in_(ids)))
    return {cid: name or masked or f"#{cid}" for cid, name, masked in rows}


def _recycle(session: Session, rule: RecycleRule, now: datetime) -> int:
    """Take back every customer the rule matches now whose owner was warned long enough ago."""
    target_id = rule.target_pool_id or customers.default_pool(session).id
    warned = exists().where(RecycleWarning.customer_id == Customer.id, RecycleWarning.cycle_at == _cycle(),
                            RecycleWarning.warned_at <= now - timedelta(hours=rule.warn_hours))
    stmt = (update(Customer).where(rule_clause(session, rule, now), warned)
            .values(status=CustomerStatus.POOL, previous_owner_id=Customer.owner_id, owner_id=None,
                    pool_id=target_id, released_at=now, protected_until=None, updated_at=now)
            .returning(Customer.id, Customer.previous_owner_id)
            .execution_options(synchronize_session=False))
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    expire_customers(session, {cid for cid, _ in rows})
    pool = session.get(Pool, target_id)
    session.execute(insert(OwnerChange), [
        {"customer_id": cid, "from_owner_id": owner_id, "to_owner_id": None, "from_pool_id": None,
         "to_pool_id": target_id, "reason": "recycle", "note": rule.name[:200], "by_staff_id": None, "at": now}
        for cid, owner_id in rows])
    session.execute(insert(CustomerEvent), [
        {"customer_id": cid, "at": now, "kind": "owner.recycle",
         "summary": f"按规则「{rule.name}」收回公海「{pool.name}」"[:300]} for cid, _ in rows])
    by_owner: dict[int, list[int]] = defaultdict(list)
    for cid, owner_id in rows:
        by_owner[owner_id].append(cid)
    for owner_id, ids in by_owner.items():
        notify.notify(session, owner_id, "recycle.done", "客户已收回公海",
                      f"按规则「{rule.name}」，您的 {len(ids)} 位客户已收回公海「{pool.name}」。",
                      customer_id=ids[0] if len(ids) == 1 else None)
    ids = [cid for cid, _ in rows]
    audit.record(session, "customer.recycle", entity_type="recycle_rule", entity_id=rule.id,
                 after={"count": len(ids), "pool_id": target_id},
                 detail=("customers " + ",".join(map(str, ids)))[:500], actor=audit.Actor.system(RECYCLE_TASK))
    return len(rows)


def run_recycle(session: Session, *, rule_ids: list[int] | None = None) -> RecycleRun:
    """One pass of every active rule: warn first, then recycle. Idempotent; safe to run concurrently."""
    now = clock.now()
    run = RecycleRun()
    stmt = select(RecycleRule).where(RecycleRule.active.is_(True)).order_by(RecycleRule.id)
    if rule_ids:
        stmt = stmt.where(RecycleRule.id.in_(rule_ids))
    for rule in session.scalars(stmt).all():
        run.warned += _warn(session, rule, now)
        run.recycled += _recycle(session, rule, now)
    return run
