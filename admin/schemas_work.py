"""Request and response bodies of the work API (follow-ups, reminders, tasks, visits, automation rules)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crm.followups import ReminderItem, Reminders


class FollowUpCreate(BaseModel):
    kind: str = Field(description="call | wechat | visit | note", examples=["call"])
    content: str = Field(max_length=1000, examples=["客户想了解 20 万信用贷"])
    outcome: str | None = Field(None, description="接通 | 未接通 | 有意向 | 无意向 | 已预约")
    next_followup_at: datetime | None = Field(None, description="aware ISO 8601 instant, later than now")


class FollowUpRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    staff_id: int
    kind: str
    content: str
    outcome: str | None
    next_followup_at: datetime | None
    created_at: datetime


class ReminderRead(BaseModel):
    kind: str = Field(description="followup (item_id is the customer) | task")
    item_id: int
    customer_id: int | None
    customer_name: str | None = Field(description="name, or the masked phone")
    title: str
    due_at: datetime
    overdue: bool

    @classmethod
    def of(cls, item: ReminderItem) -> ReminderRead:
        return cls(kind=item.kind, item_id=item.item_id, customer_id=item.customer_id,
                   customer_name=item.customer_name, title=item.title, due_at=item.due_at, overdue=item.overdue)


class RemindersRead(BaseModel):
    day: date = Field(description="business date, Asia/Shanghai")
    due_today: list[ReminderRead]
    overdue: list[ReminderRead]

    @classmethod
    def of(cls, r: Reminders) -> RemindersRead:
        return cls(day=r.day, due_today=[ReminderRead.of(i) for i in r.due_today],
                   overdue=[ReminderRead.of(i) for i in r.overdue])


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    staff_id: int
    customer_id: int | None
    title: str
    due_at: datetime | None
    status: str
    source: str | None = Field(description="None: by hand; rule:<id>: an automation rule")
    created_at: datetime


class VisitCreate(BaseModel):
    customer_id: int
    scheduled_at: datetime = Field(description="aware ISO 8601 instant, later than now")
    department_id: int = Field(description="the branch receiving the customer")
    duration_minutes: int = Field(60, ge=15, le=480)
    note: str | None = Field(None, max_length=500)


class VisitCancel(BaseModel):
    reason: str = Field(max_length=200, examples=["客户临时出差"])


class VisitReschedule(BaseModel):
    scheduled_at: datetime
    reason: str | None = Field(None, max_length=200)


class VisitArrive(BaseModel):
    reception_staff_id: int | None = Field(None, description="default: the caller")
    cohandler_ids: list[int] = Field(default_factory=list)


class VisitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    inviter_id: int | None
    department_id: int
    scheduled_at: datetime
    ends_at: datetime
    status: str = Field(description="scheduled | arrived | no_show | cancelled | rescheduled")
    channel: str
    reception_staff_id: int | None
    note: str | None
    cancel_reason: str | None
    rescheduled_to_id: int | None
    arrived_at: datetime | None
    created_at: datetime


class CollaboratorCreate(BaseModel):
    staff_id: int = Field(description="an active staff member other than the owner")
    role: str = Field("协作", max_length=40, examples=["谈单协作"])


class CollaboratorRead(BaseModel):
    staff_id: int
    display_name: str
    role: str
    added_at: datetime


class RuleCondition(BaseModel):
    field: str = Field(description="grade | stage | source | region | customer_type")
    op: str = Field("eq", description="eq（等于）| ne（不等于）| in（属于，value 为列表）")
    value: str | list[str] = Field(examples=["A"])


class RuleAction(BaseModel):
    """create_task: title (placeholders {name} {grade} {stage} {source} {region} {phone}), due_hours (0–720,
    default 24); notify: target owner | supervisor | staff (with staff_id), title, body; set_grade: grade."""

    type: str = Field(description="create_task | notify | set_grade", examples=["create_task"])
    title: str | None = Field(None, examples=["回访 {name}"])
    due_hours: int | None = None
    target: str | None = None
    staff_id: int | None = None
    body: str | None = None
    grade: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class AutomationRuleRead(BaseModel):
    id: int
    name: str
    trigger: str = Field(description="grade_changed | stage_changed | customer_created | unassigned_for (hours) "
                                     "| no_followup_for (days)")
    trigger_value: int | None
    conditions: list[dict[str, Any]] = Field(description="all must hold")
    action: dict[str, Any]
    active: bool
    description: str = Field(description="one-line Chinese description")
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class AutomationRuleCreate(BaseModel):
    name: str = Field(description="at most 80 characters", examples=["A 类客户 4 小时内回访"])
    trigger: str = Field(examples=["grade_changed"])
    trigger_value: int | None = Field(None, description="unassigned_for: 1–2160 hours; no_followup_for: 1–365 days")
    conditions: list[RuleCondition] = Field(default_factory=list)
    action: RuleAction
    active: bool = True


class AutomationRuleUpdate(BaseModel):
    """Only the fields sent change; the rule is then checked as a whole. Activation has its own endpoints."""

    name: str | None = None
    trigger: str | None = None
    trigger_value: int | None = None
    conditions: list[RuleCondition] | None = None
    action: RuleAction | None = None
