"""Staff and organisation: departments as a tree, staff, console sessions, API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core import pii_rotation
from core.db import Base

__all__ = [
    "DEFAULT_SCOPE", "DATA_SCOPE_LABELS", "CustomRole", "DEPARTMENT_KIND_LABELS", "ROLE_LABELS", "ApiToken", "DataScope",
    "Department", "DepartmentKind", "Role", "Staff", "StaffSession", "StaffStatus",
]


class DepartmentKind(StrEnum):
    COMPANY = "company"
    CENTER = "center"
    BRANCH = "branch"
    TEAM = "team"


DEPARTMENT_KIND_LABELS = {"company": "公司", "center": "中心", "branch": "分部", "team": "团队"}


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SUPERVISOR = "supervisor"
    SALES = "sales"
    RISK = "risk"
    FINANCE = "finance"
    COLLECTOR = "collector"


ROLE_LABELS = {
    "admin": "系统管理员", "manager": "经理", "supervisor": "主管", "sales": "销售",
    "risk": "风控", "finance": "财务", "collector": "催收",
}


class DataScope(StrEnum):
    OWN = "own"
    DEPARTMENT = "department"  # the staff member's department and everything under it
    ALL = "all"


DATA_SCOPE_LABELS = {"own": "仅本人", "department": "本部门及下级", "all": "全部"}

# The scope a role gets unless an admin sets another one.
DEFAULT_SCOPE = {
    Role.ADMIN: DataScope.ALL, Role.MANAGER: DataScope.DEPARTMENT, Role.SUPERVISOR: DataScope.DEPARTMENT,
    Role.SALES: DataScope.OWN, Role.RISK: DataScope.ALL, Role.FINANCE: DataScope.ALL,
    Role.COLLECTOR: DataScope.OWN,
}


class StaffStatus(StrEnum):
    ACTIVE = "active"
    DEPARTED = "departed"


class Department(Base):
    __tablename__ = "department"
    __table_args__ = (Index("ix_department_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    # Materialised path of ids, "/1/4/9/": a subtree is one indexed prefix match.
    path: Mapped[str] = mapped_column(String(400), default="/")
    wecom_department_id: Mapped[int | None] = mapped_column(unique=True)
    created_at: Mapped[datetime]

    parent: Mapped[Department | None] = relationship(remote_side=[id])


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        Index("ix_staff_department_status", "department_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    data_scope: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    region: Mapped[str | None] = mapped_column(String(40))
    capacity: Mapped[int] = mapped_column(default=200)  # most private customers this person may hold
    level: Mapped[int] = mapped_column(default=1)  # weight in capacity-weighted allocation
    status: Mapped[str] = mapped_column(String(16), default=StaffStatus.ACTIVE)
    mobile_enc: Mapped[str | None] = mapped_column(String(200))
    mobile_index: Mapped[str | None] = mapped_column(String(64), index=True)
    mobile_masked: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    onboarding_dismissed_at: Mapped[datetime | None]  # the admin closed the first-login checklist (开通向导)
    departed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    department: Mapped[Department] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status == StaffStatus.ACTIVE


pii_rotation.register(Staff.mobile_enc, "phone")


class StaffSession(Base):
    """A console login. The cookie carries a random token; only its SHA-256 is stored."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    staff: Mapped[Staff] = relationship()


class ApiToken(Base):
    """A bearer token for the staff JSON API; shown once at creation, stored as SHA-256."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(80))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    staff: Mapped[Staff] = relationship()


class CustomRole(Base):
    """A role an admin built (自定义角色): named permissions (crm.permissions) and a data scope. Its holders
    carry ``key`` in ``Staff.role``; the built-in roles are not rows (they are :class:`Role`)."""

    __tablename__ = "custom_role"
    __table_args__ = (CheckConstraint("data_scope IN ('own', 'department', 'all')", name="data_scope_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(16), unique=True)  # "custom_<id>", what Staff.role holds
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str | None] = mapped_column(String(200))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    data_scope: Mapped[str] = mapped_column(String(16))
    based_on: Mapped[str | None] = mapped_column(String(16))  # the built-in preset it was copied from
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
