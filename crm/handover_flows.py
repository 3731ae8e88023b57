"""The handover flows: start a departure (mark departed, open the case) and execute a case.

Execution is one transaction and set-based, whatever the number of customers:

1. lock the case (open only) and the departing person's customers that are still theirs;
2. items whose customer is no longer theirs (claimed, released, moved meanwhile) are skipped and
   reported; in-service customers over WeCom's 2-per-90-days limit are skipped and reported;
3. the plan (:func:`crm.handover.assign`) gives every remaining customer a successor or a pool,
   refusing as a whole (a successor who departed, a pool out of scope, capacity): nothing written;
4. the targets are written onto the items (one UPDATE per target), then ``UPDATE customer … FROM
   handover_item`` moves them all, conditional on ``owner_id = from_staff`` (the row count must match);
5. owner history, timeline events, WeCom transfers (``requested``) and their first state events
   are ``INSERT … SELECT`` statements; one audit entry for the case with the counts; one
   notification per successor; ``bot.transfer_customers`` enqueued (after commit) when the bot exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, insert, literal, null, select, update
from sqlalchemy.orm import Session, aliased

from core import audit, clock, outbox, tasks
from crm import handover, notify
from crm.handover import Plan, Target, chunks, utc_literal
from crm.handover_exceptions import HandoverCaseClosed, HandoverRefused
from crm.models import (
    CaseStatus,
    Customer,
    CustomerEvent,
    CustomerStatus,
    HandoverCase,
    HandoverItem,
    HandoverKind,
    ItemStatus,
    OwnerChange,
    Pool,
    Staff,
    TransferKind,
    TransferStatus,
    WeComTransfer,
    WeComTransferEvent,
)
from crm.scope import Viewer


def start_departure(session: Session, viewer: Viewer, staff_id: int, note: str | None = None) -> HandoverCase:
    """The console's 离职 action: check the manager's scope, mark the person departed, open the case."""
    handover.ensure_may_hand_over(session, viewer, staff_id)
    return handover.open_departure_case(session, staff_id, opened_by=viewer.staff_id, source="console", note=note)


@dataclass
class ExecutionResult:
    case: HandoverCase
    moved: int = 0
    skipped_not_owned: int = 0
    skipped_wecom_limit: int = 0
    to_staff: dict[int, int] = field(default_factory=dict)  # successor id -> customers received
    to_pool: dict[int, int] = field(default_factory=dict)
    transfers_requested: int = 0
    wecom_not_requested: int = 0  # WeCom contacts moved whose transfer could not be requested (see summary)
    transfer_task_enqueued: bool = False
    work_items_reassigned: dict[str, int] | None = None  # kind -> moved; None: follow-up/visit modules absent

    def summary(self) -> dict[str, Any]:
        return {
            "moved": self.moved, "skipped_not_owned": self.skipped_not_owned,
            "skipped_wecom_limit": self.skipped_wecom_limit,
            "to_staff": {str(k): v for k, v in self.to_staff.items()},
            "to_pool": {str(k): v for k, v in self.to_pool.items()},
            "transfers_requested": self.transfers_requested, "wecom_not_requested": self.wecom_not_requested,
            "transfer_task_enqueued": self.transfer_task_enqueued,
            "work_items_reassigned": self.work_items_reassigned,
        }


def _pending(case_id: int) -> Any:
    return (HandoverItem.case_id == case_id) & (HandoverItem.status == ItemStatus.PENDING)


def execute_case(session: Session, viewer: Viewer, case_id: int, plan: Plan) -> ExecutionResult:
    """Carry out a case as a whole (see the module docstring). Services flush; the caller commits."""
    case = handover.get_case(session, viewer, case_id, for_update=True)
    from_staff = handover.ensure_may_hand_over(session, viewer, case.from_staff_id)
    if case.status != CaseStatus.OPEN:
        raise HandoverCaseClosed()
    now = clock.now()
    result = ExecutionResult(case)
    if case.kind == HandoverKind.DEPARTURE:
        handover._add_owned_items(session, case)  # customers that reached them after the case opened

    # 1. Lock the customers that are still the departing person's (nobody claims them from now on).
    still_owned = session.execute(
        select(Customer.id, Customer.wecom_external_userid)
        .join(HandoverItem, (HandoverItem.customer_id == Customer.id) & _pending(case.id))
        .where(Customer.owner_id == from_staff.id, Customer.status == CustomerStatus.OWNED)
        .order_by(Customer.id).with_for_update(of=Customer)).all()
    ids = [row.id for row in still_owned]

    # 2. Skip the rest, with the reason (usually few: computed in memory, written by id).
    pending_ids = set(session.scalars(select(HandoverItem.customer_id).where(_pending(case.id))))
    not_owned = sorted(pending_ids.difference(ids))
    _skip(session, case.id, not_owned, "not_owned", now)
    result.skipped_not_owned = len(not_owned)
    if case.kind == HandoverKind.IN_SERVICE:
        wecom_ids = [row.id for row in still_owned if row.wecom_external_userid]
        limited = handover.over_in_service_limit(session, wecom_ids, now)
        _skip(session, case.id, sorted(limited), "wecom_limit", now)
        result.skipped_wecom_limit = len(limited)
        ids = [i for i in ids if i not in limited]

    # 3. The plan (refuses as a whole before anything is moved).
    plan_result = handover.assign(session, viewer, case, ids, plan)

    # 4. Targets onto the items (marked moved: a failure below rolls everything back), the largest
    # group without an id list; then one conditional UPDATE of the customers.
    groups = sorted(plan_result.groups.items(), key=lambda kv: len(kv[1]))
    for n, (target, members) in enumerate(groups):
        stmt = update(HandoverItem).where(_pending(case.id))
        if n < len(groups) - 1:
            for part in chunks(sorted(members)):
                session.execute(stmt.where(HandoverItem.customer_id.in_(part))
                                .values(to_staff_id=target.staff_id, to_pool_id=target.pool_id, decided_at=now,
                                        status=ItemStatus.MOVED)
                                .execution_options(synchronize_session=False))
        else:  # every pending item left is this group's (the rest were skipped above)
            session.execute(stmt.values(to_staff_id=target.staff_id, to_pool_id=target.pool_id, decided_at=now,
                                        status=ItemStatus.MOVED)
                            .execution_options(synchronize_session=False))
        if target.staff_id:
            result.to_staff[target.staff_id] = result.to_staff.get(target.staff_id, 0) + len(members)
        else:
            result.to_pool[target.pool_id] = result.to_pool.get(target.pool_id, 0) + len(members)  # type: ignore[index]
    item = HandoverItem
    to_owner = item.to_staff_id.isnot(None)
    moved = session.execute(
        update(Customer)
        .where(item.case_id == case.id, item.status == ItemStatus.MOVED, item.customer_id == Customer.id,
               Customer.owner_id == from_staff.id, Customer.status == CustomerStatus.OWNED)
        .values(owner_id=item.to_staff_id, pool_id=item.to_pool_id,
                status=sql_case((to_owner, CustomerStatus.OWNED.value), else_=CustomerStatus.POOL.value),
                previous_owner_id=from_staff.id,
                assigned_at=sql_case((to_owner, utc_literal(now)), else_=Customer.assigned_at),
                released_at=sql_case((to_owner, Customer.released_at), else_=utc_literal(now)),
                updated_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0
    if moved != len(ids):
        raise HandoverRefused("客户归属在执行中发生变化，未做任何改动，请重试")
    result.moved = moved
    reason = "handover" if case.kind == HandoverKind.DEPARTURE else "transfer"

    # 5. History, timeline, WeCom transfers, in bulk.
    moving = select(item).where(item.case_id == case.id, item.status == ItemStatus.MOVED).subquery()
    actor_id = viewer.staff_id
    session.execute(insert(OwnerChange.__table__).from_select(
        ["customer_id", "from_owner_id", "to_owner_id", "from_pool_id", "to_pool_id", "reason", "note",
         "by_staff_id", "at"],
        select(moving.c.customer_id, literal(from_staff.id), moving.c.to_staff_id, null(), moving.c.to_pool_id,
               literal(reason), literal(f"交接单 #{case.id}"), literal(actor_id), utc_literal(now))))
    target_staff = aliased(Staff)
    label = "离职交接" if case.kind == HandoverKind.DEPARTURE else "在职转接"
    destination = func.coalesce(target_staff.display_name, literal("公海「") + Pool.name + literal("」"))
    session.execute(insert(CustomerEvent.__table__).from_select(
        ["customer_id", "at", "kind", "summary", "actor_staff_id", "ref_type", "ref_id"],
        select(moving.c.customer_id, utc_literal(now), literal(f"owner.{reason}"),
               literal(f"{label}：由{from_staff.display_name}转给") + destination, literal(actor_id),
               literal("handover_case"), literal(str(case.id)))
        .select_from(moving).outerjoin(target_staff, target_staff.id == moving.c.to_staff_id)
        .outerjoin(Pool, Pool.id == moving.c.to_pool_id)))
    result.transfers_requested = _request_transfers(session, case, from_staff, moving, target_staff, now, viewer)
    wecom_moved = session.scalar(
        select(func.count()).select_from(moving).join(Customer, Customer.id == moving.c.customer_id)
        .where(Customer.wecom_external_userid.isnot(None))) or 0
    result.wecom_not_requested = wecom_moved - result.transfers_requested

    # 6. Open tasks and visits follow their customers.
    # Only customers with open work are passed on (the mapping is an id → id CASE in their SQL).
    with_work = {w.customer_id for w in handover.open_work_items(session, from_staff.id) if w.customer_id}
    mapping = {cid: t.staff_id for t, members in plan_result.groups.items() if t.staff_id
               for cid in members if cid in with_work}
    result.work_items_reassigned = {
        getattr(r, "kind", "work"): getattr(r, "moved", 0)
        for r in handover.reassign_work_items(session, from_staff.id, mapping)} if mapping else {}

    # 7. Close the case, audit, notify, enqueue.
    closed = session.execute(update(HandoverCase).where(HandoverCase.id == case.id,
                                                        HandoverCase.status == CaseStatus.OPEN)
                             .values(status=CaseStatus.DONE, closed_at=now, executed_by=actor_id)
                             .execution_options(synchronize_session=False)).rowcount
    if closed != 1:
        raise HandoverCaseClosed()
    if result.transfers_requested and tasks.is_registered(handover.TRANSFER_TASK):
        outbox.enqueue(session, handover.TRANSFER_TASK, case.id)
        result.transfer_task_enqueued = True
    summary = {"mode": plan.mode, **result.summary()}
    session.execute(update(HandoverCase).where(HandoverCase.id == case.id).values(summary=summary)
                    .execution_options(synchronize_session=False))
    audit.record(session, "handover.execute", entity_type="handover_case", entity_id=case.id,
                 before={"status": "open"},
                 after={"status": "done", "mode": plan.mode, "moved": result.moved,
                        "skipped_not_owned": result.skipped_not_owned,
                        "skipped_wecom_limit": result.skipped_wecom_limit,
                        "successors": len(result.to_staff), "to_pool": sum(result.to_pool.values()),
                        "transfers_requested": result.transfers_requested})
    for staff_id, count in sorted(result.to_staff.items()):
        notify.notify(session, staff_id, "handover", "客户交接",
                      f"{from_staff.display_name}的 {count} 位客户已{label}给您（交接单 #{case.id}），请及时跟进。")
    _expire(session)
    session.refresh(case)
    return result


def _request_transfers(session: Session, case: HandoverCase, from_staff: Staff, moving: Any, target_staff: Any,
                       now: Any, viewer: Viewer) -> int:
    """WeComTransfer rows (requested) for moved WeCom contacts with a successor on WeCom, and their
    first state event. Skipped: moves to a pool, people without a WeCom account, a transfer in flight."""
    if not from_staff.wecom_userid:
        return 0
    kind = TransferKind.RESIGNED if case.kind == HandoverKind.DEPARTURE else TransferKind.IN_SERVICE
    batch = f"case-{case.id}"
    session.execute(insert(WeComTransfer.__table__).from_select(
        ["case_id", "customer_id", "external_userid", "handover_userid", "takeover_userid", "kind", "status",
         "batch_id", "requested_at", "updated_at"],
        select(literal(case.id), Customer.id, Customer.wecom_external_userid, literal(from_staff.wecom_userid),
               target_staff.wecom_userid, literal(kind.value), literal(TransferStatus.REQUESTED.value),
               literal(batch), utc_literal(now), utc_literal(now))
        .select_from(moving).join(Customer, Customer.id == moving.c.customer_id)
        .join(target_staff, target_staff.id == moving.c.to_staff_id)
        .where(Customer.wecom_external_userid.isnot(None), target_staff.wecom_userid.isnot(None),
               ~handover.active_transfer_clause(Customer.id))
        .order_by(Customer.id)))
    # (INSERT … SELECT's rowcount is not reliable on every driver: count what this batch wrote.)
    inserted = session.scalar(select(func.count()).select_from(WeComTransfer).where(
        WeComTransfer.case_id == case.id, WeComTransfer.batch_id == batch)) or 0
    if inserted:
        actor = audit.current_actor()
        if actor.kind == "system":  # called outside a request: the executing manager acted
            actor = audit.Actor("staff", viewer.staff_id, viewer.display_name)
        session.execute(insert(WeComTransferEvent.__table__).from_select(
            ["transfer_id", "from_status", "to_status", "at", "actor_kind", "actor_id", "actor_label", "reason"],
            select(WeComTransfer.id, null(), literal(TransferStatus.REQUESTED.value), utc_literal(now),
                   literal(actor.kind), literal(actor.id),
                   literal(actor.label[:120]), literal(f"交接单 #{case.id} 执行"))
            .where(WeComTransfer.case_id == case.id, WeComTransfer.batch_id == batch,
                   WeComTransfer.status == TransferStatus.REQUESTED)))
    return inserted


def _skip(session: Session, case_id: int, customer_ids: list[int], reason: str, now: Any) -> None:
    for part in chunks(customer_ids):
        session.execute(update(HandoverItem).where(_pending(case_id), HandoverItem.customer_id.in_(part))
                        .values(status=ItemStatus.SKIPPED, skip_reason=reason, decided_at=now)
                        .execution_options(synchronize_session=False))


def _expire(session: Session) -> None:
    """Bulk statements bypass the identity map: expire what they changed."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer | HandoverItem | HandoverCase | WeComTransfer):
            session.expire(obj)


__all__ = ["ExecutionResult", "Plan", "Target", "execute_case", "start_departure"]
