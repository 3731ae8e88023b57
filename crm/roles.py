"""Custom roles (自定义角色): built from named permissions (:mod:`crm.permissions`) and a data scope.

The built-in roles are presets: shown with what they hold, never edited or deleted, and a custom role may
start as a copy of one. Holders of a custom role carry its key in ``Staff.role`` and its data scope in
``Staff.data_scope`` (changing the role's scope changes theirs, in the same transaction), so every existing
role check and scope filter applies to them unchanged. Every change is audit-logged; a role somebody holds
cannot be deleted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import AppError, PermissionDenied
from crm.exceptions import ValidationFailed
from crm.models import DATA_SCOPE_LABELS, DEFAULT_SCOPE, ROLE_LABELS, CustomRole, DataScope, Role, Staff
from crm.permissions import BUILTIN_ROLES, Preset, builtin_permissions, catalogue, get, permission
from crm.scope import Viewer

ROLE_EDITORS = permission("roles.manage", "角色权限管理", "新建、编辑、删除自定义角色", {Role.ADMIN})


class RoleNotFound(AppError):
    code = "role_not_found"
    status = 404
    message = "角色不存在"


class RoleInUse(AppError):
    code = "role_in_use"
    status = 409
    message = "该角色仍有员工在使用，不能删除"


class RoleNameTaken(AppError):
    code = "role_name_taken"
    status = 409
    message = "已有同名角色"


@dataclass
class RoleInput:
    name: str
    permissions: list[str] = field(default_factory=list)
    data_scope: str = DataScope.OWN
    description: str | None = None
    based_on: str | None = None


def presets() -> list[Preset]:
    """The built-in roles, each with the permissions it holds and its default data scope."""
    return [Preset(r.value, ROLE_LABELS[r.value], str(DEFAULT_SCOPE[r]), builtin_permissions(r.value)) for r in Role]


def list_roles(session: Session) -> list[CustomRole]:
    return list(session.scalars(select(CustomRole).order_by(CustomRole.name)))


def holder_counts(session: Session) -> dict[str, int]:
    """How many staff hold each role (built-in and custom), departed staff included (their history does)."""
    return dict(session.execute(select(Staff.role, func.count()).group_by(Staff.role)).all())


def get_role(session: Session, role_id: int) -> CustomRole:
    row = session.get(CustomRole, role_id)
    if row is None:
        raise RoleNotFound()
    return row


def choices(session: Session) -> dict[str, str]:
    """Every role a staff member may be given: built-in first, then the custom roles, key -> name."""
    return {**ROLE_LABELS, **{r.key: r.name for r in list_roles(session)}}


def _ensure_editor(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in ROLE_EDITORS:
        raise PermissionDenied("只有系统管理员可以管理角色")


def _validate(session: Session, data: RoleInput, *, role_id: int | None = None) -> tuple[str, list[str], str]:
    name = (data.name or "").strip()
    if not name or len(name) > 40:
        raise ValidationFailed("角色名称必填，最多 40 个字", field="name")
    if name in ROLE_LABELS.values():
        raise RoleNameTaken(f"“{name}”是内置角色的名称，请换一个", field="name")
    clash = session.scalar(select(CustomRole.id).where(CustomRole.name == name, CustomRole.id != (role_id or 0)))
    if clash:
        raise RoleNameTaken(field="name")
    known = {p.key for p in catalogue()}
    unknown = [k for k in data.permissions if k not in known]
    if unknown:
        raise ValidationFailed(f"未知权限：{'、'.join(unknown)}", field="permissions")
    if not data.permissions:
        raise ValidationFailed("请至少选择一项权限", field="permissions")
    try:
        scope = DataScope(data.data_scope)
    except ValueError as exc:
        raise ValidationFailed(f"未知数据范围：{data.data_scope}", field="data_scope") from exc
    if data.based_on and data.based_on not in BUILTIN_ROLES:
        raise ValidationFailed("只能从内置角色复制", field="based_on")
    if data.description and len(data.description) > 200:
        raise ValidationFailed("说明最多 200 个字", field="description")
    return name, sorted(set(data.permissions), key=lambda k: [p.key for p in catalogue()].index(k)), str(scope)


def _snapshot(row: CustomRole) -> dict[str, object]:
    return {"name": row.name, "permissions": "、".join(getattr(get(k), "label", k) for k in row.permissions),
            "data_scope": DATA_SCOPE_LABELS.get(row.data_scope, row.data_scope), "description": row.description}


def create_role(session: Session, viewer: Viewer | None, data: RoleInput) -> CustomRole:
    _ensure_editor(viewer)
    name, perms, scope = _validate(session, data)
    now = clock.now()
    row = CustomRole(key=f"tmp_{secrets.token_hex(5)}", name=name, description=(data.description or "").strip()
                     or None, permissions=perms, data_scope=scope, based_on=data.based_on or None,
                     created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:  # the same name saved at the same moment by someone else
        raise RoleNameTaken(field="name") from exc
    row.key = f"custom_{row.id}"
    session.flush()
    audit.record(session, "role.create", entity_type="custom_role", entity_id=row.id, after=_snapshot(row))
    return row


def update_role(session: Session, viewer: Viewer | None, role_id: int, data: RoleInput) -> CustomRole:
    """Save the role; a new data scope is applied to everyone holding it (their next request sees it)."""
    _ensure_editor(viewer)
    row = get_role(session, role_id)
    name, perms, scope = _validate(session, data, role_id=role_id)
    before = _snapshot(row)
    row.name, row.permissions, row.data_scope = name, perms, scope
    row.description = (data.description or "").strip() or None
    row.updated_at = clock.now()
    session.execute(update(Staff).where(Staff.role == row.key).values(data_scope=scope))
    session.flush()
    after = _snapshot(row)
    changed = [k for k in after if after[k] != before[k]]
    if changed:
        audit.record(session, "role.update", entity_type="custom_role", entity_id=row.id,
                     before={k: before[k] for k in changed}, after={k: after[k] for k in changed})
    return row


def delete_role(session: Session, viewer: Viewer | None, role_id: int) -> None:
    _ensure_editor(viewer)
    row = get_role(session, role_id)
    holders = session.scalar(select(func.count()).select_from(Staff).where(Staff.role == row.key)) or 0
    if holders:
        raise RoleInUse(f"“{row.name}”仍有 {holders} 名员工在使用（含已离职），请先为他们改派角色")
    audit.record(session, "role.delete", entity_type="custom_role", entity_id=row.id, before=_snapshot(row))
    session.delete(row)
    session.flush()


def custom_scope(session: Session, key: str) -> str | None:
    """A custom role's data scope (None: not a custom role)."""
    return session.scalar(select(CustomRole.data_scope).where(CustomRole.key == key))
