"""The durable outbox for admins: counts, waiting and dead rows, and sending a row again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from admin import nav
from admin.api.deps import ApiCaller, require_roles
from admin.outbox_labels import task_label
from core import audit, outbox
from core.errors import NotFound
from core.web import SessionDep

router = APIRouter(prefix="/outbox", tags=["outbox"])

Admin = Annotated[ApiCaller, Depends(require_roles(nav.OUTBOX_ADMINS))]


class OutboxCounts(BaseModel):
    pending: int
    overdue: int
    sent: int
    dead: int


class OutboxRowRead(BaseModel):
    id: int
    name: str
    label: str
    args: list[Any]
    kwargs: dict[str, Any]
    status: str
    attempts: int
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, row: outbox.TaskOutbox) -> OutboxRowRead:
        return cls(id=row.id, name=row.name, label=task_label(row.name), args=row.args, kwargs=row.kwargs,
                   status=row.status, attempts=row.attempts, created_at=row.created_at, due_at=row.due_at,
                   sent_at=row.sent_at, last_error=row.last_error)


@router.get("/counts", response_model=OutboxCounts, summary="任务队列计数（待发送、超时、已发送、失败）")
def read_counts(session: SessionDep, caller: Admin) -> OutboxCounts:
    return OutboxCounts(**outbox.counts(session))


@router.get("", response_model=list[OutboxRowRead], summary="待发送或失败的任务")
def list_rows(session: SessionDep, caller: Admin, status: Literal["pending", "dead"] = "dead",
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              offset: Annotated[int, Query(ge=0)] = 0) -> list[OutboxRowRead]:
    return [OutboxRowRead.of(r) for r in outbox.list_rows(session, status, limit=limit, offset=offset)]


@router.post("/{row_id}/retry", response_model=OutboxRowRead, summary="重新发送一个任务")
def retry_row(session: SessionDep, caller: Admin, row_id: int) -> OutboxRowRead:
    if not outbox.retry(session, row_id):
        raise NotFound("任务不存在或已发送")
    audit.record(session, "outbox.retry", entity_type="task_outbox", entity_id=row_id)
    session.flush()
    row = session.get(outbox.TaskOutbox, row_id)
    session.refresh(row)
    return OutboxRowRead.of(row)
