"""Follow-ups (跟进), the salesperson's to-do list (work tasks), co-handlers (谈单协作) and reminders.

Logging a follow-up moves the customer's follow-up dates, may move the stage (new → contacted, or
→ intent when the customer showed interest), writes the timeline and the audit log. Reminders are
due-today and overdue items in Asia/Shanghai dates; the periodic job ``crm.followup_reminders``
notifies each person once per item per day (a unique marker row decides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from crm import customers, scope
from crm.exceptions import StaffNotFound
from crm.models import (
    FOLLOWUP_KIND_LABELS,
    FOLLOWUP_OUTCOMES,
    Customer,
    CustomerCollaborator,
    CustomerStatus,
    FollowUp,
    FollowUpKind,
    ReminderSent,
    Staff,
    StaffStatus,
    Stage,
    TaskStatus,
    WorkTask,
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
from crm.work_exceptions import CollaboratorExists, TaskNotFound, WorkForbidden, WorkValidation

NOT_REACHED = "未接通"
INTERESTED = ("有意向", "已预约")
REMINDER_LEAD = timedelta(minutes=30)  # the job reminds of items due within this lead time

# --- follow-ups ----------------------------------------------------------------------------------


def log_followup(session: Session, viewer: Viewer, customer_id: int, *, kind: str, content: str,
                 outcome: str | None = None, next_followup_at: datetime | None = None) -> FollowUp:
    """Record a follow-up by the viewer. ``next_followup_at`` None clears the planned follow-up."""
    if kind not in FollowUpKind.__members__.values():
        raise WorkValidation(f"未知的跟进方式：{kind}", field="kind")
    content = (content or "").strip()
    if not content:
        raise WorkValidation("请填写跟进内容", field="content")
    if len(content) > 1000:
        raise WorkValidation("跟进内容不能超过 1000 字", field="content")
    outcome = (outcome or "").strip() or None
    if outcome is not None and outcome not in FOLLOWUP_OUTCOMES:
        raise WorkValidation(f"未知的跟进结果：{outcome}", field="outcome")
    now = clock.now()
    if next_followup_at is not None:
        if next_followup_at.tzinfo is None:
            raise WorkValidation("下次跟进时间缺少时区", field="next_followup_at")
        if next_followup_at <= now:
            raise WorkValidation("下次跟进时间必须晚于现在", field="next_followup_at")
        if next_followup_at > now + timedelta(days=366):
            raise WorkValidation("下次跟进时间不能超过一年", field="next_followup_at")
    customer = workable_customer(session, viewer, customer_id, for_update=True)
    followup = FollowUp(customer_id=customer.id, staff_id=viewer.staff_id, kind=kind, content=content,
                        outcome=outcome, next_followup_at=next_followup_at, created_at=now)
    session.add(followup)
    before = {"last_followup_at": customer.last_followup_at, "next_followup_at": customer.next_followup_at}
    customer.last_followup_at, customer.next_followup_at, customer.updated_at = now, next_followup_at, now
    session.flush()
    summary = f"{FOLLOWUP_KIND_LABELS[kind]}跟进" + (f"（{outcome}）" if outcome else "") + f"：{content[:120]}"
    customers.record_event(session, customer.id, "followup", summary, actor_staff_id=viewer.staff_id,
                           ref_type="followup", ref_id=followup.id,
                           data={"kind": kind, "outcome": outcome,
                                 "next_followup_at": next_followup_at.isoformat() if next_followup_at else None})
    audit.record(session, "followup.create", entity_type="customer", entity_id=customer.id, before=before,
                 after={"followup_id": followup.id, "kind": kind, "outcome": outcome,
                        "next_followup_at": next_followup_at})
    target = _stage_after(customer.stage, outcome)
    if target is not None:
        customers.set_stage(session, customer.id, target, viewer=viewer)
    return followup


def _stage_after(stage: str, outcome: str | None) -> str | None:
    """new → contacted once the customer was reached; new/contacted → intent on interest."""
    if outcome == NOT_REACHED:
        return None
    if outcome in INTERESTED and stage in (Stage.NEW, Stage.CONTACTED):
        return Stage.INTENT
    if stage == Stage.NEW:
        return Stage.CONTACTED
    return None


def list_followups(session: Session, viewer: Viewer, customer_id: int, *, limit: int = 100) -> list[FollowUp]:
    customer = customers.get_customer(session, viewer, customer_id)
    return list(session.scalars(select(FollowUp).where(FollowUp.customer_id == customer.id)
                                .order_by(FollowUp.created_at.desc(), FollowUp.id.desc()).limit(limit)))


# --- work tasks ----------------------------------------------------------------------------------


def create_task(session: Session, viewer: Viewer, *, title: str, customer_id: int | None = None,
                due_at: datetime | None = None, staff_id: int | None = None) -> WorkTask:
    """A to-do item for ``staff_id`` (default: the viewer); assigning to someone else needs them in scope."""
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise WorkValidation("待办标题不能为空且不超过 200 字", field="title")
    if due_at is not None and due_at.tzinfo is None:
        raise WorkValidation("截止时间缺少时区", field="due_at")
    staff_id = staff_id or viewer.staff_id
    if staff_id != viewer.staff_id:
        _active_staff_in_scope(session, viewer, staff_id)
    if customer_id is not None:
        workable_customer(session, viewer, customer_id)
    task = WorkTask(staff_id=staff_id, customer_id=customer_id, title=title, due_at=due_at,
                    status=TaskStatus.OPEN, created_by_staff_id=viewer.staff_id, created_at=clock.now())
    session.add(task)
    session.flush()
    audit.record(session, "task.create", entity_type="work_task", entity_id=task.id,
                 after={"staff_id": staff_id, "customer_id": customer_id, "title": title})
    return task


def _active_staff_in_scope(session: Session, viewer: Viewer, staff_id: int) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None or staff.status != StaffStatus.ACTIVE or not scope.can_see_owner(session, viewer, staff_id):
        raise StaffNotFound("员工不存在、已离职或不在您的数据范围内")
    return staff


def get_task(session: Session, viewer: Viewer, task_id: int) -> WorkTask:
    task = session.get(WorkTask, task_id)
    if task is None or not (task.staff_id == viewer.staff_id or scope.can_see_owner(session, viewer, task.staff_id)):
        raise TaskNotFound()
    return task


def close_task(session: Session, viewer: Viewer, task_id: int, status: str) -> WorkTask:
    """Mark an open task done or cancelled (a conditional update: a second close changes nothing)."""
    if status not in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise WorkValidation("待办只能标记为完成或取消", field="status")
    task = get_task(session, viewer, task_id)
    now = clock.now()
    done = session.execute(update(WorkTask).where(WorkTask.id == task.id, WorkTask.status == TaskStatus.OPEN)
                           .values(status=status, closed_at=now)).rowcount
    session.refresh(task)
    if done:
        audit.record(session, f"task.{status}", entity_type="work_task", entity_id=task.id,
                     before={"status": "open"}, after={"status": status})
        if task.customer_id is not None:
            customers.record_event(session, task.customer_id, "task",
                                   f"待办{'完成' if status == TaskStatus.DONE else '取消'}：{task.title}",
                                   actor_staff_id=viewer.staff_id, ref_type="work_task", ref_id=task.id)
    return task


def list_tasks(session: Session, viewer: Viewer, *, staff_id: int | None = None, status: str = TaskStatus.OPEN,
               limit: int = 200) -> list[WorkTask]:
    staff_id = staff_id or viewer.staff_id
    if staff_id != viewer.staff_id and not scope.can_see_owner(session, viewer, staff_id):
        return []
    return list(session.scalars(
        select(WorkTask).where(WorkTask.staff_id == staff_id, WorkTask.status == status)
        .order_by(WorkTask.due_at.is_(None), WorkTask.due_at, WorkTask.id).limit(limit)))


# --- handover support ----------------------------------------------------------------------------
# crm.handover calls open_items_for / reassign_items of this module (tasks) and of crm.visits (visits).


def open_items_for(session: Session, staff_id: int) -> list[WorkItem]:
    """A person's open to-do items, oldest due first (tasks without a due time last)."""
    rows = session.execute(
        select(WorkTask.id, WorkTask.customer_id, WorkTask.title, WorkTask.due_at)
        .where(WorkTask.staff_id == staff_id, WorkTask.status == TaskStatus.OPEN)
        .order_by(WorkTask.due_at.is_(None), WorkTask.due_at, WorkTask.id))
    return [WorkItem("task", tid, cid, title, due) for tid, cid, title, due in rows]


def reassign_items(session: Session, from_staff_id: int, mapping: dict[int, int]) -> ReassignResult:
    """Move a person's open tasks of the mapped customers (customer id → new staff id) in one statement.
    Tasks of customers not in the mapping, and tasks with no customer, stay with the person."""
    if not mapping:
        return ReassignResult("task", 0)
    moved = 0
    items = list(mapping.items())
    for start in range(0, len(items), CHUNK):
        part = dict(items[start:start + CHUNK])
        moved += session.execute(
            update(WorkTask).where(WorkTask.staff_id == from_staff_id, WorkTask.status == TaskStatus.OPEN,
                                   WorkTask.customer_id.in_(list(part)))
            .values(staff_id=case(part, value=WorkTask.customer_id))
            .execution_options(synchronize_session=False)).rowcount
    session.expire_all()
    if moved:
        audit.record(session, "task.reassign", entity_type="staff", entity_id=from_staff_id,
                     after={"customers": len(mapping), "tasks": moved})
    return ReassignResult("task", moved)


# --- co-handlers (谈单协作) -----------------------------------------------------------------------


def _ensure_may_manage(session: Session, viewer: Viewer, customer: Customer) -> None:
    """The owner, or someone whose scope covers the owner; a co-handler may not add others."""
    if viewer.scope == "all" or customer.owner_id == viewer.staff_id:
        return
    if customer.owner_id is not None and viewer.scope == "department" and \
            scope.can_see_owner(session, viewer, customer.owner_id):
        return
    raise WorkForbidden()


def add_collaborator(session: Session, viewer: Viewer, customer_id: int, staff_id: int,
                     role: str = "协作") -> CustomerCollaborator:
    customer = workable_customer(session, viewer, customer_id, for_update=True)
    _ensure_may_manage(session, viewer, customer)
    staff = session.get(Staff, staff_id)
    if staff is None or staff.status != StaffStatus.ACTIVE:
        raise StaffNotFound("员工不存在或已离职")
    if staff_id == customer.owner_id:
        raise WorkValidation("负责人本人无需添加为协作人", field="staff_id")
    role = (role or "协作").strip()[:40] or "协作"
    row = CustomerCollaborator(customer_id=customer.id, staff_id=staff_id, role=role, added_at=clock.now())
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise CollaboratorExists() from exc
    audit.record(session, "customer.collaborator.add", entity_type="customer", entity_id=customer.id,
                 after={"staff_id": staff_id, "role": role})
    customers.record_event(session, customer.id, "collaborator", f"添加协作人：{staff.display_name}（{role}）",
                           actor_staff_id=viewer.staff_id, data={"staff_id": staff_id, "role": role})
    return row


def remove_collaborator(session: Session, viewer: Viewer, customer_id: int, staff_id: int) -> bool:
    customer = workable_customer(session, viewer, customer_id, for_update=True)
    if staff_id != viewer.staff_id:  # anyone may leave; removing others is for the owner and above
        _ensure_may_manage(session, viewer, customer)
    removed = session.execute(delete(CustomerCollaborator).where(
        CustomerCollaborator.customer_id == customer.id, CustomerCollaborator.staff_id == staff_id)).rowcount
    if removed:
        staff = session.get(Staff, staff_id)
        audit.record(session, "customer.collaborator.remove", entity_type="customer", entity_id=customer.id,
                     before={"staff_id": staff_id})
        customers.record_event(session, customer.id, "collaborator",
                               f"移除协作人：{staff.display_name if staff else staff_id}",
                               actor_staff_id=viewer.staff_id, data={"staff_id": staff_id})
    return bool(removed)


def list_collaborators(session: Session, viewer: Viewer, customer_id: int) -> list[tuple[CustomerCollaborator, Staff]]:
    customer = customers.get_customer(session, viewer, customer_id)
    return [tuple(r) for r in session.execute(
        select(CustomerCollaborator, Staff).join(Staff, Staff.id == CustomerCollaborator.staff_id)
        .where(CustomerCollaborator.customer_id == customer.id).order_by(CustomerCollaborator.id))]


# --- reminders -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderItem:
    kind: str  # followup | task
    item_id: int  # the customer (followup) or the task
    customer_id: int | None
    customer_name: str | None
    title: str
    due_at: datetime
    overdue: bool


@dataclass
class Reminders:
    day: date
    due_today: list[ReminderItem] = field(default_factory=list)
    overdue: list[ReminderItem] = field(default_factory=list)


def reminders_for(session: Session, viewer: Viewer, day: date | None = None) -> Reminders:
    """The viewer's own planned follow-ups and open tasks due on ``day`` (Asia/Shanghai) or before."""
    day = day or clock.today()
    start, end = clock.start_of_business_day(day), clock.start_of_business_day(day + timedelta(days=1))
    out = Reminders(day)
    items: list[ReminderItem] = []
    for cid, name, phone, due in session.execute(
            select(Customer.id, Customer.name, Customer.phone_masked, Customer.next_followup_at)
            .where(Customer.owner_id == viewer.staff_id, Customer.status == CustomerStatus.OWNED,
                   Customer.next_followup_at < end)):
        label = customer_label(name, phone, cid)
        items.append(ReminderItem("followup", cid, cid, label, f"跟进客户 {label}", due, due < start))
    for tid, cid, title, due, name, phone in session.execute(
            select(WorkTask.id, WorkTask.customer_id, WorkTask.title, WorkTask.due_at, Customer.name,
                   Customer.phone_masked)
            .outerjoin(Customer, Customer.id == WorkTask.customer_id)
            .where(WorkTask.staff_id == viewer.staff_id, WorkTask.status == TaskStatus.OPEN, WorkTask.due_at < end)):
        label = customer_label(name, phone, cid) if cid else None
        items.append(ReminderItem("task", tid, cid, label, title, due, due < start))
    items.sort(key=lambda i: (i.due_at, i.kind, i.item_id))
    out.overdue = [i for i in items if i.overdue]
    out.due_today = [i for i in items if not i.overdue]
    return out


def send_due_reminders(session: Session) -> int:
    """Notify each active person of their follow-ups and tasks due (within the lead time) or overdue,
    once per item per business day. Returns the number of notifications sent."""
    now, today = clock.now(), clock.today()
    horizon = now + REMINDER_LEAD
    candidates: list[tuple[int, str, int, int | None, str, datetime]] = []
    for cid, owner_id, name, phone, due in session.execute(
            select(Customer.id, Customer.owner_id, Customer.name, Customer.phone_masked, Customer.next_followup_at)
            .join(Staff, Staff.id == Customer.owner_id)
            .where(Customer.status == CustomerStatus.OWNED, Customer.next_followup_at <= horizon,
                   Staff.status == StaffStatus.ACTIVE)):
        candidates.append((owner_id, "followup", cid, cid, f"跟进客户 {customer_label(name, phone, cid)}", due))
    for tid, staff_id, cid, title, due in session.execute(
            select(WorkTask.id, WorkTask.staff_id, WorkTask.customer_id, WorkTask.title, WorkTask.due_at)
            .join(Staff, Staff.id == WorkTask.staff_id)
            .where(WorkTask.status == TaskStatus.OPEN, WorkTask.due_at <= horizon,
                   Staff.status == StaffStatus.ACTIVE)):
        candidates.append((staff_id, "task", tid, cid, title, due))
    rows = [{"staff_id": s, "item_type": t, "item_id": i, "remind_date": today, "sent_at": now}
            for s, t, i, _, _, _ in candidates]
    new = {(r.staff_id, r.item_type, r.item_id) for r in insert_ignore(
        session, ReminderSent, rows, ("staff_id", "item_type", "item_id", "remind_date"),
        (ReminderSent.staff_id, ReminderSent.item_type, ReminderSent.item_id))}
    messages = []
    for staff_id, item_type, item_id, cid, title, due in candidates:
        if (staff_id, item_type, item_id) not in new:
            continue
        when = clock.ensure_aware(due).astimezone(clock.BUSINESS_TZ).strftime("%m-%d %H:%M")
        state = "已逾期" if due < now else "即将到期"
        head = "跟进提醒" if item_type == "followup" else "待办提醒"
        messages.append((staff_id, "reminder", f"{head}：{title}", f"{state}（计划时间 {when}）", cid))
    return notify_many(session, messages)
