"""Tags (标签) in the staff JSON API: the library, and tagging customers in bulk (data-scoped)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from admin.api.deps import ERROR_RESPONSES, ApiCaller, Caller, require_roles
from admin.schemas import ErrorBody
from core.web import SessionDep
from crm import tags
from crm.models import Tag, TagGroup

router = APIRouter(prefix="/api/v1/tags", tags=["tags"], responses=ERROR_RESPONSES)

Editor = Annotated[ApiCaller, Depends(require_roles(tags.TAG_MANAGERS))]
REFUSED = {403: {"model": ErrorBody, "description": "只有系统管理员、经理或主管可以维护标签库"},
           409: {"model": ErrorBody, "description": "同名标签或标签组已存在；标签组内还有标签"},
           422: {"model": ErrorBody, "description": "名称为空、过长或含不允许的字符"}}
NOT_FOUND = {404: {"model": ErrorBody, "description": "标签或标签组不存在"}}


class TagRead(BaseModel):
    id: int
    group_id: int
    name: str
    wecom_tag_id: str | None = Field(description="the WeCom corp tag this tag mirrors, if any")
    customers: int | None = Field(None, description="customers carrying it (in the library listing)")

    @classmethod
    def of(cls, tag: Tag, customers: int | None = None) -> TagRead:
        return cls(id=tag.id, group_id=tag.group_id, name=tag.name, wecom_tag_id=tag.wecom_tag_id, customers=customers)


class GroupRead(BaseModel):
    id: int
    name: str
    sort: int
    wecom_group_id: str | None
    tags: list[TagRead] = []

    @classmethod
    def of(cls, group: TagGroup, tag_rows: list[TagRead] | None = None) -> GroupRead:
        return cls(id=group.id, name=group.name, sort=group.sort, wecom_group_id=group.wecom_group_id,
                   tags=tag_rows or [])


class GroupCreate(BaseModel):
    name: str = Field(max_length=30, examples=["意向程度"])
    sort: int = 0


class TagCreate(BaseModel):
    group_id: int
    name: str = Field(max_length=30, examples=["高意向"])


class Rename(BaseModel):
    name: str = Field(max_length=30)


class Tagging(BaseModel):
    customer_ids: list[int] = Field(min_length=1, max_length=tags.MAX_BULK)
    tag_ids: list[int] = Field(min_length=1, max_length=tags.MAX_TAGS_PER_CALL)


class TaggingResult(BaseModel):
    changed: int = Field(description="(customer, tag) pairs added or removed")
    customers: int = Field(description="customers whose tags changed")
    unchanged: int = Field(description="pairs already as asked (tagging is idempotent)")
    skipped_ids: list[int] = Field(description="customers not found or outside the caller's data scope")


@router.get("", response_model=list[GroupRead], summary="标签库（标签组与标签，含使用人数）")
def library(session: SessionDep, caller: Caller) -> list[GroupRead]:
    return [GroupRead.of(g.group, [TagRead.of(t, g.usage.get(t.id, 0)) for t in g.tags])
            for g in tags.list_groups(session, with_usage=True)]


@router.post("/groups", response_model=GroupRead, status_code=201, summary="新建标签组", responses=REFUSED)
def create_group(session: SessionDep, caller: Editor, body: GroupCreate) -> GroupRead:
    return GroupRead.of(tags.create_group(session, caller.viewer, body.name, sort=body.sort))


@router.patch("/groups/{group_id}", response_model=GroupRead, summary="标签组改名",
              responses={**REFUSED, **NOT_FOUND})
def rename_group(session: SessionDep, caller: Editor, group_id: int, body: Rename) -> GroupRead:
    return GroupRead.of(tags.rename_group(session, caller.viewer, group_id, body.name))


@router.delete("/groups/{group_id}", status_code=204, summary="删除标签组（须先删除组内标签）",
               responses={**REFUSED, **NOT_FOUND})
def delete_group(session: SessionDep, caller: Editor, group_id: int) -> Response:
    tags.delete_group(session, caller.viewer, group_id)
    return Response(status_code=204)


@router.post("", response_model=TagRead, status_code=201, summary="新建标签", responses={**REFUSED, **NOT_FOUND})
def create_tag(session: SessionDep, caller: Editor, body: TagCreate) -> TagRead:
    return TagRead.of(tags.create_tag(session, caller.viewer, body.group_id, body.name))


@router.patch("/{tag_id}", response_model=TagRead, summary="标签改名", responses={**REFUSED, **NOT_FOUND})
def rename_tag(session: SessionDep, caller: Editor, tag_id: int, body: Rename) -> TagRead:
    return TagRead.of(tags.rename_tag(session, caller.viewer, tag_id, body.name))


@router.delete("/{tag_id}", status_code=204, summary="删除标签（从所有客户移除）", responses={**REFUSED, **NOT_FOUND})
def delete_tag(session: SessionDep, caller: Editor, tag_id: int) -> Response:
    tags.delete_tag(session, caller.viewer, tag_id)
    return Response(status_code=204)


@router.post("/customers", response_model=TaggingResult, summary="批量打标签（幂等，按数据范围）",
             responses=NOT_FOUND)
def tag_customers(session: SessionDep, caller: Caller, body: Tagging) -> TaggingResult:
    result = tags.tag_customers(session, caller.viewer, body.customer_ids, body.tag_ids)
    return TaggingResult(changed=result.changed, customers=result.customers, unchanged=result.unchanged,
                         skipped_ids=result.skipped_ids)


@router.post("/customers/remove", response_model=TaggingResult, summary="批量移除标签（幂等，按数据范围）",
             responses=NOT_FOUND)
def untag_customers(session: SessionDep, caller: Caller, body: Tagging) -> TaggingResult:
    result = tags.untag_customers(session, caller.viewer, body.customer_ids, body.tag_ids)
    return TaggingResult(changed=result.changed, customers=result.customers, unchanged=result.unchanged,
                         skipped_ids=result.skipped_ids)
