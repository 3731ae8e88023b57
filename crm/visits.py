"""Visits (邀约上门): a customer invited by a salesperson, or booking from the mini-program, to come
to a branch. Schedule, reschedule (the old visit is kept as ``rescheduled`` and points to the new
one), cancel with a reason, mark arrived (stage → visited) or no-show; the inviter is reminded
``VISIT_REMINDER_BEFORE`` ahead, once.

Two overlapping scheduled visits of one customer are refused. The check runs under a lock of the
customer row (``SELECT … FOR UPDATE``; SQLite serialises writers), so two bookings racing each
other cannot both pass it.

Every function takes ``viewer``: a staff member acting within their data scope, or ``None`` for
a customer-initiated action (mini-program) whose channel has already authenticated the customer
and passes ``customer_id`` to prove the visit is theirs.

Downstream packages (referral: the visit bounty) learn of an arrival through the in-process hook list
:data:`ON_VISIT_ARRIVED` (``fn(session, visit_id)``), called inside mark_arrived's unit of work once
the visit has moved to arrived (the conditional update lets one caller win, so once per visit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import case, exists, or_, select, true, update
from sqlalchemy.orm import Session

from core import audit, clock
from crm import customers
from crm.exceptions import CustomerNotFound, DepartmentNotFound, StaffNotFound
from crm.models import (
    VISIT_STATUS_LABELS,
    Customer,
    Department,
    ReminderSent,
    Staff,
    StaffStatus,
    Stage,
    Visit,
    VisitCohandler,
    VisitStatus,
)
from crm.scope import Viewer
from crm.work_common import (
    CHUNK,
    ReassignResult,
    WorkItem,
    customer_label,
    insert_ignore,
    notify_many,
    workable_customer,
)
from crm.work_exceptions import VisitConflict, VisitNotFound, VisitStateError, WorkValidation

DEFAULT_DURATION = timedelta(hours=1)
VISIT_REMINDER_BEFORE = timedelta(hours=2)
MAX_AHEAD = timedelta(days=180)
# Stages a visit may still move forward to "visited" (an arrival never moves a customer backwards).
BEFORE_VISIT = (Stage.NEW, Stage.CONTACTED, Stage.INTENT)

# In-process hooks called by mark_arrived inside its unit of work, after the visit became arrived.
# Signature: fn(session, visit_id). A hook that raises rolls the arrival back with it.
ON_VISIT_ARRIVED: list[Callable[[Session, int], None]] = []


def _local(instant: datetime) -> str:
    return clock.ensure_aware(instant).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def _validate_time(scheduled_at: datetime, duration: timedelta) -> None:
    if scheduled_at.tzinfo is None:
        raise WorkValidation("预约时间缺少时区", field="scheduled_at")
    now = clock.now()
    if scheduled_at <= now:
        raise WorkValidation("预约时间必须晚于现在", field="scheduled_at")
    if scheduled_at > now + MAX_AHEAD:
        raise WorkValidation("只能预约 180 天以内的时间", field="scheduled_at")
    if not timedelta(minutes=15) <= duration <= timedelta(hours=8):
        raise WorkValidation("预约时长必须在 15 分钟到 8 小时之间", field="duration")


def _ensure_free(session: Session, customer_id: int, start: datetime, end: datetime,
                 exclude_id: int | None = None) -> None:
    stmt = select(Visit.id).where(Visit.customer_id == customer_id, Visit.status == VisitStatus.SCHEDULED,
                                  Visit.scheduled_at < end, Visit.ends_at > start)
    if exclude_id is not None:
        stmt = stmt.where(Visit.id != exclude_id)
    clash = session.scalar(stmt.limit(1))
    if clash is not None:
        raise VisitConflict(visit_id=clash)


def schedule_visit(session: Session, customer_id: int, scheduled_at: datetime, *, department_id: int,
                   viewer: Viewer | None = None, inviter_id: int | None = None, channel: str | None = None,
                   note: str | None = None, duration: timedelta = DEFAULT_DURATION) -> Visit:
    """Book a visit. Staff (``viewer``) book for customers they may work; the inviter defaults to the
    viewer. With no viewer (the customer books), the inviter is the customer's owner, if any, who is told."""
    _validate_time(scheduled_at, duration)
    note = (note or "").strip()[:500] or None
    if session.get(Department, department_id) is None:
        raise DepartmentNotFound("请选择接待的分部")
    if viewer is not None:
        customer = workable_customer(session, viewer, customer_id, for_update=True)
        inviter_id = inviter_id or viewer.staff_id
        channel = channel or "staff"
    else:
        customer = customers.get_customer(session, None, customer_id, for_update=True)
        inviter_id = inviter_id or customer.owner_id
        channel = channel or "miniprogram"
    customers.ensure_not_blacklisted(customer)
    if inviter_id is not None and session.get(Staff, inviter_id) is None:
        raise StaffNotFound()
    end = scheduled_at + duration
    _ensure_free(session, customer.id, scheduled_at, end)
    now = clock.now()
    visit = Visit(customer_id=customer.id, inviter_id=inviter_id, department_id=department_id,
                  scheduled_at=scheduled_at, ends_at=end, status=VisitStatus.SCHEDULED, channel=channel[:20],
                  note=note, created_at=now, updated_at=now)
    session.add(visit)
    session.flush()
    actor = viewer.staff_id if viewer else None
    audit.record(session, "visit.schedule", entity_type="visit", entity_id=visit.id,
                 after={"customer_id": customer.id, "scheduled_at": _local(scheduled_at), "channel": channel,
                        "department_id": department_id, "inviter_id": inviter_id})
    customers.record_event(session, customer.id, "visit", f"预约上门：{_local(scheduled_at)}"
                           + ("（客户自助预约）" if viewer is None else ""),
                           actor_staff_id=actor, ref_type="visit", ref_id=visit.id)
    if viewer is None and inviter_id is not None:
        label = customer_label(customer.name, customer.phone_masked, customer.id)
        notify_many(session, [(inviter_id, "visit.booked", f"客户预约上门：{label}",
                               f"预约时间 {_local(scheduled_at)}", customer.id)])
    return visit


def get_visit(session: Session, viewer: Viewer | None, visit_id: int, *, customer_id: int | None = None,
              for_update: bool = False) -> Visit:
    """A visit the viewer may see: its inviter or receptionist, anyone who may see the customer, or a
    manager whose scope covers the branch. With no viewer, ``customer_id`` must match."""
    stmt = select(Visit).where(Visit.id == visit_id)
    if for_update:
        stmt = stmt.with_for_update()
    visit = session.scalar(stmt)
    if visit is None:
        raise VisitNotFound()
    if viewer is None:
        if customer_id is None or visit.customer_id != customer_id:
            raise VisitNotFound()
        return visit
    if viewer.scope == "all" or viewer.staff_id in (visit.inviter_id, visit.reception_staff_id):
        return visit
    if viewer.scope == "department":
        path = session.scalar(select(Department.path).where(Department.id == visit.department_id))
        if path is not None and path.startswith(viewer.department_path):
            return visit
    try:
        customers.get_customer(session, viewer, visit.customer_id)
    except CustomerNotFound as exc:
        raise VisitNotFound() from exc
    return visit


def _transition(session: Session, visit: Visit, target: str, **values: object) -> None:
    """Move a scheduled visit on: a conditional update, so two people acting at once cannot both win."""
    changed = session.execute(update(Visit).where(Visit.id == visit.id, Visit.status == VisitStatus.SCHEDULED)
                              .values(status=target, updated_at=clock.now(), **values)
                              .execution_options(synchronize_session=False)).rowcount
    if not changed:
        session.refresh(visit)
        raise VisitStateError(f"该预约当前为「{VISIT_STATUS_LABELS.get(visit.status, visit.status)}」，不能再操作")
    session.refresh(visit)


def reschedule_visit(session: Session, viewer: Viewer | None, visit_id: int, scheduled_at: datetime, *,
                     reason: str | None = None, customer_id: int | None = None,
                     duration: timedelta | None = None) -> Visit:
    """Replace a scheduled visit by a new one at ``scheduled_at``; returns the new visit."""
    old = get_visit(session, viewer, visit_id, customer_id=customer_id)
    duration = duration or (old.ends_at - old.scheduled_at)
    _validate_time(scheduled_at, duration)
    customers.get_customer(session, None, old.customer_id, for_update=True)  # serialise bookings of the customer
    _ensure_free(session, old.customer_id, scheduled_at, scheduled_at + duration, exclude_id=old.id)
    previous = old.scheduled_at
    now = clock.now()
    new = Visit(customer_id=old.customer_id, inviter_id=old.inviter_id, department_id=old.department_id,
                scheduled_at=scheduled_at, ends_at=scheduled_at + duration, status=VisitStatus.SCHEDULED,
                channel=old.channel, reception_staff_id=old.reception_staff_id, note=old.note,
                created_at=now, updated_at=now)
    session.add(new)
    session.flush()
    reason = (reason or "").strip()[:200] or None
    _transition(session, old, VisitStatus.RESCHEDULED, rescheduled_to_id=new.id, cancel_reason=reason)
    for (staff_id,) in session.execute(select(VisitCohandler.staff_id).where(VisitCohandler.visit_id == old.id)):
        session.add(VisitCohandler(visit_id=new.id, staff_id=staff_id))
    session.flush()
    actor = viewer.staff_id if viewer else None
    audit.record(session, "visit.reschedule", entity_type="visit", entity_id=old.id,
                 before={"scheduled_at": _local(previous)},
                 after={"scheduled_at": _local(scheduled_at), "new_visit_id": new.id, "reason": reason})
    customers.record_event(session, old.customer_id, "visit",
                           f"上门改期：{_local(previous)} → {_local(scheduled_at)}" + (f"（{reason}）" if reason else ""),
                           actor_staff_id=actor, ref_type="visit", ref_id=new.id)
    return new


def cancel_visit(session: Session, viewer: Viewer | None, visit_id: int, reason: str, *,
                 customer_id: int | None = None) -> Visit:
    reason = (reason or "").strip()
    if not reason:
        raise WorkValidation("请填写取消原因", field="reason")
    visit = get_visit(session, viewer, visit_id, customer_id=customer_id)
    _transition(session, visit, VisitStatus.CANCELLED, cancel_reason=reason[:200])
    audit.record(session, "visit.cancel", entity_type="visit", entity_id=visit.id, before={"status": "scheduled"},
                 after={"status": "cancelled", "reason": reason})
    customers.record_event(session, visit.customer_id, "visit", f"取消上门预约（{_local(visit.scheduled_at)}）：{reason}",
                           actor_staff_id=viewer.staff_id if viewer else None, ref_type="visit", ref_id=visit.id)
    return visit


def mark_arrived(session: Session, viewer: Viewer, visit_id: int, *, reception_staff_id: int | None = None,
                 cohandler_ids: Iterable[int] = ()) -> Visit:
    """The customer came: record who received them (default: the viewer) and move the stage to visited."""
    visit = get_visit(session, viewer, visit_id)
    reception_staff_id = reception_staff_id or visit.reception_staff_id or viewer.staff_id
    helpers = [s for s in dict.fromkeys(cohandler_ids) if s != reception_staff_id]
    wanted = {reception_staff_id, *helpers}
    found = set(session.scalars(select(Staff.id).where(Staff.id.in_(wanted), Staff.status == StaffStatus.ACTIVE)))
    if found != wanted:
        raise StaffNotFound("接待人员不存在或已离职")
    _transition(session, visit, VisitStatus.ARRIVED, arrived_at=clock.now(), reception_staff_id=reception_staff_id)
    existing = set(session.scalars(select(VisitCohandler.staff_id).where(VisitCohandler.visit_id == visit.id)))
    for staff_id in helpers:
        if staff_id not in existing:
            session.add(VisitCohandler(visit_id=visit.id, staff_id=staff_id))
    session.flush()
    audit.record(session, "visit.arrived", entity_type="visit", entity_id=visit.id, before={"status": "scheduled"},
                 after={"status": "arrived", "reception_staff_id": reception_staff_id, "cohandlers": len(helpers)})
    customers.record_event(session, visit.customer_id, "visit", "客户已到店", actor_staff_id=viewer.staff_id,
                           ref_type="visit", ref_id=visit.id)
    customer = session.get(Customer, visit.customer_id)
    if customer is not None and customer.stage in BEFORE_VISIT:
        customers.set_stage(session, customer.id, Stage.VISITED, actor_staff_id=viewer.staff_id)
    for hook in list(ON_VISIT_ARRIVED):
        hook(session, visit.id)
    return visit


def mark_no_show(session: Session, viewer: Viewer, visit_id: int) -> Visit:
    visit = get_visit(session, viewer, visit_id)
    if visit.scheduled_at > clock.now():
        raise VisitStateError("预约时间未到，不能标记为未到店")
    _transition(session, visit, VisitStatus.NO_SHOW)
    audit.record(session, "visit.no_show", entity_type="visit", entity_id=visit.id, before={"status": "scheduled"},
                 after={"status": "no_show"})
    customers.record_event(session, visit.customer_id, "visit", f"客户未按约到店（{_local(visit.scheduled_at)}）",
                           actor_staff_id=viewer.staff_id, ref_type="visit", ref_id=visit.id)
    return visit


def visible_visits_clause(viewer: Viewer):  # noqa: ANN201 - a SQL clause
    """For a query joining Visit and Customer."""
    if viewer.scope == "all":
        return true()
    branch = exists().where(Department.id == Visit.department_id,
                            Department.path.startswith(viewer.department_path, autoescape=True))
    clauses = [Visit.inviter_id == viewer.staff_id, Visit.reception_staff_id == viewer.staff_id,
               customers.visible_clause(viewer)]
    if viewer.scope == "department":
        clauses.append(branch)
    return or_(*clauses)


def list_visits(session: Session, viewer: Viewer, start: date, end: date, *, status: str | None = None,
                limit: int = 500) -> list[tuple[Visit, Customer]]:
    """Visits on business dates [start, end] the viewer may see, with their customers."""
    lo, hi = clock.start_of_business_day(start), clock.start_of_business_day(end + timedelta(days=1))
    stmt = (select(Visit, Customer).join(Customer, Customer.id == Visit.customer_id)
            .where(Visit.scheduled_at >= lo, Visit.scheduled_at < hi, visible_visits_clause(viewer)))
    if status:
        stmt = stmt.where(Visit.status == status)
    return [tuple(r) for r in session.execute(stmt.order_by(Visit.scheduled_at, Visit.id).limit(limit))]


def send_visit_reminders(session: Session) -> int:
    """Tell the inviter (or, for a self-booked visit, the owner) ``VISIT_REMINDER_BEFORE`` ahead, once."""
    now = clock.now()
    rows = session.execute(
        select(Visit.id, Visit.scheduled_at, Visit.inviter_id, Customer.owner_id, Customer.id, Customer.name,
               Customer.phone_masked)
        .join(Customer, Customer.id == Visit.customer_id)
        .where(Visit.status == VisitStatus.SCHEDULED, Visit.scheduled_at > now,
               Visit.scheduled_at <= now + VISIT_REMINDER_BEFORE)).all()
    candidates = [(vid, at, inviter or owner, cid, customer_label(name, phone, cid))
                  for vid, at, inviter, owner, cid, name, phone in rows if (inviter or owner)]
    marks = [{"staff_id": sid, "item_type": "visit", "item_id": vid, "remind_date": clock.business_date(at),
              "sent_at": now} for vid, at, sid, _, _ in candidates]
    new = {r.item_id for r in insert_ignore(session, ReminderSent, marks,
                                            ("staff_id", "item_type", "item_id", "remind_date"),
                                            (ReminderSent.item_id,))}
    return notify_many(session, [
        (sid, "reminder", f"上门提醒：{label}", f"客户预约 {_local(at)} 到店，请做好接待准备", cid)
        for vid, at, sid, cid, label in candidates if vid in new])


def upcoming_for_staff(session: Session, staff_id: int, day: date) -> list[Visit]:
    lo, hi = clock.start_of_business_day(day), clock.start_of_business_day(day + timedelta(days=1))
    return list(session.scalars(select(Visit).where(
        or_(Visit.inviter_id == staff_id, Visit.reception_staff_id == staff_id),
        Visit.status == VisitStatus.SCHEDULED, Visit.scheduled_at >= lo, Visit.scheduled_at < hi)
        .order_by(Visit.scheduled_at)))




# --- handover support ----------------------------------------------------------------------------
# crm.handover calls open_items_for / reassign_items of this module (visits) and of crm.followups (tasks).


def open_items_for(session: Session, staff_id: int) -> list[WorkItem]:
    """Scheduled visits the person invited or is to receive."""
    rows = session.execute(
        select(Visit.id, Visit.customer_id, Visit.scheduled_at, Customer.name, Customer.phone_masked)
        .join(Customer, Customer.id == Visit.customer_id)
        .where(or_(Visit.inviter_id == staff_id, Visit.reception_staff_id == staff_id),
               Visit.status == VisitStatus.SCHEDULED).order_by(Visit.scheduled_at, Visit.id))
    return [WorkItem("visit", vid, cid, f"上门：{customer_label(name, phone, cid)} {_local(at)}", at)
            for vid, cid, at, name, phone in rows]


def reassign_items(session: Session, from_staff_id: int, mapping: dict[int, int]) -> ReassignResult:
    """Scheduled visits of the mapped customers (customer id → new staff id) that the person invited or
    was to receive pass to the new staff member: two statements per chunk."""
    moved = 0
    items = list(mapping.items())
    now = clock.now()
    for start in range(0, len(items), CHUNK):
        part = dict(items[start:start + CHUNK])
        for column in (Visit.inviter_id, Visit.reception_staff_id):
            moved += session.execute(
                update(Visit).where(column == from_staff_id, Visit.status == VisitStatus.SCHEDULED,
                                    Visit.customer_id.in_(list(part)))
                .values({column: case(part, value=Visit.customer_id), Visit.updated_at: now})
                .execution_options(synchronize_session=False)).rowcount
    session.expire_all()
    if moved:
        audit.record(session, "visit.reassign", entity_type="staff", entity_id=from_staff_id,
                     after={"customers": len(mapping), "visits": moved})
    return ReassignResult("visit", moved)
