"""Request and response bodies of the work API (follow-ups, reminders, tasks, visits)."""

from __future__ import annotations

from datetime import date, datetime

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
