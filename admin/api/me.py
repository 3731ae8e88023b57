from __future__ import annotations

from fastapi import APIRouter

from admin.api.deps import Caller
from admin.schemas import StaffRead

router = APIRouter(tags=["me"])


@router.get("/me", response_model=StaffRead, summary="当前令牌所属员工")
def read_me(caller: Caller) -> StaffRead:
    return StaffRead.of(caller.staff)
