"""Customer segments (客户分群) in the staff JSON API: preview a rule, and save, read, change and
delete segments. Counts and members are always limited to the caller's data scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from admin import nav
from admin.api.deps import ERROR_RESPONSES, ApiCaller, require_roles
from admin.schemas import ErrorBody
from core.web import SessionDep
from crm import segments
from crm.models import Segment

router = APIRouter(prefix="/api/v1/segments", tags=["segments"], responses=ERROR_RESPONSES)

SEGMENT_USERS = nav.TAG_USERS
User = Annotated[ApiCaller, Depends(require_roles(SEGMENT_USERS))]

RULE_DOC = (
    'Rule tree: {"op": "and" | "or", "rules": [condition or nested group, …]}, at most 4 levels and 50 '
    'conditions. A condition is {"field", "cmp", "value"}. Fields and operators: tags has_any | has_all | '
    'has_none [tag ids]; grade in | not_in [codes]; stage in | not_in [codes]; region in [names] | equals name; '
    'customer_type in; source in; demand_amount gte | lte yuan ("50000.00" or an integer, never a float) | '
    'between [low, high]; created_at | assigned_at | last_followup_at | next_followup_at before | after '
    '"YYYY-MM-DD" (Asia/Shanghai, exclusive), within_days | older_than_days N, is_empty | not_empty; owner in '
    '[staff ids]; department in [department ids] (the owner in that subtree); status in [owned, pool, blacklist]. '
    "Without a status condition, blacklisted customers are left out."
)
EXAMPLE_RULE = {"op": "and", "rules": [{"field": "tags", "cmp": "has_any", "value": [3]},
                                       {"field": "grade", "cmp": "in", "value": ["A", "B"]},
                                       {"field": "region", "cmp": "equals", "value": "上海"}]}
REFUSED = {422: {"model": ErrorBody, "description": "规则不正确（code invalid_segment_rule，中文说明哪一项错在哪里）"}}
NOT_FOUND = {404: {"model": ErrorBody, "description": "分群不存在"}}


class PreviewRequest(BaseModel):
    rule: dict[str, Any] = Field(description=RULE_DOC, examples=[EXAMPLE_RULE])
    page: int = Field(1, ge=1)
    page_size: int = Field(20, ge=1, le=200)


class MemberRead(BaseModel):
    id: int
    name: str
    phone_masked: str | None = Field(description="masked, e.g. 138****5678; the plaintext is never served")
    grade: str | None
    stage: str
    status: str
    region: str | None
    owner_name: str | None
    demand_amount: int | None = Field(description="fen")


class PreviewRead(BaseModel):
    total: int = Field(description="customers the rule selects within the caller's data scope")
    page: int
    page_size: int
    members: list[MemberRead]


class SegmentWrite(BaseModel):
    name: str = Field(max_length=60, examples=["上海高意向"])
    rule: dict[str, Any] = Field(description=RULE_DOC, examples=[EXAMPLE_RULE])
    description: str | None = Field(None, max_length=300)
    for_mass_message: bool = False
    for_group_routing: bool = False


class SegmentUpdate(BaseModel):
    name: str | None = Field(None, max_length=60)
    rule: dict[str, Any] | None = Field(None, description=RULE_DOC)
    description: str | None = Field(None, max_length=300)
    for_mass_message: bool | None = None
    for_group_routing: bool | None = None


class SegmentRead(BaseModel):
    id: int
    name: str
    description: str | None
    rule: dict[str, Any] = Field(description="normalised: amounts as yuan strings, dates ISO")
    for_mass_message: bool
    for_group_routing: bool
    created_by_staff_id: int | None
    created_at: datetime
    updated_at: datetime
    member_count: int | None = Field(None, description="members within the caller's scope (single reads only)")

    @classmethod
    def of(cls, s: Segment, member_count: int | None = None) -> SegmentRead:
        return cls(id=s.id, name=s.name, description=s.description, rule=s.rule, for_mass_message=s.for_mass_message,
                   for_group_routing=s.for_group_routing, created_by_staff_id=s.created_by_staff_id,
                   created_at=s.created_at, updated_at=s.updated_at, member_count=member_count)


@router.post("/preview", response_model=PreviewRead, summary="预览分群：人数与第一页客户（按数据范围，手机号脱敏）",
             responses=REFUSED)
def preview(session: SessionDep, caller: User, body: PreviewRequest) -> PreviewRead:
    result = segments.preview(session, caller.viewer, body.rule, page=body.page, page_size=body.page_size)
    return PreviewRead(total=result.total, page=result.page, page_size=result.page_size,
                       members=[MemberRead(**vars(m)) for m in result.members])


@router.get("", response_model=list[SegmentRead], summary="分群列表")
def list_segments(session: SessionDep, caller: User,
                  purpose: Annotated[str | None, Query(description="mass_message | group_routing")] = None
                  ) -> list[SegmentRead]:
    return [SegmentRead.of(s) for s in segments.list_segments(session, purpose=purpose)]


@router.post("", response_model=SegmentRead, status_code=201, summary="保存分群",
             responses={**REFUSED, 409: {"model": ErrorBody, "description": "同名分群已存在"}})
def create_segment(session: SessionDep, caller: User, body: SegmentWrite) -> SegmentRead:
    segment = segments.create_segment(session, caller.viewer, body.name, body.rule, description=body.description,
                                      for_mass_message=body.for_mass_message,
                                      for_group_routing=body.for_group_routing)
    return SegmentRead.of(segment)


@router.get("/{segment_id}", response_model=SegmentRead, summary="分群详情（含您数据范围内的人数）",
            responses=NOT_FOUND)
def read_segment(session: SessionDep, caller: User, segment_id: int) -> SegmentRead:
    segment = segments.get_segment(session, segment_id)
    return SegmentRead.of(segment, segments.member_count(session, segment, caller.viewer))


@router.patch("/{segment_id}", response_model=SegmentRead, summary="修改分群（创建人、经理或系统管理员）",
              responses={**NOT_FOUND, **REFUSED, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}})
def update_segment(session: SessionDep, caller: User, segment_id: int, body: SegmentUpdate) -> SegmentRead:
    segment = segments.update_segment(session, caller.viewer, segment_id, **body.model_dump(exclude_unset=True))
    return SegmentRead.of(segment)


@router.delete("/{segment_id}", status_code=204, summary="删除分群（创建人、经理或系统管理员）",
               responses={**NOT_FOUND, 403: {"model": ErrorBody}})
def delete_segment(session: SessionDep, caller: User, segment_id: int) -> Response:
    segments.delete_segment(session, caller.viewer, segment_id)
    return Response(status_code=204)
