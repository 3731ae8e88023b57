"""The staff JSON API's request and response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import object_session

from crm.models import Department, Staff
from crm.permissions import role_label, role_name


class ErrorBody(BaseModel):
    code: str = Field(description="stable error code for programs")
    message: str = Field(description="Chinese message for people")


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    data_scope: str
    department_id: int
    department_name: str
    wecom_userid: str | None
    region: str | None
    capacity: int
    level: int
    status: str
    mobile_masked: str | None = Field(description="masked mobile, e.g. 138****8001; the plaintext is never served")
    last_login_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, staff: Staff) -> StaffRead:
        return cls(
            id=staff.id, username=staff.username, display_name=staff.display_name, role=staff.role,
            role_label=role_label(role_name(object_session(staff), staff.role)), data_scope=staff.data_scope,
            department_id=staff.department_id, department_name=staff.department.name,
            wecom_userid=staff.wecom_userid, region=staff.region, capacity=staff.capacity, level=staff.level,
            status=staff.status, mobile_masked=staff.mobile_masked, last_login_at=staff.last_login_at,
            created_at=staff.created_at,
        )


class StaffPage(BaseModel):
    items: list[StaffRead]
    total: int
    page: int
    page_size: int


class StaffCreate(BaseModel):
    username: str = Field(max_length=64, examples=["zhangsan"])
    display_name: str = Field(max_length=64, examples=["张三"])
    role: str = Field(description="admin | manager | supervisor | sales | risk | finance | collector, or a custom "
                      "role's key (custom_<id>, 设置 › 角色权限)")
    department_id: int
    data_scope: str | None = Field(None, description="own | department | all; default by role")
    password: str | None = Field(None, description="≥ 10 characters, not a common password, not containing the username; "
                                     "none: no console login")
    wecom_userid: str | None = Field(None, max_length=64)
    region: str | None = Field(None, max_length=40)
    capacity: int = 200
    level: int = 1
    mobile: str | None = Field(None, description="mainland mobile; stored encrypted, served masked")


class DepartmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    parent_id: int | None
    path: str = Field(description="materialised path of ids, '/1/4/9/'")

    @classmethod
    def of(cls, dept: Department) -> DepartmentRead:
        return cls.model_validate(dept)
