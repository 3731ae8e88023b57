"""Staff JSON API of collections (贷后催收): the case queue, a case with its history and its script, take, one-click outcomes
(promise with date and amount), assignment and write-off. Out of scope is 404; a case already taken is 409."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from admin.api.deps import ERROR_RESPONSES, Caller
from admin.schemas import ErrorBody
from core.web import SessionDep
from postloan import cases, scripts

router = APIRouter(prefix="/api/v1/collections", tags=["collections"], responses=ERROR_RESPONSES)

_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "案件不存在或不在您的范围内"}}
_409: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "案件已被领取或已结案"}}
_422: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody, "description": "输入不正确"}}


class CaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    customer_id: int
    status: str = Field(description="open | closed")
    close_reason: str | None = Field(description="cured | paid_off | written_off")
    bucket: str
    overdue_days: int
    overdue_amount: int = Field(description="逾期应还（分）")
    outstanding_amount: int = Field(description="未还合计（分）")
    risk_tier: str = Field(description="low | medium | high")
    region: str | None
    collector_staff_id: int | None
    opened_date: date
    closed_at: datetime | None


class QueueItem(CaseRead):
    customer_phone_masked: str | None
    collector_name: str | None


class HistoryItem(BaseModel):
    at: datetime
    kind: str = Field(description="call | message | promise | note | assign")
    outcome: str | None
    note: str | None
    staff_name: str | None
    promised_date: date | None = None
    promised_amount: int | None = None
    promise_status: str | None = Field(None, description="open | kept | broken")


class CaseDetail(CaseRead):
    history: list[HistoryItem]
    script_name: str | None = Field(None, description="适用的话术（按账期与风险等级）；无则为空")
    script_text: str | None = Field(None, description="话术正文，变量已代入（称呼、逾期金额、逾期天数、下一还款日…）")


class OutcomeCreate(BaseModel):
    outcome: str = Field(description="promise | dispute | wrong_number | unreachable | paid")
    note: str | None = Field(None, max_length=500)
    promised_date: date | None = Field(None, description="承诺还款日期（outcome=promise 时必填）")
    promised_amount: int | None = Field(None, description="承诺还款金额（分，outcome=promise 时必填）")


class AssignBody(BaseModel):
    collector_id: int | None = Field(description="催收员；null 取消分配")


class CloseBody(BaseModel):
    reason: str = Field(description="written_off（经理核销）| cured | paid_off")
    note: str | None = Field(None, max_length=200)


def _detail(session: SessionDep, case: Any) -> CaseDetail:
    history = [HistoryItem(at=h.at, kind=h.kind, outcome=h.outcome, note=h.note, staff_name=h.staff_name,
                           promised_date=h.promise.promised_date if h.promise else None,
                           promised_amount=h.promise.promised_amount if h.promise else None,
                           promise_status=h.promise.status if h.promise else None)
               for h in cases.history_of(session, case)]
    script, text = scripts.render_for(session, case)
    return CaseDetail(**CaseRead.model_validate(case).model_dump(), history=history,
                      script_name=script.name if script else None, script_text=text)


@router.get("/cases", response_model=list[QueueItem], summary="催收案件队列（催收员：自己的与待领取的；经理：数据范围内全部）")
def queue(session: SessionDep, caller: Caller, status: str = Query("open", description="open | closed"),
          bucket: str | None = Query(None), risk_tier: str | None = Query(None), mine: bool = Query(False),
          unassigned: bool = Query(False), limit: int = Query(50, ge=1, le=200),
          offset: int = Query(0, ge=0, le=100_000)) -> list[QueueItem]:
    rows = cases.queue(session, caller.viewer, status=status, bucket=bucket, risk_tier=risk_tier, mine=mine,
                       unassigned=unassigned, limit=limit, offset=offset)
    return [QueueItem(**CaseRead.model_validate(r.case).model_dump(), customer_phone_masked=r.phone_masked,
                      collector_name=r.collector_name) for r in rows]


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=_404, summary="案件与全部记录")
def get_case(case_id: int, session: SessionDep, caller: Caller) -> CaseDetail:
    return _detail(session, cases.get_case(session, caller.viewer, case_id))


@router.post("/cases/{case_id}/take", response_model=CaseRead, responses={**_404, **_409},
             summary="领取待分配的案件（两人同时领取，只有一人成功）")
def take(case_id: int, session: SessionDep, caller: Caller) -> CaseRead:
    return CaseRead.model_validate(cases.take_case(session, case_id, viewer=caller.viewer))


@router.post("/cases/{case_id}/outcomes", response_model=CaseDetail, status_code=201,
             responses={**_404, **_409, **_422}, summary="一键登记催收结果")
def record_outcome(case_id: int, body: OutcomeCreate, session: SessionDep, caller: Caller) -> CaseDetail:
    cases.record_outcome(session, case_id, viewer=caller.viewer, outcome=body.outcome, note=body.note,
                         promised_date=body.promised_date, promised_amount=body.promised_amount)
    return _detail(session, cases.get_case(session, caller.viewer, case_id))


@router.post("/cases/{case_id}/collector", response_model=CaseRead, responses={**_404, **_409, **_422},
             summary="分配案件（经理、管理员）")
def assign(case_id: int, body: AssignBody, session: SessionDep, caller: Caller) -> CaseRead:
    return CaseRead.model_validate(cases.assign_case(session, case_id, body.collector_id, viewer=caller.viewer))


@router.post("/cases/{case_id}/close", response_model=CaseRead, responses={**_404, **_409, **_422},
             summary="结案（核销须经理、管理员）")
def close(case_id: int, body: CloseBody, session: SessionDep, caller: Caller) -> CaseRead:
    return CaseRead.model_validate(cases.close_case(session, case_id, body.reason, viewer=caller.viewer,
                                                    note=body.note))
