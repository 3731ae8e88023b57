"""Staff JSON API of telephony (外呼) under ``/api/v1/collections``: place a call to a customer or about a
collection case, read calls. The number never appears: the server dials it; answers carry the masked number.
Collections roles; another collector's call is 404 unless the caller holds ``collections.calls_all``.
The first path, ``/api/v1/postloan/...``, still answers the same (hidden from the OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from admin.api.deps import ERROR_RESPONSES, ApiCaller, require_roles
from admin.nav import COLLECTIONS_STAFF
from admin.schemas import ErrorBody
from core.errors import NotFound
from core.web import SessionDep
from crm import customers
from postloan import actions, case_calls
from postloan.telephony import calls
from postloan.telephony.models import TelephonyCall

router = APIRouter(prefix="/api/v1/collections", tags=["collections-telephony"], responses=ERROR_RESPONSES)
# the first path of this API, kept working for callers that use it (not in the OpenAPI); see ``_legacy_routes``
legacy = APIRouter(prefix="/api/v1/postloan", include_in_schema=False)
_refused: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "客户或案件不存在或不在您的数据范围内"},
    409: {"model": ErrorBody, "description": "call_do_not_call：勿扰客户；call_outside_hours：不在外呼时段；call_no_phone：无手机号"}}
Collector = Depends(require_roles(COLLECTIONS_STAFF))


class CallRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    out_call_no: str
    staff_id: int
    customer_id: int
    subject_kind: str | None = Field(description="collection_case，或为空（直接拨打客户）")
    subject_id: int | None
    phone_masked: str
    status: str = Field(description="queued | dialing | finished | failed")
    result: str | None = Field(description="answered | no_answer | busy | unreachable | rejected | failed")
    duration_seconds: int | None
    recording_url: str | None
    error: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None


class CallCreate(BaseModel):
    customer_id: int


@router.post("/calls", response_model=CallRead, status_code=201, summary="拨打客户（服务器拨号）", responses=_refused)
def place_call(body: CallCreate, session: SessionDep, caller: ApiCaller = Collector) -> CallRead:
    customers.get_customer(session, caller.viewer, body.customer_id)
    return CallRead.model_validate(calls.place_call(session, staff_id=caller.viewer.staff_id,
                                                    customer_id=body.customer_id))


@router.post("/cases/{case_id}/calls", response_model=CallRead, status_code=201, summary="拨打催收案件的借款人",
             responses=_refused)
def call_case(case_id: int, session: SessionDep, caller: ApiCaller = Collector) -> CallRead:
    return CallRead.model_validate(case_calls.call_case(session, case_id, viewer=caller.viewer))


@router.get("/calls/{call_id}", response_model=CallRead, summary="一通电话的状态与结果")
def read_call(call_id: int, session: SessionDep, caller: ApiCaller = Collector) -> CallRead:
    call = session.get(TelephonyCall, call_id)
    if call is None or (call.staff_id != caller.viewer.staff_id and caller.viewer.role not in actions.CALLS_ALL):
        raise NotFound("通话记录不存在")
    return CallRead.model_validate(call)


@router.get("/calls", response_model=list[CallRead], summary="我的通话（最新在前）")
def my_calls(session: SessionDep, caller: ApiCaller = Collector, case_id: int | None = None,
             limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=100_000)) -> list[CallRead]:
    rows, _ = calls.list_calls(session, staff_id=caller.viewer.staff_id, subject_kind="collection_case" if case_id
                               else None, subject_id=case_id, limit=limit, offset=offset)
    return [CallRead.model_validate(call) for call, _, _ in rows]


def _legacy_routes() -> None:
    for route in router.routes:
        legacy.add_api_route(route.path.removeprefix(router.prefix), route.endpoint, methods=list(route.methods),
                             response_model=route.response_model, status_code=route.status_code)


_legacy_routes()
