from __future__ import annotations

from fastapi import APIRouter

from admin.api.deps import Caller
from admin.schemas import DepartmentRead
from core.web import SessionDep
from crm import org_service

router = APIRouter(prefix="/departments", tags=["departments"])


@router.get("", response_model=list[DepartmentRead], summary="部门（按数据范围）")
def list_departments(session: SessionDep, caller: Caller) -> list[DepartmentRead]:
    return [DepartmentRead.of(d) for d in org_service.list_departments(session, caller.viewer)]
