"""Handover of a salesperson's customers (离职继承 / 在职继承): cases and their customers, the
assignment plan, and the WeCom transfer state machine. The atomic execution lives in
:mod:`crm.handover_flows`.

A departure case is opened once per departing person (``open_departure_case``: the console calls it
after marking the person departed, the WeCom layer from the ``delete_user`` address-book event); an
in-service case for a chosen subset of one person's customers. The manager then decides where the
customers go (one successor, evenly across a team, back to a pool, per-customer overrides) and
executes the case in one transaction.

WeCom customers are moved in WeCom by the bot, not here: execution writes :class:`WeComTransfer`
rows in status ``requested`` and the bot reports back through :func:`apply_transfer_result`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from core import audit, clock
from core.db import UTCDateTime
from crm import customers, followups, org_service, scope, visits
from crm.handover_exceptions import (
    HandoverCaseClosed,
    HandoverCaseNotFound,
    HandoverInvalid,
    HandoverNotAllowed,
    HandoverRefused,
    IllegalTransferTransition,
    TransferNotFound,
)
from crm.models import (
    CaseStatus,
    Customer,
    CustomerStatus,
    Department,
    HandoverCase,
    HandoverItem,
    HandoverKind,
    ItemStatus,
    Pool,
    Role,
    Staff,
    StaffStatus,
    TransferKind,
    TransferStatus,
    WeComTransfer,
    WeComTransferEvent,
)
from crm.models.handover import ACTIVE_TRANSFER_STATUSES
from crm.permissions import permission
from crm.scope import Viewer

HANDOVER_ROLES = permission("customers.handover", "客户交接", "离职交接、在职转接（按数据范围）", {Role.ADMIN, Role.MANAGER},
                            group="客户")
TRANSFER_TASK = "bot.transfer_customers"
IN_SERVICE_LIMIT = 2  # WeCom: a customer may be transferred in service at most 2 times in 90 days
IN_SERVICE_WINDOW = timedelta(days=90)
CHUNK = 5000  # ids per IN (...) list: well under SQLite's and PostgreSQL's bind-parameter limits
# Modules of other CRM areas that hold per-staff work on customers (follow-up tasks, visits). Each
# offers open_items_for(session, staff_id) and reassign_items(session, from_id, mapping).
WORK_MODULES = (followups, visits)


def chunks(values: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# --- who may do what --------------------------------------------------------------------------------

def ensure_may_hand_over(session: Session, viewer: Viewer, staff_id: int) -> Staff:
    """Managers and admins only, and only for people inside their data scope."""
    if viewer.role not in HANDOVER_ROLES:
        raise HandoverNotAllowed()
    return org_service.get_staff(session, staff_id, viewer)


def _case_query(viewer: Viewer | None):  # noqa: ANN202 - a Select
    stmt = select(HandoverCase)
    if viewer is not None:
        stmt = stmt.where(scope.owner_filter(viewer, HandoverCase.from_staff_id))
    return stmt


def get_case(session: Session, viewer: Viewer | None, case_id: int, *, for_update: bool = False) -> HandoverCase:
    if viewer is not None and viewer.role not in HANDOVER_ROLES:
        raise HandoverNotAllowed()
    stmt = _case_query(viewer).where(HandoverCase.id == case_id)
    if for_update:
        stmt = stmt.with_for_update()
    case = session.scalar(stmt)
    if case is None:
        raise HandoverCaseNotFound()
    return case


def list_cases(session: Session, viewer: Viewer, *, status: str | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[tuple[HandoverCase, Staff, int]], int]:
    """Cases in the viewer's scope, newest first, with the departing person and the item count."""
    if viewer.role not in HANDOVER_ROLES:
        raise HandoverNotAllowed()
    base = _case_query(viewer)
    if status:
        base = base.where(HandoverCase.status == status)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    items = (select(func.count()).select_from(HandoverItem).where(HandoverItem.case_id == HandoverCase.id)
             .correlate(HandoverCase).scalar_subquery())
    stmt = (base.add_columns(Staff, items).join(Staff, Staff.id == HandoverCase.from_staff_id)
            .order_by(HandoverCase.id.desc()).limit(limit).offset(offset))
    return [(c, s, n) for c, s, n in session.execute(stmt)], total


# --- opening cases -----------------------------------------------------------------------------------

def _open_case_for(session: Session, staff_id: int, kind: str) -> HandoverCase | None:
    return session.scalar(select(HandoverCase).where(
        HandoverCase.from_staff_id == staff_id, HandoverCase.kind == kind, HandoverCase.status == CaseStatus.OPEN))


def _add_owned_items(session: Session, case: HandoverCase) -> int:
    """Add every customer the person owns now and the case lacks (one INSERT … SELECT); returns the
    number of items the case has."""
    stmt = insert(HandoverItem.__table__).from_select(
        ["case_id", "customer_id", "status"],
        select(literal(case.id), Customer.id, literal(ItemStatus.PENDING.value))
        .where(Customer.owner_id == case.from_staff_id, Customer.status == CustomerStatus.OWNED,
               ~select(HandoverItem.id).where(HandoverItem.case_id == case.id,
                                              HandoverItem.customer_id == Customer.id).exists())
        .order_by(Customer.id),
    )
    session.execute(stmt)
    return session.scalar(select(func.count()).select_from(HandoverItem).where(HandoverItem.case_id == case.id)) or 0


def open_departure_case(session: Session, staff_id: int, opened_by: int | None = None,
                        source: str = "console", note: str | None = None) -> HandoverCase:
    """The departure case (离职交接) of ``staff_id``: marks them departed if still active, and lists the
    customers they own. Idempotent: one open case per departing person (a partial unique index
    decides a race); calling again returns the open case with any newly owned customers added.

    No scope check here: the console goes through :func:`crm.handover_flows.start_departure`; the
    WeCom layer calls this from the ``delete_user`` event with ``source="wecom"``.
    """
    if source not in ("console", "wecom"):
        raise HandoverInvalid(f"未知的来源：{source}")
    staff = org_service.mark_departed(session, staff_id)
    case = _open_case_for(session, staff.id, HandoverKind.DEPARTURE)
    if case is not None:
        _add_owned_items(session, case)
        return case
    try:
        with session.begin_nested():
            case = HandoverCase(kind=HandoverKind.DEPARTURE, from_staff_id=staff.id, status=CaseStatus.OPEN,
                                source=source, opened_by=opened_by, opened_at=clock.now(),
                                note=(note or None) and note[:500])
            session.add(case)
            session.flush()
    except IntegrityError:
        existing = _open_case_for(session, staff.id, HandoverKind.DEPARTURE)
        if existing is None:
            raise
        _add_owned_items(session, existing)
        return existing
    count = _add_owned_items(session, case)
    audit.record(session, "handover.open", entity_type="handover_case", entity_id=case.id,
                 after={"kind": case.kind, "from_staff_id": staff.id, "customers": count, "source": source})
    return case


def open_in_service_case(session: Session, viewer: Viewer, from_staff_id: int, customer_ids: Iterable[int],
                         note: str | None = None) -> HandoverCase:
    """An in-service case (在职转接) for a chosen subset of one active person's customers."""
    staff = ensure_may_hand_over(session, viewer, from_staff_id)
    if staff.status != StaffStatus.ACTIVE:
        raise HandoverInvalid("该员工已离职，请使用离职交接")
    ids = sorted({int(i) for i in customer_ids})
    if not ids:
        raise HandoverInvalid("请至少选择一位客户", field="customer_ids")
    owned: set[int] = set()
    for part in chunks(ids):
        owned.update(session.scalars(select(Customer.id).where(
            Customer.id.in_(part), Customer.owner_id == staff.id, Customer.status == CustomerStatus.OWNED)))
    foreign = [i for i in ids if i not in owned]
    if foreign:
        raise HandoverInvalid(f"{len(foreign)} 位客户不属于{staff.display_name}，不能转接",
                              field="customer_ids", customer_ids=foreign[:50])
    case = HandoverCase(kind=HandoverKind.IN_SERVICE, from_staff_id=staff.id, status=CaseStatus.OPEN,
                        source="console", opened_by=viewer.staff_id, opened_at=clock.now(),
                        note=(note or None) and note[:500])
    session.add(case)
    session.flush()
    session.execute(insert(HandoverItem), [
        {"case_id": case.id, "customer_id": cid, "status": ItemStatus.PENDING.value} for cid in ids])
    audit.record(session, "handover.open", entity_type="handover_case", entity_id=case.id,
                 after={"kind": case.kind, "from_staff_id": staff.id, "customers": len(ids), "source": "console"})
    return case


def cancel_case(session: Session, viewer: Viewer, case_id: int, reason: str | None = None) -> HandoverCase:
    case = get_case(session, viewer, case_id, for_update=True)
    if case.status != CaseStatus.OPEN:
        raise HandoverCaseClosed()
    case.status, case.closed_at = CaseStatus.CANCELLED, clock.now()
    session.flush()
    audit.record(session, "handover.cancel", entity_type="handover_case", entity_id=case.id,
                 before={"status": "open"}, after={"status": "cancelled"}, detail=reason)
    return case


# --- reads for the case page ---------------------------------------------------------------------------

@dataclass
class CaseRow:
    item: HandoverItem
    customer: Customer
    to_staff_name: str | None
    to_pool_name: str | None
    transfer: WeComTransfer | None


def case_rows(session: Session, viewer: Viewer | None, case_id: int, *, status: str | None = None,
              limit: int = 50, offset: int = 0) -> tuple[list[CaseRow], int]:
    """The customers of a case with their target and this case's WeCom transfer (one query a page)."""
    case = get_case(session, viewer, case_id)
    target = aliased(Staff)
    latest = (select(func.max(WeComTransfer.id)).where(WeComTransfer.case_id == case.id,
                                                       WeComTransfer.customer_id == HandoverItem.customer_id)
              .correlate(HandoverItem).scalar_subquery())
    base = select(HandoverItem).where(HandoverItem.case_id == case.id)
    if status:
        base = base.where(HandoverItem.status == status)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    stmt = (base.add_columns(Customer, target.display_name, Pool.name, WeComTransfer)
            .join(Customer, Customer.id == HandoverItem.customer_id)
            .outerjoin(target, target.id == HandoverItem.to_staff_id)
            .outerjoin(Pool, Pool.id == HandoverItem.to_pool_id)
            .outerjoin(WeComTransfer, WeComTransfer.id == latest)
            .order_by(HandoverItem.customer_id).limit(limit).offset(offset))
    return [CaseRow(i, c, s, p, t) for i, c, s, p, t in session.execute(stmt)], total


def case_counts(session: Session, case_id: int) -> dict[str, int]:
    rows = session.execute(select(HandoverItem.status, func.count()).where(HandoverItem.case_id == case_id)
                           .group_by(HandoverItem.status))
    counts = {s.value: 0 for s in ItemStatus}
    counts.update({status: n for status, n in rows})
    transfers = session.execute(select(WeComTransfer.status, func.count()).where(WeComTransfer.case_id == case_id)
                                .group_by(WeComTransfer.status))
    counts.update({f"transfer_{status}": n for status, n in transfers})
    return counts


def open_work_items(session: Session, staff_id: int) -> list[Any]:
    """The person's open tasks and visits."""
    items: list[Any] = []
    for module in WORK_MODULES:
        items.extend(module.open_items_for(session, staff_id))
    return items


def reassign_work_items(session: Session, from_staff_id: int, mapping: dict[int, int]) -> list[Any]:
    return [module.reassign_items(session, from_staff_id, mapping) for module in WORK_MODULES]


# --- the plan ------------------------------------------------------------------------------------------

MODES = ("successor", "team", "pool")


@dataclass(frozen=True)
class Target:
    staff_id: int | None = None
    pool_id: int | None = None

    @classmethod
    def parse(cls, value: str) -> Target:
        """'staff:12' or 'pool:3' (the console's per-customer select)."""
        kind, _, raw = value.partition(":")
        try:
            ident = int(raw)
        except ValueError as exc:
            raise HandoverInvalid(f"无法识别的指定：{value}") from exc
        if kind == "staff":
            return cls(staff_id=ident)
        if kind == "pool":
            return cls(pool_id=ident)
        raise HandoverInvalid(f"无法识别的指定：{value}")


@dataclass
class Plan:
    """Where the case's customers go. ``overrides`` (customer id → target) win over the mode."""

    mode: str
    to_staff_id: int | None = None
    department_id: int | None = None
    pool_id: int | None = None
    overrides: dict[int, Target] = field(default_factory=dict)
    allow_over_capacity: bool = False


@dataclass
class Assignment:
    groups: dict[Target, list[int]]
    staff: dict[int, Staff]
    pools: dict[int, Pool]


def _load_targets(session: Session, viewer: Viewer, case: HandoverCase, staff_ids: set[int],
                  pool_ids: set[int]) -> tuple[dict[int, Staff], dict[int, Pool]]:
    """Lock and check every successor and pool: any refusal refuses the whole plan."""
    staff: dict[int, Staff] = {}
    if staff_ids:
        rows = session.scalars(select(Staff).where(Staff.id.in_(sorted(staff_ids))).order_by(Staff.id)
                               .with_for_update())
        staff = {s.id: s for s in rows}
    problems = []
    for sid in sorted(staff_ids):
        person = staff.get(sid)
        if person is None or not scope.can_see_owner(session, viewer, sid):
            problems.append(f"接收人 #{sid} 不存在或不在您的数据范围内")
        elif sid == case.from_staff_id:
            problems.append(f"不能交接给{person.display_name}本人")
        elif person.status != StaffStatus.ACTIVE:
            problems.append(f"接收人{person.display_name}已离职")
    pools: dict[int, Pool] = {}
    if pool_ids:
        pools = {p.id: p for p in session.scalars(
            select(Pool).where(Pool.id.in_(sorted(pool_ids)), customers.pool_visible_clause(viewer)))}
    problems += [f"公海 #{pid} 不存在或不在您的数据范围内" for pid in sorted(pool_ids) if pid not in pools]
    if problems:
        raise HandoverRefused("交接无法执行，未做任何改动：" + "；".join(problems), problems=problems)
    return staff, pools


def current_loads(session: Session, staff_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(staff_ids))
    loads = dict.fromkeys(ids, 0)
    if ids:
        loads.update(session.execute(select(Customer.owner_id, func.count()).where(
            Customer.owner_id.in_(ids), Customer.status == CustomerStatus.OWNED).group_by(Customer.owner_id)).all())
    return loads


def team_candidates(session: Session, viewer: Viewer, department_id: int, exclude_staff_id: int) -> list[Staff]:
    """Active salespeople of the department and its sub-departments, inside the viewer's scope."""
    dept = session.get(Department, department_id)
    if dept is None or not (viewer.scope == "all" or dept.path.startswith(viewer.department_path)):
        raise HandoverRefused("团队不存在或不在您的数据范围内")
    return list(session.scalars(
        select(Staff).join(Department, Department.id == Staff.department_id)
        .where(Department.path.startswith(dept.path, autoescape=True), Staff.role == Role.SALES,
               Staff.status == StaffStatus.ACTIVE, Staff.id != exclude_staff_id, scope.staff_filter(viewer))
        .order_by(Staff.id)))


def assign(session: Session, viewer: Viewer, case: HandoverCase, customer_ids: Sequence[int],
           plan: Plan) -> Assignment:
    """Decide a target for every customer id (in memory; nothing written). Refuses as a whole."""
    if plan.mode not in MODES:
        raise HandoverInvalid("请选择交接方式：交给一位接收人、团队内平均分配或退回公海", field="mode")
    ids = list(customer_ids)
    overrides = {cid: t for cid, t in plan.overrides.items() if cid in set(ids)}
    rest = [cid for cid in ids if cid not in overrides]
    staff_ids = {t.staff_id for t in overrides.values() if t.staff_id}
    pool_ids = {t.pool_id for t in overrides.values() if t.pool_id}
    team: list[Staff] = []
    if plan.mode == "successor":
        if not plan.to_staff_id:
            raise HandoverInvalid("请选择接收人", field="to_staff_id")
        staff_ids.add(plan.to_staff_id)
    elif plan.mode == "team":
        if not plan.department_id:
            raise HandoverInvalid("请选择团队", field="department_id")
        team = team_candidates(session, viewer, plan.department_id, case.from_staff_id)
        if not team and rest:
            raise HandoverRefused("该团队没有可接收客户的在职销售，未做任何改动")
        staff_ids.update(s.id for s in team)
    else:
        if plan.pool_id is None:
            plan.pool_id = customers.default_pool(session).id
        pool_ids.add(plan.pool_id)
    staff, pools = _load_targets(session, viewer, case, staff_ids, pool_ids)

    groups: dict[Target, list[int]] = {}
    for cid, target in overrides.items():
        groups.setdefault(target, []).append(cid)
    loads = current_loads(session, staff)
    for target, members in groups.items():
        if target.staff_id:
            loads[target.staff_id] += len(members)
    if rest and plan.mode == "successor":
        groups.setdefault(Target(staff_id=plan.to_staff_id), []).extend(rest)
        loads[plan.to_staff_id] += len(rest)  # type: ignore[index]
    elif rest and plan.mode == "pool":
        groups.setdefault(Target(pool_id=plan.pool_id), []).extend(rest)
    elif rest:
        _spread(groups, rest, team, loads, plan.allow_over_capacity)
    if not plan.allow_over_capacity:
        over = [f"{staff[sid].display_name}（容量 {staff[sid].capacity}，交接后 {load}）"
                for sid, load in sorted(loads.items()) if sid in staff and load > staff[sid].capacity
                and any(t.staff_id == sid for t in groups)]
        if over:
            raise HandoverRefused("接收人客户数将超过容量，未做任何改动：" + "、".join(over)
                                  + "。可调整方案，或勾选「允许超出容量」", over_capacity=over)
    return Assignment(groups, staff, pools)


def _spread(groups: dict[Target, list[int]], customer_ids: list[int], team: list[Staff], loads: dict[int, int],
            allow_over_capacity: bool) -> None:
    """Evenly across the team: each customer to the member with the lowest current load (ties by id),
    skipping members at capacity unless allowed; refuses when the team cannot hold them all."""
    if not allow_over_capacity:
        room = sum(max(0, s.capacity - loads[s.id]) for s in team)
        if room < len(customer_ids):
            full = [s.display_name for s in team if loads[s.id] >= s.capacity]
            raise HandoverRefused(
                f"团队剩余容量不足：需要分配 {len(customer_ids)} 位客户，团队剩余容量 {room}"
                + (f"（已满：{'、'.join(full)}）" if full else "") + "。未做任何改动；可换团队、退回公海，或勾选「允许超出容量」",
                needed=len(customer_ids), room=room)
    capacity = {s.id: s.capacity for s in team}
    heap = [(loads[s.id], s.id) for s in team]
    heapq.heapify(heap)
    for cid in customer_ids:
        while True:
            load, sid = heapq.heappop(heap)
            if allow_over_capacity or load < capacity[sid]:
                break
        groups.setdefault(Target(staff_id=sid), []).append(cid)
        loads[sid] = load + 1
        heapq.heappush(heap, (load + 1, sid))


# --- WeCom transfers: the state machine --------------------------------------------------------------

TRANSITIONS: dict[str, frozenset[str]] = {
    TransferStatus.REQUESTED: frozenset({TransferStatus.WAITING, TransferStatus.TAKEN_OVER, TransferStatus.FAILED,
                                         TransferStatus.LIMIT_REACHED}),
    TransferStatus.WAITING: frozenset({TransferStatus.TAKEN_OVER, TransferStatus.REFUSED,
                                       TransferStatus.LIMIT_REACHED, TransferStatus.FAILED}),
    TransferStatus.TAKEN_OVER: frozenset(),
    TransferStatus.REFUSED: frozenset(),
    TransferStatus.LIMIT_REACHED: frozenset(),
    TransferStatus.FAILED: frozenset(),
}

_RESULT_SUMMARY = {
    "waiting": "企业微信已受理转接，24 小时后自动接替", "taken_over": "企业微信客户已由新负责人接替",
    "refused": "客户拒绝了企业微信转接，仍在原负责人名下", "limit_reached": "接替人企业微信客户数已达上限，转接失败",
    "failed": "企业微信转接失败",
}


def in_service_transfers_in_window(session: Session, customer_ids: Sequence[int],
                                   at: datetime | None = None) -> dict[int, int]:
    """In-service transfers per customer in the last 90 days. Every row counts except ``failed``
    (WeCom refused the call, so no transfer started)."""
    since = (at or clock.now()) - IN_SERVICE_WINDOW
    counts: dict[int, int] = {}
    for part in chunks(list(customer_ids)):
        counts.update(session.execute(
            select(WeComTransfer.customer_id, func.count()).where(
                WeComTransfer.customer_id.in_(part), WeComTransfer.kind == TransferKind.IN_SERVICE,
                WeComTransfer.status != TransferStatus.FAILED, WeComTransfer.requested_at >= since)
            .group_by(WeComTransfer.customer_id)).all())
    return counts


def over_in_service_limit(session: Session, customer_ids: Sequence[int], at: datetime | None = None) -> set[int]:
    return {cid for cid, n in in_service_transfers_in_window(session, customer_ids, at).items()
            if n >= IN_SERVICE_LIMIT}


def _find_transfer(session: Session, ref: int | tuple[str, str]) -> WeComTransfer:
    if isinstance(ref, int):
        stmt = select(WeComTransfer).where(WeComTransfer.id == ref)
    else:
        external_userid, takeover_userid = ref
        stmt = (select(WeComTransfer).where(WeComTransfer.external_userid == external_userid,
                                            WeComTransfer.takeover_userid == takeover_userid)
                .order_by(WeComTransfer.status.in_(ACTIVE_TRANSFER_STATUSES).desc(), WeComTransfer.id.desc())
                .limit(1))
    transfer = session.scalar(stmt.with_for_update())
    if transfer is None:
        raise TransferNotFound()
    return transfer


def apply_transfer_result(session: Session, transfer: int | tuple[str, str], status: str, errcode: int | None = None,
                          at: datetime | None = None, *, reason: str | None = None,
                          actor: audit.Actor | None = None) -> WeComTransfer:
    """The bot reports what WeCom did with a transfer (by id, or by (external_userid, takeover_userid)).

    Transitions are validated against :data:`TRANSITIONS`; the same status reported again is a no-op
    (WeCom re-delivers). Each change is one :class:`WeComTransferEvent` row (who, when, why), and
    the customer's timeline says what happened.
    """
    try:
        target = TransferStatus(status)
    except ValueError as exc:
        raise IllegalTransferTransition(f"未知的转接状态：{status}") from exc
    row = _find_transfer(session, transfer)
    if row.status == target:
        return row
    if target not in TRANSITIONS[TransferStatus(row.status)]:
        raise IllegalTransferTransition(
            f"企业微信转接状态不能从「{row.status}」变为「{target.value}」", from_status=row.status, to_status=target.value)
    at = at or clock.now()
    actor = actor or audit.current_actor()
    result = session.execute(update(WeComTransfer).where(WeComTransfer.id == row.id, WeComTransfer.status == row.status)
                             .values(status=target.value, errcode=errcode, updated_at=at)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise IllegalTransferTransition("转接状态已被同时修改，请重试")
    previous = row.status
    session.add(WeComTransferEvent(transfer_id=row.id, from_status=previous, to_status=target.value, at=at,
                                   actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label[:120],
                                   reason=(reason or None) and reason[:200], errcode=errcode))
    session.flush()
    session.refresh(row)
    summary = _RESULT_SUMMARY[target.value] + (f"（错误码 {errcode}）" if errcode else "")
    customers.record_event(session, row.customer_id, f"wecom.transfer.{target.value}", summary, ref_type="wecom_transfer",
                           ref_id=row.id, at=at)
    return row


def transfer_history(session: Session, transfer_id: int) -> list[WeComTransferEvent]:
    return list(session.scalars(select(WeComTransferEvent).where(WeComTransferEvent.transfer_id == transfer_id)
                                .order_by(WeComTransferEvent.at, WeComTransferEvent.id)))


def active_transfer_clause(customer_id_column: Any) -> Any:
    """True where the customer already has a transfer in flight (one at a time, unique index)."""
    return select(WeComTransfer.id).where(WeComTransfer.customer_id == customer_id_column,
                                          WeComTransfer.status.in_(ACTIVE_TRANSFER_STATUSES)).exists()


def utc_literal(value: datetime) -> Any:
    return literal(value, type_=UTCDateTime())


__all__ = [
    "HANDOVER_ROLES", "IN_SERVICE_LIMIT", "MODES", "TRANSFER_TASK", "Assignment", "CaseRow", "Plan", "Target",
    "apply_transfer_result", "assign", "cancel_case", "case_counts", "case_rows", "current_loads",
    "ensure_may_hand_over", "get_case", "in_service_transfers_in_window", "list_cases", "open_departure_case",
    "open_in_service_case", "open_work_items", "over_in_service_limit", "reassign_work_items", "team_candidates",
    "transfer_history",
]
