"""Lead allocation (线索分配): who gets the customers waiting in a pool.

Strategies: round-robin, by region (staff.region = customer.region), by customer type (staff
skills, :class:`StaffSkill`), by weighted capacity (weight = staff.level; the least loaded relative
to its weight goes first) and manual (to a named person). Rules (:class:`AllocationRule`) pick the
strategy and the members per source pattern or per pool; nobody is given more than their
``staff.capacity`` private customers.

Concurrency: the members' staff rows and the round-robin cursor row are locked (``FOR UPDATE``,
in a fixed order) before loads are counted, and each assignment is a conditional set-based
``UPDATE … WHERE status = 'pool'``, so two allocations running at once never hand out the same
customer twice nor overfill anyone. Blacklisted customers are never in the pool, so never allocated.
"""

from __future__ import annotations

import fnmatch
import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import is_postgres
from crm import customers, notify, pool_service, scope
from crm.exceptions import DepartmentNotFound, StaffNotFound, ValidationFailed
from crm.models import (
    AllocationCursor,
    AllocationMember,
    AllocationMode,
    AllocationRule,
    Customer,
    CustomerEvent,
    CustomerStatus,
    CustomerType,
    Department,
    OwnerChange,
    Pool,
    Role,
    Staff,
    StaffSkill,
    StaffStatus,
)
from crm.pool_exceptions import InvalidPoolRule
from crm.scope import Viewer

MODES = [m.value for m in AllocationMode]
CHUNK = 1000
_UNDECIDED: list[Any] = []  # a marker: no plan decided yet for these facts


@dataclass(frozen=True)
class _Plan:
    mode: str
    rule_id: int | None
    pool_id: int | None  # for members and cursor when no rule
    target_staff_id: int | None


@dataclass
class _Member:
    id: int
    region: str | None
    level: int
    remaining: int
    load: int
    skills: set[str] = field(default_factory=set)


# --- rules ---------------------------------------------------------------------------------------

@dataclass
class AllocationRuleInput:
    name: str
    mode: str
    source_pattern: str | None = None
    pool_id: int | None = None
    department_id: int | None = None
    target_staff_id: int | None = None
    member_ids: list[int] = field(default_factory=list)
    priority: int = 100
    active: bool = True


def save_rule(session: Session, viewer: Viewer, data: AllocationRuleInput, rule_id: int | None = None) -> AllocationRule:
    pool_service.ensure_manager(viewer)
    name = (data.name or "").strip()
    if not name or len(name) > 60:
        raise InvalidPoolRule("规则名称不能为空且不超过 60 个字", field="name")
    if data.mode not in MODES:
        raise InvalidPoolRule(f"未知的分配方式：{data.mode}", field="mode")
    pattern = (data.source_pattern or "").strip() or None
    if pattern and len(pattern) > 40:
        raise InvalidPoolRule("来源匹配不超过 40 个字符", field="source_pattern")
    if pattern is None and data.pool_id is None:
        raise InvalidPoolRule("请填写来源匹配或选择公海", field="source_pattern")
    if data.pool_id is not None:
        pool_service.get_pool(session, viewer, data.pool_id)
    if data.department_id is not None:
        dept = session.get(Department, data.department_id)
        if dept is None or not (viewer.scope == "all" or dept.path.startswith(viewer.department_path)):
            raise DepartmentNotFound()
    member_ids = list(dict.fromkeys(data.member_ids))
    wanted = [*member_ids, *([data.target_staff_id] if data.target_staff_id else [])]
    if wanted:
        found = set(session.scalars(select(Staff.id).where(Staff.id.in_(wanted), scope.staff_filter(viewer))))
        if set(wanted) - found:
            raise StaffNotFound("所选员工不存在或不在您的数据范围内")
    if data.mode == AllocationMode.MANUAL and data.target_staff_id is None:
        raise InvalidPoolRule("指定人员分配需要选择员工", field="target_staff_id")
    if not -1000 <= data.priority <= 1000:
        raise InvalidPoolRule("优先级必须在 -1000–1000 之间", field="priority")
    rule = session.get(AllocationRule, rule_id) if rule_id else AllocationRule(created_at=clock.now())
    if rule is None:
        raise InvalidPoolRule("分配规则不存在")
    rule.name, rule.mode, rule.source_pattern, rule.pool_id = name, data.mode, pattern, data.pool_id
    rule.department_id, rule.target_staff_id = data.department_id, data.target_staff_id
    rule.priority, rule.active = data.priority, data.active
    session.add(rule)
    session.flush()
    session.query(AllocationMember).filter(AllocationMember.rule_id == rule.id).delete(synchronize_session=False)
    if member_ids:
        session.execute(insert(AllocationMember), [{"rule_id": rule.id, "staff_id": s} for s in member_ids])
    audit.record(session, "allocation.rule", entity_type="allocation_rule", entity_id=rule.id,
                 after={"name": name, "mode": data.mode, "source_pattern": pattern, "pool_id": data.pool_id,
                        "members": ",".join(map(str, member_ids)), "active": data.active})
    return rule


def list_rules(session: Session) -> list[AllocationRule]:
    return list(session.scalars(select(AllocationRule).order_by(AllocationRule.priority, AllocationRule.id)))


def rule_members(session: Session, rule_id: int) -> list[int]:
    return list(session.scalars(select(AllocationMember.staff_id).where(AllocationMember.rule_id == rule_id)
                                .order_by(AllocationMember.staff_id)))


def set_skills(session: Session, viewer: Viewer, staff_id: int, customer_types: list[str]) -> list[str]:
    """The customer types a salesperson handles (allocation by customer type)."""
    pool_service.ensure_manager(viewer)
    if session.scalar(select(Staff.id).where(Staff.id == staff_id, scope.staff_filter(viewer))) is None:
        raise StaffNotFound()
    types = list(dict.fromkeys(t for t in customer_types if t))
    bad = set(types) - {t.value for t in CustomerType}
    if bad:
        raise ValidationFailed(f"未知的客户类型：{'、'.join(sorted(bad))}", field="customer_types")
    session.query(StaffSkill).filter(StaffSkill.staff_id == staff_id).delete(synchronize_session=False)
    if types:
        session.execute(insert(StaffSkill), [{"staff_id": staff_id, "customer_type": t} for t in types])
    audit.record(session, "staff.skills", entity_type="staff", entity_id=staff_id, after={"types": ",".join(types)})
    return types


# --- allocation ----------------------------------------------------------------------------------

def _match(rule: AllocationRule, source: str, pool_id: int | None) -> bool:
    if rule.source_pattern and not fnmatch.fnmatchcase(source, rule.source_pattern):
        return False
    return not (rule.pool_id is not None and rule.pool_id != pool_id)


def _members(session: Session, rule: AllocationRule | None, pool_id: int | None) -> list[int]:
    """Staff ids a plan may give customers to (active only)."""
    if rule is not None:
        listed = rule_members(session, rule.id)
        if listed:
            return list(session.scalars(select(Staff.id).where(Staff.id.in_(listed),
                                                               Staff.status == StaffStatus.ACTIVE)))
    department_id = rule.department_id if rule is not None and rule.department_id else None
    if department_id is None and pool_id is not None:
        department_id = session.scalar(select(Pool.department_id).where(Pool.id == pool_id))
    stmt = select(Staff.id).where(Staff.status == StaffStatus.ACTIVE, Staff.role == Role.SALES)
    if department_id is not None:
        path = session.scalar(select(Department.path).where(Department.id == department_id)) or "/nowhere/"
        stmt = stmt.where(Staff.id.in_(scope.subtree_staff_ids(path)))
    return list(session.scalars(stmt))


def _lock_members(session: Session, staff_ids: list[int]) -> dict[int, _Member]:
    """Lock the members' rows (id order: no deadlock between two allocations) and read their loads."""
    if not staff_ids:
        return {}
    staff = session.execute(select(Staff.id, Staff.region, Staff.level, Staff.capacity)
                            .where(Staff.id.in_(staff_ids)).order_by(Staff.id).with_for_update()).all()
    loads = dict(session.execute(
        select(Customer.owner_id, func.count()).where(Customer.owner_id.in_(staff_ids),
                                                      Customer.status == CustomerStatus.OWNED)
        .group_by(Customer.owner_id)).all())
    skills: dict[int, set[str]] = defaultdict(set)
    for sid, ctype in session.execute(select(StaffSkill.staff_id, StaffSkill.customer_type)
                                      .where(StaffSkill.staff_id.in_(staff_ids))):
        skills[sid].add(ctype)
    return {sid: _Member(sid, region, max(1, level or 1), max(0, capacity - loads.get(sid, 0)), loads.get(sid, 0),
                         skills[sid]) for sid, region, level, capacity in staff}


def _cursor(session: Session, key: str) -> AllocationCursor:
    stmt = pool_service._dialect_insert(session, AllocationCursor).values(
        key=key[:120], last_staff_id=None, updated_at=clock.now()).on_conflict_do_nothing(index_elements=["key"])
    session.execute(stmt)
    return session.scalars(select(AllocationCursor).where(AllocationCursor.key == key[:120])
                           .with_for_update().execution_options(populate_existing=True)).one()


def _round_robin(session: Session, key: str, members: list[_Member], rows: list[Any],
                 out: dict[int, int]) -> None:
    ring = sorted(members, key=lambda m: m.id)
    if not ring or not rows:
        return
    cursor = _cursor(session, key)
    last = cursor.last_staff_id
    pos = next((i for i, m in enumerate(ring) if last is not None and m.id > last), 0) if last is not None else 0
    size, n = len(ring), len(rows)
    turns, extra = divmod(n, size)
    if all(m.remaining >= turns + (extra > 0) for m in ring):
        # Nobody can run out during this deal: the loop below would give row i to ring[pos + i],
        # so give it so at once (a batch import deals thousands of leads here).
        ids = [m.id for m in ring]
        out.update(zip([row.id for row in rows], [ids[(pos + i) % size] for i in range(n)], strict=True))
        for j, member in enumerate(ring):
            got = turns + ((j - pos) % size < extra)
            member.remaining -= got
            member.load += got
        cursor.last_staff_id, cursor.updated_at = ids[(pos + n - 1) % size], clock.now()
        return
    for row in rows:
        for step in range(len(ring)):
            member = ring[(pos + step) % len(ring)]
            if member.remaining > 0:
                out[row.id] = member.id
                member.remaining -= 1
                member.load += 1
                last = member.id
                pos = (pos + step + 1) % len(ring)
                break
        else:
            break  # everyone is full
    cursor.last_staff_id, cursor.updated_at = last, clock.now()


def _weighted(members: list[_Member], rows: list[Any], out: dict[int, int]) -> None:
    heap = [(m.load / m.level, m.load, m.id) for m in members if m.remaining > 0]
    heapq.heapify(heap)
    by_id = {m.id: m for m in members}
    for row in rows:
        if not heap:
            break
        _, _, sid = heapq.heappop(heap)
        member = by_id[sid]
        out[row.id] = sid
        member.remaining -= 1
        member.load += 1
        if member.remaining > 0:
            heapq.heappush(heap, (member.load / member.level, member.load, sid))


def _plan_for(row: Any, rules: list[AllocationRule], *, mode: str | None, source: str | None,
              pool_id: int | None, to_staff_id: int | None) -> tuple[_Plan | None, AllocationRule | None]:
    src = source if source is not None else (row.source or "")
    pid = pool_id if pool_id is not None else row.pool_id
    rule = next((r for r in rules if _match(r, src, pid)), None)
    if mode is None and rule is None:
        return None, None
    chosen = mode or rule.mode
    target = to_staff_id or (rule.target_staff_id if rule is not None else None)
    if chosen == AllocationMode.MANUAL and target is None:
        raise ValidationFailed("指定人员分配需要选择员工", field="to_staff_id")
    return _Plan(chosen, rule.id if rule else None, pid, target if chosen == AllocationMode.MANUAL else None), rule


class _Row(NamedTuple):
    """What the strategies look at: a pool customer, or a lead not written yet (id = its position).
    A tuple: a batch import builds one per lead."""

    id: int
    source: str
    pool_id: int | None
    region: str | None
    customer_type: str


class LeadFacts(NamedTuple):
    """A lead about to be created, as :func:`plan` sees it."""

    source: str
    region: str | None = None
    customer_type: str = CustomerType.UNKNOWN


def _deal(session: Session, rows: list[Any], *, mode: str | None, source: str | None, pool_id: int | None,
          to_staff_id: int | None) -> dict[int, int]:
    """row id -> staff id for the rows the rules (or ``mode``) give to someone with room. Members'
    staff rows and the round-robin cursors are locked (FOR UPDATE, fixed order) and loads read once;
    each cursor is advanced once."""
    if mode is not None and mode not in MODES:
        raise ValidationFailed(f"未知的分配方式：{mode}", field="mode")
    rules = list(session.scalars(select(AllocationRule).where(AllocationRule.active.is_(True))
                                 .order_by(AllocationRule.priority, AllocationRule.id)))
    groups: dict[_Plan, list[Any]] = defaultdict(list)
    plan_rules: dict[_Plan, AllocationRule | None] = {}
    # The plan depends on (source, pool) only: decided once per pair, each row then appended to its
    # plan's list (a batch import deals tens of thousands of rows here).
    decided: dict[tuple[str, int | None], list[Any] | None] = {}
    for row in rows:
        facts = (source if source is not None else (row.source or ""), pool_id if pool_id is not None else row.pool_id)
        target = decided.get(facts, _UNDECIDED)
        if target is _UNDECIDED:
            plan, rule = _plan_for(row, rules, mode=mode, source=source, pool_id=pool_id, to_staff_id=to_staff_id)
            target = decided[facts] = groups[plan] if plan is not None else None
            if plan is not None:
                plan_rules[plan] = rule
        if target is not None:
            target.append(row)
    # Lock every member once, in id order, before any cursor: one global lock order.
    member_ids: dict[_Plan, list[int]] = {}
    for plan in groups:
        if plan.mode == AllocationMode.MANUAL:
            target = session.scalar(select(Staff.id).where(Staff.id == plan.target_staff_id,
                                                           Staff.status == StaffStatus.ACTIVE))
            if target is None:
                raise StaffNotFound("指定的员工不存在或已离职")
            member_ids[plan] = [target]
        else:
            member_ids[plan] = _members(session, plan_rules[plan], plan.pool_id)
    members = _lock_members(session, sorted({s for ids_ in member_ids.values() for s in ids_}))
    assigned: dict[int, int] = {}
    for plan in sorted(groups, key=lambda p: (p.rule_id or 0, p.pool_id or 0, p.mode)):
        pool_rows = groups[plan]
        crew = [members[s] for s in member_ids[plan] if s in members]
        base_key = f"rule:{plan.rule_id}" if plan.rule_id else f"pool:{plan.pool_id}:{plan.mode}"
        if plan.mode == AllocationMode.ROUND_ROBIN:
            _round_robin(session, base_key, crew, pool_rows, assigned)
        elif plan.mode == AllocationMode.WEIGHTED:
            _weighted(crew, pool_rows, assigned)
        elif plan.mode == AllocationMode.MANUAL:
            _weighted(crew, pool_rows, assigned)  # one member: fills up to their remaining capacity
        else:
            attr = "region" if plan.mode == AllocationMode.REGION else "customer_type"
            by_value: dict[str, list[Any]] = defaultdict(list)
            for row in pool_rows:
                value = getattr(row, attr)
                if value:
                    by_value[value].append(row)
            for value in sorted(by_value):
                if plan.mode == AllocationMode.REGION:
                    eligible = [m for m in crew if m.region == value]
                else:
                    eligible = [m for m in crew if value in m.skills]
                _round_robin(session, f"{base_key}:{attr}:{value}", eligible, by_value[value], assigned)
    return assigned


def plan(session: Session, leads: list[LeadFacts], *, pool_id: int, mode: str | None = None,
         source: str | None = None) -> list[int | None]:
    """Owners for leads about to be created in ``pool_id``, decided before they are written (a
    batch import inserts each lead already owned): the same rules, members, capacity caps and
    round-robin cursors as :func:`allocate`, with the same locks held until the caller commits.
    Returns one staff id (or None: the lead stays in the pool) per lead, in order.

    The caller writes what :func:`allocate` would have: status owned, ``assigned_at``,
    ``protected_until`` (:func:`protection_until`), owner history and timeline, and tells each new
    owner (:func:`notify_owners`). A lead it then fails to create only leaves capacity unused."""
    if not leads:
        return []
    make = _Row._make
    rows = [make((i, source or "", pool_id, region, customer_type))
            for i, (source, region, customer_type) in enumerate(leads)]
    assigned = _deal(session, rows, mode=mode, source=source, pool_id=None, to_staff_id=None)
    return [assigned.get(i) for i in range(len(rows))]


def protection_until(session: Session, pool_id: int, now: datetime) -> datetime | None:
    """New-lead protection of a lead dealt from ``pool_id`` now (None: the pool protects none)."""
    days = pool_service.settings_for(session, pool_id).protection_days
    return now + timedelta(days=days) if days else None


def notify_owners(session: Session, done: dict[int, int], actor: audit.Actor | None = None) -> None:
    """Tell each new owner once (one notification per owner per batch) and audit-log the batch."""
    by_owner: dict[int, list[int]] = defaultdict(list)
    for cid, sid in done.items():
        by_owner[sid].append(cid)
    notify.notify_each(session, [
        (sid, "lead.assigned", "新线索分配", f"您有 {len(ids)} 位新客户，请尽快跟进。", ids[0] if len(ids) == 1 else None)
        for sid, ids in sorted(by_owner.items())])
    audit.record(session, "customer.allocate", entity_type="customer", entity_id=None,
                 after={"count": len(done), "owners": len(by_owner)},
                 actor=actor,
                 detail=("customers " + ",".join(map(str, sorted(done))))[:500])


def allocate(session: Session, customer_ids: list[int], *, mode: str | None = None, source: str | None = None,
             pool_id: int | None = None, actor_staff_id: int | None = None,
             to_staff_id: int | None = None) -> dict[int, int | None]:
    """Give pool customers to staff. Returns customer id -> new owner id, or None when it stayed
    where it was (no matching rule, nobody eligible or with room, not in a pool, blacklisted).

    ``mode`` overrides the matched rule's strategy (members still come from the rule, else from the
    pool's department); ``source`` and ``pool_id`` override the customer's own for rule matching;
    ``to_staff_id`` is the person for ``mode="manual"``.
    """
    if mode is not None and mode not in MODES:
        raise ValidationFailed(f"未知的分配方式：{mode}", field="mode")
    result: dict[int, int | None] = dict.fromkeys(dict.fromkeys(customer_ids))
    ids = list(result)
    rows: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        rows.extend(session.execute(
            select(Customer.id, Customer.source, Customer.pool_id, Customer.region, Customer.customer_type)
            .where(Customer.id.in_(ids[start:start + CHUNK]), Customer.status == CustomerStatus.POOL)
            .order_by(Customer.id)).all())
    if not rows:
        return result
    assigned = _deal(session, rows, mode=mode, source=source, pool_id=pool_id, to_staff_id=to_staff_id)
    done = _apply(session, assigned, {r.id: r.pool_id for r in rows}, actor_staff_id)
    result.update(done)
    return result


def _apply(session: Session, assigned: dict[int, int], pools: dict[int, int], actor_staff_id: int | None
           ) -> dict[int, int]:
    """Write the assignments set-based: one conditional UPDATE per chunk (PostgreSQL: from arrays;
    elsewhere a CASE per column), multi-row INSERTs for owner history and timeline, one
    notification per owner."""
    if not assigned:
        return {}
    now = clock.now()
    protect = {pid: protection_until(session, pid, now) for pid in set(pools[c] for c in assigned)}
    items = sorted(assigned.items())
    done: dict[int, int] = {}
    postgres = is_postgres(session)
    for start in range(0, len(items), CHUNK):
        part = items[start:start + CHUNK]
        if postgres:
            won = session.execute(text(
                "UPDATE customer AS c SET status = :owned, owner_id = v.sid, pool_id = NULL, assigned_at = :now, "
                "protected_until = v.until, updated_at = :now "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:sids AS bigint[]), CAST(:pools AS bigint[]), "
                "CAST(:untils AS timestamptz[])) AS v(cid, sid, pid, until) "
                "WHERE c.id = v.cid AND c.status = :pool AND c.pool_id = v.pid RETURNING c.id, c.owner_id"),
                {"owned": CustomerStatus.OWNED.value, "pool": CustomerStatus.POOL.value, "now": now,
                 "ids": [c for c, _ in part], "sids": [s for _, s in part], "pools": [pools[c] for c, _ in part],
                 "untils": [protect[pools[c]] for c, _ in part]}).all()
        else:
            ids = [c for c, _ in part]
            won = session.execute(
                update(Customer).where(Customer.id.in_(ids), Customer.status == CustomerStatus.POOL,
                                       Customer.pool_id == case(dict((c, pools[c]) for c in ids), value=Customer.id))
                .values(status=CustomerStatus.OWNED, owner_id=case(dict(part), value=Customer.id), pool_id=None,
                        assigned_at=now, protected_until=case(
                            {pid: literal(until, Customer.protected_until.type) for pid, until in protect.items()},
                            value=Customer.pool_id, else_=None), updated_at=now)
                .returning(Customer.id, Customer.owner_id).execution_options(synchronize_session=False)).all()
        done.update((cid, sid) for cid, sid in won)
    if not done:
        return {}
    pool_service.expire_customers(session, set(done))
    names = dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(set(done.values())))).all())
    ordered = sorted(done.items())
    _insert_rows(session, OwnerChange, [
        {"customer_id": cid, "from_owner_id": None, "to_owner_id": sid, "from_pool_id": pools[cid],
         "to_pool_id": None, "reason": "assign", "note": None, "by_staff_id": actor_staff_id, "at": now}
        for cid, sid in ordered])
    _insert_rows(session, CustomerEvent, [
        {"customer_id": cid, "at": now, "kind": "owner.assign", "summary": f"分配给 {names.get(sid, sid)}",
         "actor_staff_id": actor_staff_id, "ref_type": None, "ref_id": None, "data": None} for cid, sid in ordered])
    notify_owners(session, done)
    return done


def _insert_rows(session: Session, table: type, rows: list[dict[str, Any]], chunk: int = CHUNK) -> None:
    """Multi-row INSERT … VALUES, one statement per chunk."""
    for start in range(0, len(rows), chunk):
        session.execute(insert(table).values(rows[start:start + chunk]))


def allocate_for(session: Session, viewer: Viewer, customer_ids: list[int], *, mode: str | None = None,
                 to_staff_id: int | None = None) -> dict[int, int | None]:
    """A manager allocating pool customers they can see (console and API)."""
    pool_service.ensure_manager(viewer)
    visible = set(session.scalars(
        select(Customer.id).join(Pool, Pool.id == Customer.pool_id)
        .where(Customer.id.in_(customer_ids), customers.pool_visible_clause(viewer))))
    if to_staff_id is not None and session.scalar(
            select(Staff.id).where(Staff.id == to_staff_id, scope.staff_filter(viewer))) is None:
        raise StaffNotFound("所选员工不存在或不在您的数据范围内")
    result: dict[int, int | None] = dict.fromkeys(customer_ids)
    if visible:
        result.update(allocate(session, sorted(visible), mode=mode, actor_staff_id=viewer.staff_id,
                               to_staff_id=to_staff_id))
    return result
