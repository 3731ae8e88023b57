"""Daily work around a customer: follow-ups (跟进记录), the to-do list (work tasks), visits (邀约上门),
reminder markers, and automation rules with their firings."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "FOLLOWUP_KIND_LABELS", "FOLLOWUP_OUTCOMES", "TASK_STATUS_LABELS", "VISIT_STATUS_LABELS", "AutomationFiring",
    "AutomationRule", "FollowUp", "FollowUpKind", "ReminderSent", "TaskStatus", "Visit", "VisitCohandler",
    "VisitStatus", "WorkTask",
]


class FollowUpKind(StrEnum):
    CALL = "call"
    WECHAT = "wechat"
    VISIT = "visit"
    NOTE = "note"


FOLLOWUP_KIND_LABELS = {"call": "电话", "wechat": "微信", "visit": "面谈", "note": "备注"}
# Outcomes a salesperson picks from; "未接通" means the customer was not reached.
FOLLOWUP_OUTCOMES = ("接通", "未接通", "有意向", "无意向", "已预约")


class FollowUp(Base):
    """One follow-up of a customer by a staff member. Append-only by convention."""

    __tablename__ = "crm_followup"
    __table_args__ = (
        Index("ix_crm_followup_customer_at", "customer_id", "created_at"),
        Index("ix_crm_followup_staff_at", "staff_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(String(1000))
    outcome: Mapped[str | None] = mapped_column(String(16))
    next_followup_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


TASK_STATUS_LABELS = {"open": "待办", "done": "已完成", "cancelled": "已取消"}


class WorkTask(Base):
    """An item on a salesperson's to-do list, by hand or from an automation rule (``source``)."""

    __tablename__ = "crm_work_task"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'done', 'cancelled')", name="status_known"),
        Index("ix_crm_work_task_staff_status_due", "staff_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN)
    source: Mapped[str | None] = mapped_column(String(40))  # None: by hand; "rule:<id>": an automation rule
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class ReminderSent(Base):
    """Marker of one reminder sent: the unique key makes the reminder job send each item once per day."""

    __tablename__ = "crm_reminder_sent"
    __table_args__ = (UniqueConstraint("staff_id", "item_type", "item_id", "remind_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    item_type: Mapped[str] = mapped_column(String(16))  # followup (item = customer) | task | visit
    item_id: Mapped[int]
    remind_date: Mapped[date]
    sent_at: Mapped[datetime]


class VisitStatus(StrEnum):
    SCHEDULED = "scheduled"
    ARRIVED = "arrived"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"  # replaced by a new visit (rescheduled_to_id)


VISIT_STATUS_LABELS = {"scheduled": "已预约", "arrived": "已到店", "no_show": "未到店", "cancelled": "已取消",
                       "rescheduled": "已改期"}


class Visit(Base):
    """A customer invited to (or booking) a visit at a branch (邀约上门)."""

    __tablename__ = "crm_visit"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'arrived', 'no_show', 'cancelled', 'rescheduled')",
                        name="status_known"),
        CheckConstraint("ends_at > scheduled_at", name="ends_after_start"),
        Index("ix_crm_visit_customer_status", "customer_id", "status"),
        Index("ix_crm_visit_scheduled", "scheduled_at"),
        Index("ix_crm_visit_inviter_status", "inviter_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # None: booked by the customer
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))  # the branch visited
    scheduled_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=VisitStatus.SCHEDULED)
    channel: Mapped[str] = mapped_column(String(20), default="staff")  # staff | miniprogram | wecom
    reception_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    rescheduled_to_id: Mapped[int | None] = mapped_column(ForeignKey("crm_visit.id"))
    arrived_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class VisitCohandler(Base):
    """Staff who joined the reception of a visit beside the receptionist."""

    __tablename__ = "crm_visit_cohandler"
    __table_args__ = (UniqueConstraint("visit_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("crm_visit.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)


class AutomationRule(Base):
    """A rule as data: when ``trigger`` happens and every condition holds, run ``action``.

    trigger: grade_changed | stage_changed | customer_created | unassigned_for (hours) | no_followup_for (days)
    conditions: [{"field": "grade"|"stage"|"source"|"region"|"customer_type", "op": "eq"|"ne"|"in", "value": …}]
    action: {"type": "create_task", "title": "…{name}…", "due_hours": 4}
          | {"type": "notify", "target": "owner"|"supervisor"|"staff", "staff_id": 7, "title": "…", "body": "…"}
          | {"type": "set_grade", "grade": "A"}
    """

    __tablename__ = "crm_automation_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    trigger: Mapped[str] = mapped_column(String(32), index=True)
    trigger_value: Mapped[int | None]  # hours (unassigned_for) or days (no_followup_for)
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    action: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AutomationFiring(Base):
    """One firing of a rule for a customer; the unique window key makes each rule fire once per window."""

    __tablename__ = "crm_automation_firing"
    __table_args__ = (UniqueConstraint("rule_id", "customer_id", "window_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("crm_automation_rule.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    window_key: Mapped[str] = mapped_column(String(64))
    fired_at: Mapped[datetime]
