"""Staff, limited to the caller's data scope (crm.scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from admin import nav
from admin.api.deps import ApiCaller, Caller, require_roles
from admin.pagination import MAX_PAGE
from admin.schemas import ErrorBody, StaffCreate, StaffPage, StaffRead
from core.web import SessionDep
from crm import org_service

router = APIRouter(prefix="/staff", tags=["staff"])

StaffManager = Annotated[ApiCaller, Depends(require_roles(nav.STAFF_MANAGERS))]


@router.get("", response_model=StaffPage, summary="员工列表（按数据范围）")
def list_staff(session: SessionDep, caller: Caller,
               q: Annotated[str | None, Query(description="登录名、姓名或企业微信账号的一部分")] = None,
               role: str | None = None, status: Annotated[str | None, Query(description="active | departed")] = None,
               department_id: Annotated[int | None, Query(description="该部门及其下级")] = None,
               page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
               page_size: Annotated[int, Query(ge=1, le=200)] = 50) -> StaffPage:
    rows, total = org_service.list_staff(session, caller.viewer, q=q, role=role, status=status,
                                         department_id=department_id, limit=page_size,
                                         offset=(page - 1) * page_size)
    return StaffPage(items=[StaffRead.of(s) for s in rows], total=total, page=page, page_size=page_size)


@router.get("/{staff_id}", response_model=StaffRead, summary="员工详情",
            responses={404: {"model": ErrorBody, "description": "不存在或不在数据范围内"}})
def read_staff(session: SessionDep, caller: Caller, staff_id: int) -> StaffRead:
    return StaffRead.of(org_service.get_staff(session, staff_id, caller.viewer))


@router.post("", response_model=StaffRead, status_code=201, summary="新建员工（系统管理员、经理）",
             responses={403: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def create_staff(session: SessionDep, caller: StaffManager, body: StaffCreate) -> StaffRead:
    staff = org_service.create_staff(session, org_service.StaffInput(**body.model_dump()), caller.viewer)
    return StaffRead.of(staff)
