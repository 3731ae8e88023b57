"""Allocation of cases to collectors (分案) by the manager's rules.

:func:`plan` decides, :func:`apply` writes, :func:`preview` shows the plan per collector before anything is
written (the rules page). The same plan is what the nightly run applies, so a preview is what happens.

- The cases: the unassigned open ones (``scope="unassigned"``, the nightly run), or every open case
  (``scope="all"``, a manager re-balancing after changing the rules: loads start from zero).
- Each case goes to the first active rule (lowest ``priority``, then id) it matches — bucket, risk tier,
  overdue amount range, region (contained), product — whose group has an active collector; within the group to
  the collector with the least open-case count (or overdue balance, per rule), ties to the lowest staff id,
  cases in id order. A case released for re-assignment avoids its previous collector when the group has another.
- A case no rule takes goes to the active collector (role 催收) with the fewest open cases (the rule servicing
  used before rules existed); with no collector at all it stays unassigned, to be taken (``cases.take_case``).
- Writing is set-based: one UPDATE of the cases (conditional on their collector still being what the plan read,
  so a case taken meanwhile keeps its taker), one of the loans' mirror column, one multi-row INSERT of the
  ``assign`` history rows — on PostgreSQL all three in one statement (data-modifying CTEs over ``unnest`` arrays);
  on SQLite one UPDATE per case (its writers are serialised anyway) and one multi-row INSERT.
"""

# ruff: noqa: S608 - the SQL text formats in no value; every value is bound
from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from core import clock
from crm.models import Role, Staff, StaffStatus
from lending.models import Loan
from postloan.actions import COLLECTORS
from postloan.models import AllocationRule, CollectionAction, CollectionCase, CollectionGroup, CollectionGroupMember

__all__ = ["Assignment", "Plan", "PreviewRow", "allocate", "apply", "plan", "preview"]


@dataclass(frozen=True)
class Assignment:
    case_id: int
    loan_id: int
    staff_id: int
    group_id: int | None
    rule_id: int | None
    before: int | None  # the collector the plan read


@dataclass
class Plan:
    assignments: list[Assignment] = field(default_factory=list)
    unassigned: int = 0  # cases no collector could take
    names: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Case:
    id: int
    loan_id: int
    bucket: str
    risk_tier: str
    amount: int
    region: str | None
    product_id: int | None
    collector: int | None


def _split(raw: str | None) -> set[str]:
    return {part.strip() for part in (raw or "").split(",") if part.strip()}


def matches(rule: AllocationRule, case: _Case) -> bool:
    if (buckets := _split(rule.buckets)) and case.bucket not in buckets:
        return False
    if (tiers := _split(rule.risk_tiers)) and case.risk_tier not in tiers:
        return False
    if rule.min_amount is not None and case.amount < rule.min_amount:
        return False
    if rule.max_amount is not None and case.amount > rule.max_amount:
        return False
    if rule.region and (not case.region or rule.region.strip() not in case.region):
        return False
    return not (rule.product_id is not None and case.product_id != rule.product_id)


class _Pool:
    """Collectors of one group with their load; the least loaded first (ties: lowest staff id)."""

    def __init__(self, members: Iterable[int], load: dict[int, int]) -> None:
        self.heap = [(load.get(s, 0), s) for s in members]
        heapq.heapify(self.heap)

    def take(self, weight: int, avoid: int | None) -> int | None:
        if not self.heap:
            return None
        first = heapq.heappop(self.heap)
        if first[1] == avoid and self.heap:
            second = heapq.heapreplace(self.heap, first)
            heapq.heappush(self.heap, (second[0] + weight, second[1]))
            return second[1]
        heapq.heappush(self.heap, (first[0] + weight, first[1]))
        return first[1]


def open_cases(session: Session, scope: str, case_ids: list[int] | None) -> list[_Case]:
    c = CollectionCase
    stmt = select(c.id, c.loan_id, c.bucket, c.risk_tier, c.overdue_amount, c.region, c.product_id,
                  c.collector_staff_id).where(c.status == "open")
    if scope == "unassigned":
        stmt = stmt.where(c.collector_staff_id.is_(None))
    if case_ids is not None:
        stmt = stmt.where(c.id.in_(case_ids))
    return [_Case(*row) for row in session.execute(stmt.order_by(c.id))]


def plan(session: Session, *, scope: str = "unassigned", case_ids: list[int] | None = None,
         avoid: dict[int, int] | None = None) -> Plan:
    """Who gets which case (nothing written). ``avoid``: case id -> the collector it was taken from."""
    avoid = avoid or {}
    cases = open_cases(session, scope, case_ids)
    out = Plan()
    if not cases:
        return out
    staff = {sid: name for sid, name in session.execute(select(Staff.id, Staff.display_name).where(
        Staff.status == StaffStatus.ACTIVE, Staff.role.in_([str(r) for r in COLLECTORS])))}
    out.names = staff
    counts: dict[int, int] = {}
    balances: dict[int, int] = {}
    if scope == "unassigned":
        for sid, n, amount in session.execute(select(
                CollectionCase.collector_staff_id, func.count(), func.coalesce(func.sum(CollectionCase.overdue_amount), 0))
                .where(CollectionCase.status == "open", CollectionCase.collector_staff_id.is_not(None))
                .group_by(CollectionCase.collector_staff_id)):
            counts[sid], balances[sid] = int(n), int(amount)
    members: dict[int, list[int]] = {}
    for gid, sid in session.execute(select(CollectionGroupMember.group_id, CollectionGroupMember.staff_id)
                                    .join(CollectionGroup, CollectionGroup.id == CollectionGroupMember.group_id)
                                    .order_by(CollectionGroupMember.staff_id)):
        if sid in staff:
            members.setdefault(gid, []).append(sid)
    rules = [r for r in session.scalars(select(AllocationRule).where(AllocationRule.active.is_(True))
                                        .order_by(AllocationRule.priority, AllocationRule.id)) if members.get(r.group_id)]
    pools = {r.id: _Pool(members[r.group_id], balances if r.balance_by == "balance" else counts) for r in rules}
    fallback_ids = [sid for sid, in session.execute(select(Staff.id).where(
        Staff.status == StaffStatus.ACTIVE, Staff.role == Role.COLLECTOR).order_by(Staff.id))]
    fallback = _Pool(fallback_ids, counts)
    for case in cases:
        rule = next((r for r in rules if matches(r, case)), None)
        if rule is not None:
            weight = case.amount if rule.balance_by == "balance" else 1
            sid = pools[rule.id].take(weight, avoid.get(case.id))
            gid, rid = rule.group_id, rule.id
        else:
            sid, gid, rid = fallback.take(1, avoid.get(case.id)), None, None
        if sid is None:
            out.unassigned += 1
        elif sid != case.collector:
            out.assignments.append(Assignment(case.id, case.loan_id, sid, gid, rid, case.collector))
    return out


def apply(session: Session, the_plan: Plan, *, by_staff_id: int | None = None, note: str = "自动分配") -> int:
    """Write the plan (set-based); returns how many cases changed hands."""
    if not the_plan.assignments:
        return 0
    now = clock.now()
    rows = the_plan.assignments
    if session.get_bind().dialect.name == "postgresql":
        # one statement: the cases (conditional), the loans' mirror column and the history rows
        done = set(session.execute(text("""
            WITH v AS (
              SELECT * FROM unnest(CAST(:ids AS BIGINT[]), CAST(:staff AS BIGINT[]), CAST(:groups AS BIGINT[]),
                                   CAST(:rules AS BIGINT[]), CAST(:before AS BIGINT[]))
                       AS v(id, staff_id, group_id, rule_id, before)
            ), u AS (
              UPDATE postloan_case c SET collector_staff_id = v.staff_id, group_id = v.group_id, rule_id = v.rule_id,
                     assigned_at = :now, progress_at = :now
              FROM v WHERE c.id = v.id AND c.status = 'open' AND c.collector_staff_id IS NOT DISTINCT FROM v.before
              RETURNING c.id, c.loan_id, c.bucket, c.overdue_days, c.collector_staff_id
            ), l AS (
              UPDATE lending_loan SET collector_staff_id = u.collector_staff_id FROM u WHERE lending_loan.id = u.loan_id
              RETURNING lending_loan.id
            )
            INSERT INTO lending_collection_action (loan_id, case_id, kind, note, bucket, overdue_days, by_staff_id, at)
            SELECT u.loan_id, u.id, 'assign', :note || '给 ' || s.display_name, u.bucket, u.overdue_days, :by, :now
            FROM u JOIN staff s ON s.id = u.collector_staff_id
            RETURNING case_id
        """), {"ids": [a.case_id for a in rows], "staff": [a.staff_id for a in rows],
               "groups": [a.group_id for a in rows], "rules": [a.rule_id for a in rows],
               "before": [a.before for a in rows], "now": now, "note": note, "by": by_staff_id}).scalars())
        session.expire_all()
        return len(done)
    table = CollectionCase.__table__  # SQLite: one statement per case (rowcount tells which the plan still held)
    done = set()
    for a in rows:
        hit = session.execute(update(table).where(
            table.c.id == a.case_id, table.c.status == "open",
            table.c.collector_staff_id.is_(None) if a.before is None else table.c.collector_staff_id == a.before)
            .values(collector_staff_id=a.staff_id, group_id=a.group_id, rule_id=a.rule_id, assigned_at=now,
                    progress_at=now)).rowcount
        if hit:
            done.add(a.case_id)
    rows = [a for a in rows if a.case_id in done]
    if rows:
        loans = Loan.__table__
        session.execute(update(loans).where(loans.c.id == bindparam("lid")).values(
            collector_staff_id=bindparam("sid")), [{"lid": a.loan_id, "sid": a.staff_id} for a in rows])
    if rows:
        figures = _figures(session, [a.case_id for a in rows])
        session.execute(insert(CollectionAction), [
            {"loan_id": a.loan_id, "case_id": a.case_id, "kind": "assign", "outcome": None,
             "note": f"{note}给 {the_plan.names.get(a.staff_id, a.staff_id)}", "bucket": figures[a.case_id][0],
             "overdue_days": figures[a.case_id][1], "by_staff_id": by_staff_id, "at": now} for a in rows])
    session.expire_all()
    return len(rows)


def _figures(session: Session, ids: list[int]) -> dict[int, tuple[str, int]]:
    """Bucket and overdue days of the cases, for their history rows (many: one scan of the open cases)."""
    c = CollectionCase
    stmt = select(c.id, c.bucket, c.overdue_days).where(c.status == "open")
    if len(ids) <= 500:
        stmt = stmt.where(c.id.in_(ids))
    return {i: (b, d) for i, b, d in session.execute(stmt)}


def allocate(session: Session, *, case_ids: list[int] | None = None, avoid: dict[int, int] | None = None) -> int:
    return apply(session, plan(session, case_ids=case_ids, avoid=avoid))


@dataclass(frozen=True)
class PreviewRow:
    staff_id: int
    name: str
    current: int  # open cases held now
    new: int  # the plan gives them
    lose: int  # the plan takes from them (re-balancing)

    @property
    def after(self) -> int:
        return self.current + self.new - self.lose


def preview(session: Session, the_plan: Plan) -> list[PreviewRow]:
    current = dict(session.execute(select(CollectionCase.collector_staff_id, func.count()).where(
        CollectionCase.status == "open", CollectionCase.collector_staff_id.is_not(None))
        .group_by(CollectionCase.collector_staff_id)).all())
    new: dict[int, int] = {}
    lose: dict[int, int] = {}
    for a in the_plan.assignments:
        new[a.staff_id] = new.get(a.staff_id, 0) + 1
        if a.before is not None:
            lose[a.before] = lose.get(a.before, 0) + 1
    ids = sorted(set(current) | set(new) | set(lose) | set(the_plan.names))
    return [PreviewRow(s, the_plan.names.get(s, f"#{s}"), int(current.get(s, 0)), new.get(s, 0), lose.get(s, 0))
            for s in ids]
