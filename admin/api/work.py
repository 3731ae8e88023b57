"""Staff JSON API of the work area: follow-ups, co-handlers, reminders, to-do tasks and visits (data-scoped)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Query, Response

from admin.api.deps import ERROR_RESPONSES, Caller
from admin.schemas import ErrorBody
from admin.schemas_work import (
    CollaboratorCreate,
    CollaboratorRead,
    FollowUpCreate,
    FollowUpRead,
    RemindersRead,
    TaskRead,
    VisitArrive,
    VisitCancel,
    VisitCreate,
    VisitRead,
    VisitReschedule,
)
from core import clock
from core.errors import ValidationFailed
from core.web import SessionDep
from crm import followups, visits
from crm.models import Staff

router = APIRouter(prefix="/api/v1", tags=["work"], responses=ERROR_RESPONSES)

_403: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "无权执行此操作"}}
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "不存在或不在您的数据范围内"}}
_409: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "状态或时间冲突"}}
_422: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody, "description": "输入不正确（中文说明）"}}


@router.get("/customers/{customer_id}/followups", response_model=list[FollowUpRead], responses=_404,
            summary="客户的跟进记录")
def list_followups(customer_id: int, session: SessionDep, caller: Caller) -> list[FollowUpRead]:
    return [FollowUpRead.model_validate(f) for f in followups.list_followups(session, caller.viewer, customer_id)]


@router.post("/customers/{customer_id}/followups", response_model=FollowUpRead, status_code=201,
             responses={**_404, **_409, **_422}, summary="记录一次跟进",
             description="更新客户的最近/下次跟进时间，必要时推进阶段（新线索 → 已联系 / 有意向），写入时间线与审计日志。"
                         "公海客户需先领取（409）。")
def create_followup(customer_id: int, body: FollowUpCreate, session: SessionDep, caller: Caller) -> FollowUpRead:
    f = followups.log_followup(session, caller.viewer, customer_id, kind=body.kind, content=body.content,
                               outcome=body.outcome, next_followup_at=body.next_followup_at)
    return FollowUpRead.model_validate(f)


@router.get("/customers/{customer_id}/collaborators", response_model=list[CollaboratorRead], responses=_404,
            summary="客户的协作人（谈单协作）")
def list_collaborators(customer_id: int, session: SessionDep, caller: Caller) -> list[CollaboratorRead]:
    return [CollaboratorRead(staff_id=c.staff_id, display_name=s.display_name, role=c.role, added_at=c.added_at)
            for c, s in followups.list_collaborators(session, caller.viewer, customer_id)]


@router.post("/customers/{customer_id}/collaborators", response_model=CollaboratorRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="添加协作人（负责人或其上级）",
             description="协作人可查看并跟进该客户；重复添加为 409。")
def add_collaborator(customer_id: int, body: CollaboratorCreate, session: SessionDep,
                     caller: Caller) -> CollaboratorRead:
    row = followups.add_collaborator(session, caller.viewer, customer_id, body.staff_id, body.role)
    staff = session.get(Staff, row.staff_id)
    return CollaboratorRead(staff_id=row.staff_id, display_name=staff.display_name if staff else "", role=row.role,
                            added_at=row.added_at)


@router.delete("/customers/{customer_id}/collaborators/{staff_id}", status_code=204, responses={**_403, **_404},
               summary="移除协作人（本人可退出；移除他人需负责人或其上级）")
def remove_collaborator(customer_id: int, staff_id: int, session: SessionDep, caller: Caller) -> Response:
    followups.remove_collaborator(session, caller.viewer, customer_id, staff_id)
    return Response(status_code=204)


@router.get("/reminders", response_model=RemindersRead, summary="我的提醒（今日到期与已逾期）")
def reminders(session: SessionDep, caller: Caller,
              day: date | None = Query(None, description="业务日期（上海时间），默认今天")) -> RemindersRead:
    return RemindersRead.of(followups.reminders_for(session, caller.viewer, day or clock.today()))


@router.get("/tasks", response_model=list[TaskRead], summary="我的待办")
def list_tasks(session: SessionDep, caller: Caller,
               status: str = Query("open", description="open | done | cancelled")) -> list[TaskRead]:
    return [TaskRead.model_validate(t) for t in followups.list_tasks(session, caller.viewer, status=status)]


@router.post("/tasks/{task_id}/done", response_model=TaskRead, responses=_404, summary="完成待办")
def complete_task(task_id: int, session: SessionDep, caller: Caller) -> TaskRead:
    return TaskRead.model_validate(followups.close_task(session, caller.viewer, task_id, "done"))


@router.get("/visits", response_model=list[VisitRead], summary="上门预约（按数据范围）")
def list_visits(session: SessionDep, caller: Caller,
                start: date | None = Query(None, description="起始业务日期，默认今天"),
                end: date | None = Query(None, description="结束业务日期（含），默认起始后 7 天"),
                status: str | None = Query(None)) -> list[VisitRead]:
    start = start or clock.today()
    end = end or start + timedelta(days=7)
    if end < start or (end - start).days > 92:
        raise ValidationFailed("日期范围不正确（最多 92 天）", field="end")
    return [VisitRead.model_validate(v) for v, _ in visits.list_visits(session, caller.viewer, start, end,
                                                                       status=status)]


@router.post("/visits", response_model=VisitRead, status_code=201, responses={**_404, **_409, **_422},
             summary="预约上门", description="同一客户时间重叠的预约会被拒绝（409 visit_double_booked）。")
def create_visit(body: VisitCreate, session: SessionDep, caller: Caller) -> VisitRead:
    v = visits.schedule_visit(session, body.customer_id, body.scheduled_at, department_id=body.department_id,
                              viewer=caller.viewer, note=body.note, duration=timedelta(minutes=body.duration_minutes))
    return VisitRead.model_validate(v)


@router.post("/visits/{visit_id}/reschedule", response_model=VisitRead, responses={**_404, **_409, **_422},
             summary="改期（返回新的预约）")
def reschedule_visit(visit_id: int, body: VisitReschedule, session: SessionDep, caller: Caller) -> VisitRead:
    return VisitRead.model_validate(visits.reschedule_visit(session, caller.viewer, visit_id, body.scheduled_at,
                                                            reason=body.reason))


@router.post("/visits/{visit_id}/cancel", response_model=VisitRead, responses={**_404, **_409, **_422},
             summary="取消预约")
def cancel_visit(visit_id: int, body: VisitCancel, session: SessionDep, caller: Caller) -> VisitRead:
    return VisitRead.model_validate(visits.cancel_visit(session, caller.viewer, visit_id, body.reason))


@router.post("/visits/{visit_id}/arrived", response_model=VisitRead, responses={**_404, **_409},
             summary="客户已到店（阶段 → 已上门）")
def arrived(visit_id: int, body: VisitArrive, session: SessionDep, caller: Caller) -> VisitRead:
    return VisitRead.model_validate(visits.mark_arrived(session, caller.viewer, visit_id,
                                                        reception_staff_id=body.reception_staff_id,
                                                        cohandler_ids=body.cohandler_ids))


@router.post("/visits/{visit_id}/no-show", response_model=VisitRead, responses={**_404, **_409},
             summary="客户未到店")
def no_show(visit_id: int, session: SessionDep, caller: Caller) -> VisitRead:
    return VisitRead.model_validate(visits.mark_no_show(session, caller.viewer, visit_id))
