"""Persisting the state machine's moves: node visits (dwell time, SLA, the node's task), transitions,
audit, timeline and the customer's CRM stage; and the SLA reminder job.

Every move is a conditional UPDATE of the application row on the state the machine checked
(``WHERE status = :from AND current_node_id = :from_node``): of two reviewers clicking at once,
one moves the application and the other is refused (:class:`StaleNode`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from crm import customers, notify
from crm.models import Customer, Staff, StaffStatus, TaskStatus, WorkTask
from crm.scope import Viewer
from lending.application_exceptions import StaleNode
from lending.models import (
    OPEN_STATUSES,
    Application,
    ApplicationNodeVisit,
    ApplicationTransition,
    WorkflowNode,
)
from lending.workflow.machine import EVENT_LABELS, Event, Move

__all__ = ["STAGE_OF_STATUS", "apply_move", "cc_staff_ids", "open_visit", "responsible_staff_ids",
           "send_sla_reminders"]

STAGE_OF_STATUS = {"intake": "applied", "reviewing": "applied", "approved": "approved", "signed": "signed",
                   "disbursed": "disbursed", "rejected": "lost", "withdrawn": "lost"}
MAX_ROLE_RECIPIENTS = 50


def open_visit(session: Session, application_id: int) -> ApplicationNodeVisit | None:
    return session.scalar(select(ApplicationNodeVisit).where(
        ApplicationNodeVisit.application_id == application_id, ApplicationNodeVisit.left_at.is_(None)))


def _person_for(node: WorkflowNode, customer: Customer) -> int | None:
    """The one person a node's work falls to: the named person, or the customer's owner for a sales node."""
    if node.responsible_staff_id is not None:
        return node.responsible_staff_id
    if node.responsible_role == "sales":
        return customer.owner_id
    return None


def responsible_staff_ids(session: Session, visit: ApplicationNodeVisit) -> list[int]:
    """Whom a node visit concerns: its person, else the active staff of its role (bounded)."""
    if visit.responsible_staff_id is not None:
        return [visit.responsible_staff_id]
    if visit.responsible_role is None:
        return []
    return list(session.scalars(select(Staff.id).where(
        Staff.role == visit.responsible_role, Staff.status == StaffStatus.ACTIVE)
        .order_by(Staff.id).limit(MAX_ROLE_RECIPIENTS)))


def cc_staff_ids(session: Session, node: WorkflowNode) -> list[int]:
    """A node's CC recipients (抄送): its named active staff, then the active staff of its roles (bounded)."""
    named = list(node.cc_staff_ids or [])
    ids = list(session.scalars(select(Staff.id).where(Staff.id.in_(named), Staff.status == StaffStatus.ACTIVE)
                               .order_by(Staff.id))) if named else []
    if node.cc_roles:
        ids += session.scalars(select(Staff.id).where(Staff.role.in_(list(node.cc_roles)),
                                                      Staff.status == StaffStatus.ACTIVE)
                               .order_by(Staff.id).limit(MAX_ROLE_RECIPIENTS))
    return list(dict.fromkeys(ids))


def _enter(session: Session, app: Application, node: WorkflowNode, customer: Customer, now: datetime) -> None:
    """One visit of ``node``: its task, the responsible staff told, and its CC recipients told once (an
    information copy only: deciding the node stays with the responsible role or person)."""
    person = _person_for(node, customer)
    due = now + timedelta(hours=node.sla_hours) if node.sla_hours else None
    task_id = None
    if person is not None and node.kind != "servicing":
        task = WorkTask(staff_id=person, customer_id=app.customer_id, title=f"贷款申请 #{app.id}：{node.name}"[:200],
                        due_at=due, status=TaskStatus.OPEN, source=f"lending:{app.id}", created_at=now)
        session.add(task)
        session.flush()
        task_id = task.id
    visit = ApplicationNodeVisit(application_id=app.id, node_id=node.id, responsible_role=node.responsible_role,
                                 responsible_staff_id=person, work_task_id=task_id, entered_at=now, sla_due_at=due)
    session.add(visit)
    session.flush()
    who = customer.name or "#" + str(customer.id)
    recipients: list[int] = []
    if node.kind != "servicing":
        recipients = responsible_staff_ids(session, visit)
        notify.notify(session, recipients, "lending_node", f"贷款申请 #{app.id} 待处理：{node.name}",
                      f"客户 {who} 的申请已进入「{node.name}」"
                      + (f"，请在 {node.sla_hours} 小时内处理" if node.sla_hours else ""), customer_id=customer.id)
    copied = [s for s in cc_staff_ids(session, node) if s not in recipients]  # one message per person and visit
    notify.notify(session, copied, "lending_cc", f"抄送：贷款申请 #{app.id} 进入「{node.name}」",
                  f"客户 {who} 的申请（金额 {format_yuan(app.requested_amount)}）已进入「{node.name}」。"
                  "本消息仅供知悉，由该节点负责人处理", customer_id=customer.id)


def _leave(session: Session, app: Application, outcome: str, now: datetime) -> None:
    visit = open_visit(session, app.id)
    if visit is None:
        return
    visit.left_at, visit.outcome = now, outcome
    if visit.work_task_id is not None:
        session.execute(update(WorkTask).where(WorkTask.id == visit.work_task_id, WorkTask.status == TaskStatus.OPEN)
                        .values(status=TaskStatus.DONE if outcome == "approve" else TaskStatus.CANCELLED,
                                closed_at=now))
    session.flush()


def _stage_follows(session: Session, app: Application, to_status: str, staff_id: int | None) -> None:
    stage = STAGE_OF_STATUS[to_status]
    if stage == "lost":
        others = session.scalar(select(func.count()).select_from(Application).where(
            Application.customer_id == app.customer_id, Application.id != app.id,
            Application.status.in_(OPEN_STATUSES + ("disbursed",))))
        if others:
            return  # the customer is still in business with us through another application
    customers.set_stage(session, app.customer_id, stage, actor_staff_id=staff_id)


def apply_move(session: Session, app: Application, move: Move, *, viewer: Viewer | None, actor_label: str | None = None,
               comment: str | None = None) -> ApplicationTransition:
    """Persist one move of ``app`` (already checked by the machine) and record it everywhere."""
    now = clock.now()
    staff_id = viewer.staff_id if viewer else None
    label = actor_label or (viewer.display_name if viewer else "系统")
    comment = (comment or "").strip()[:500] or None
    customer = session.get(Customer, app.customer_id)
    assert customer is not None
    if move.event is not Event.START:
        assert move.from_node is not None
        changed = session.execute(
            update(Application)
            .where(Application.id == app.id, Application.status == move.from_status,
                   Application.current_node_id == move.from_node.id)
            .values(status=move.to_status, current_node_id=move.to_node.id if move.to_node else None,
                    updated_at=now, closed_at=None if move.to_node else now,
                    close_reason=comment if move.to_node is None else Application.close_reason)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise StaleNode()
        session.refresh(app)
        _leave(session, app, str(move.event), now)
    if move.to_node is not None:
        _enter(session, app, move.to_node, customer, now)
    transition = ApplicationTransition(
        application_id=app.id, from_node_id=move.from_node.id if move.from_node else None,
        to_node_id=move.to_node.id if move.to_node else None, event=str(move.event), from_status=move.from_status,
        to_status=move.to_status, by_staff_id=staff_id, actor_label=label[:120], comment=comment, at=now)
    session.add(transition)
    session.flush()
    audit.record(session, f"lending.application.{move.event}", entity_type="lending_application", entity_id=app.id,
                 before={"status": move.from_status, "node": move.from_node.code if move.from_node else None},
                 after={"status": move.to_status, "node": move.to_node.code if move.to_node else None,
                        "comment": comment})
    where = move.to_node.name if move.to_node else ("已拒绝" if move.event is Event.REJECT else "已撤回")
    summary = f"贷款申请 #{app.id} {EVENT_LABELS[move.event]}" + (
        f"（{move.from_node.name}）" if move.from_node else "") + f" → {where}" + (f"：{comment}" if comment else "")
    customers.record_event(session, app.customer_id, "lending_application", summary, actor_staff_id=staff_id,
                           ref_type="lending_application", ref_id=app.id,
                           data={"event": str(move.event), "status": move.to_status})
    _stage_follows(session, app, move.to_status, staff_id)
    return transition


def send_sla_reminders(session: Session) -> int:
    """Remind once per node visit whose SLA passed with the application still there; returns how many.

    The conditional UPDATE marks the visits and returns them in one statement: a concurrent run
    (or a re-run) finds them marked and sends nothing twice.
    """
    now = clock.now()
    rows = session.execute(
        update(ApplicationNodeVisit)
        .where(ApplicationNodeVisit.left_at.is_(None), ApplicationNodeVisit.reminded_at.is_(None),
               ApplicationNodeVisit.sla_due_at.is_not(None), ApplicationNodeVisit.sla_due_at <= now)
        .values(reminded_at=now)
        .returning(ApplicationNodeVisit.id)
        .execution_options(synchronize_session=False)).scalars().all()
    if not rows:
        return 0
    visits = session.execute(
        select(ApplicationNodeVisit, WorkflowNode, Application, Customer)
        .join(WorkflowNode, WorkflowNode.id == ApplicationNodeVisit.node_id)
        .join(Application, Application.id == ApplicationNodeVisit.application_id)
        .join(Customer, Customer.id == Application.customer_id)
        .where(ApplicationNodeVisit.id.in_(rows))).all()
    for visit, node, app, customer in visits:
        hours = int((now - visit.entered_at).total_seconds() // 3600)
        recipients = responsible_staff_ids(session, visit) + ([customer.owner_id] if customer.owner_id else [])
        notify.notify(session, recipients, "lending_sla", f"贷款申请 #{app.id} 超时：{node.name}",
                      f"客户 {customer.name or '#' + str(customer.id)} 的申请在「{node.name}」已停留 {hours} 小时，"
                      f"超过时限 {node.sla_hours} 小时，请尽快处理", customer_id=customer.id)
        audit.record(session, "lending.application.sla_breach", entity_type="lending_application", entity_id=app.id,
                     after={"node": node.code, "hours": hours}, actor=audit.Actor.system("lending.sla_reminders"))
    return len(rows)
