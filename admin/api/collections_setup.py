"""Staff JSON API of collections management (贷后管理), with the console pages' permissions: allocation rules
(list, a preview of how many cases each collector would get, apply), scripts (话术), outsourcing agencies
(list, assign a case, recall it) and the analysis (催收分析), within the caller's data scope. A case out of the
caller's scope is 404; a role without the permission is 403."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from admin import nav
from admin.api.deps import ERROR_RESPONSES, ApiCaller, require_roles
from admin.schemas import ErrorBody
from core.web import SessionDep
from postloan import actions, allocation, analysis, rules
from postloan.agency import service as agencies
from postloan.models import CollectionScript

router = APIRouter(prefix="/api/v1/collections", tags=["collections"], responses=ERROR_RESPONSES)
Manager = Annotated[ApiCaller, Depends(require_roles(actions.MANAGERS))]
AgencyManager = Annotated[ApiCaller, Depends(require_roles(nav.AGENCY_MANAGERS))]
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "案件不存在或不在您的范围内"}}
_409: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "案件已委外或已结案"}}
Scope = Literal["unassigned", "all"]


class RuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    priority: int = Field(description="越小越先匹配")
    buckets: str | None = Field(description="账期，逗号分隔；空：任意")
    risk_tiers: str | None = Field(description="风险等级，逗号分隔；空：任意")
    min_amount: int | None = Field(description="逾期金额下限（分）")
    max_amount: int | None = Field(description="逾期金额上限（分）")
    region: str | None
    product_id: int | None
    group_id: int
    balance_by: str = Field(description="count（按案件数）| balance（按金额）")
    reassign_after_days: int | None
    active: bool


class PreviewRow(BaseModel):
    staff_id: int
    name: str
    current: int = Field(description="现有在催案件数")
    new: int = Field(description="本次将分到")
    lose: int = Field(description="本次将移出（重新均衡）")
    after: int


class PreviewRead(BaseModel):
    scope: Scope
    moves: int = Field(description="将换手的案件数")
    unassigned: int = Field(description="没有催收员能接的案件数")
    rows: list[PreviewRow]


class ApplyBody(BaseModel):
    scope: Scope = Field("unassigned", description="unassigned：待分配的案件；all：全部在催案件（重新均衡）")


class ApplyRead(BaseModel):
    changed: int = Field(description="换手的案件数")


class ScriptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    bucket: str | None = Field(description="账期；空：任意")
    risk_tier: str | None = Field(description="风险等级；空：任意")
    body: str = Field(description="含 {变量} 的话术正文")
    active: bool


class AgencyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    commission_rate: Decimal = Field(description="佣金比例（回收金额的比例，如 0.15）")
    active: bool


class AssignmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    agency_id: int
    commission_rate: Decimal
    assigned_at: datetime
    recalled_at: datetime | None
    recall_reason: str | None


class AgencyAssign(BaseModel):
    case_id: int


class RecallBody(BaseModel):
    reason: str | None = Field(None, max_length=200)


class StatRead(BaseModel):
    key: int | str | None
    label: str
    cases: int
    contacted: int
    promised: int
    kept: int
    decided: int
    recovered: int = Field(description="回收金额（分）")
    still_overdue: int = Field(description="仍逾期（分）")
    contact_rate: Decimal | None
    promise_rate: Decimal | None
    kept_rate: Decimal | None
    recovery_rate: Decimal | None


class CallStatRead(BaseModel):
    label: str
    calls: int
    answered: int
    talk_seconds: int
    connect_rate: Decimal | None


class OverdueRead(BaseModel):
    label: str
    loans: int
    overdue: int
    overdue_amount: int = Field(description="在催逾期金额（分）")
    rate: Decimal | None = Field(description="逾期率")
    recovered: int = Field(description="回收金额（分）")
    still_overdue: int
    recovery_rate: Decimal | None


class AnalysisRead(BaseModel):
    opened_from: date
    opened_to: date
    collectors: list[StatRead]
    groups: list[StatRead]
    agencies: list[StatRead]
    buckets: list[StatRead]
    calls: list[CallStatRead]
    regions: list[OverdueRead]
    industries: list[OverdueRead]
    types: list[OverdueRead]


def _read(model: type[BaseModel], row: Any) -> Any:
    """A dataclass row with its computed rates as the response model."""
    return model(**{name: getattr(row, name) for name in model.model_fields})


@router.get("/rules", response_model=list[RuleRead], summary="分案规则（经理、管理员）")
def list_rules(session: SessionDep, caller: Manager) -> list[RuleRead]:
    return [RuleRead.model_validate(r) for r in rules.rules(session)]


@router.get("/rules/preview", response_model=PreviewRead, summary="按规则分配的预览：每位催收员将分到几件（不写入）")
def preview_rules(session: SessionDep, caller: Manager, scope: Scope = Query("unassigned")) -> PreviewRead:
    the_plan = allocation.plan(session, scope=scope)
    return PreviewRead(scope=scope, moves=len(the_plan.assignments), unassigned=the_plan.unassigned,
                       rows=[_read(PreviewRow, r) for r in allocation.preview(session, the_plan)])


@router.post("/rules/apply", response_model=ApplyRead, summary="按规则分配")
def apply_rules(body: ApplyBody, session: SessionDep, caller: Manager) -> ApplyRead:
    changed = allocation.apply(session, allocation.plan(session, scope=body.scope),
                               by_staff_id=caller.viewer.staff_id, note="按规则分配")
    return ApplyRead(changed=changed)


@router.get("/scripts", response_model=list[ScriptRead], summary="话术（经理、管理员）")
def list_scripts(session: SessionDep, caller: Manager) -> list[ScriptRead]:
    rows = session.scalars(select(CollectionScript).order_by(CollectionScript.bucket, CollectionScript.id))
    return [ScriptRead.model_validate(s) for s in rows]


@router.get("/agencies", response_model=list[AgencyRead], summary="委外机构")
def list_agencies(session: SessionDep, caller: AgencyManager) -> list[AgencyRead]:
    return [AgencyRead.model_validate(a) for a in agencies.agencies(session)]


@router.post("/agencies/{agency_id}/cases", response_model=AssignmentRead, status_code=201,
             responses={**_404, **_409}, summary="把案件委外给机构（按机构当前佣金比例）")
def assign_to_agency(agency_id: int, body: AgencyAssign, session: SessionDep, caller: AgencyManager) -> AssignmentRead:
    return AssignmentRead.model_validate(agencies.assign(session, caller.viewer, case_id=body.case_id,
                                                         agency_id=agency_id))


@router.post("/cases/{case_id}/recall", response_model=AssignmentRead, responses=_404, summary="收回委外案件")
def recall_from_agency(case_id: int, session: SessionDep, caller: AgencyManager,
                       body: RecallBody | None = None) -> AssignmentRead:
    return AssignmentRead.model_validate(agencies.recall(session, caller.viewer, case_id=case_id,
                                                         reason=(body.reason or "") if body else ""))


@router.get("/analysis", response_model=AnalysisRead, summary="催收分析（按开案日期；限于数据范围）")
def read_analysis(session: SessionDep, caller: Manager,
                  opened_from: str | None = Query(None, alias="from", description="YYYY-MM-DD，默认 90 天前"),
                  opened_to: str | None = Query(None, alias="to", description="YYYY-MM-DD，默认今天")) -> AnalysisRead:
    start, to = analysis.date_range(opened_from, opened_to)
    t = analysis.tables(session, caller.viewer, start, to)
    stat = {k: [_read(StatRead, r) for r in t[k]] for k in ("collectors", "groups", "agencies", "buckets")}
    overdue = {k: [_read(OverdueRead, r) for r in t[k]] for k in ("regions", "industries", "types")}
    return AnalysisRead(opened_from=start, opened_to=to, calls=[_read(CallStatRead, c) for c in t["calls"]],
                        **stat, **overdue)
