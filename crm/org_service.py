"""Departments and staff: create, edit, move, depart. Services flush; the caller commits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import audit, clock, password_policy, pii
from core.security import constant_time_equals, hash_password, verify_password
from crm import permissions, scope
from crm.exceptions import (
    DepartmentNotFound,
    InvalidDepartmentTree,
    PermissionDenied,
    StaffNotFound,
    UsernameTaken,
    WeakPassword,
    WecomUserIdTaken,
)
from crm.models import DEFAULT_SCOPE, CustomRole, DataScope, Department, DepartmentKind, Role, Staff, StaffStatus
from crm.scope import Viewer

# A child's kind must rank below its parent's: company > center > branch > team.
# Who may own customers: the staff pickers of allocation, the pool's 分配给, handover successors and channel
# codes offer these roles only (a risk officer or a collector is never given leads).
# Who may own customers: be given leads, answer channel codes, receive a handover (the staff pickers offer them).
CUSTOMER_OWNER_ROLES = permissions.permission(
    "customers.own", "接待客户", "可被分配线索和公海客户、接待渠道活码、接收交接的客户", {Role.SALES, Role.SUPERVISOR},
    group="客户")


def owner_choices(session: Session, viewer: Viewer | None = None) -> list[Staff]:
    """Active staff who may own customers (within ``viewer``'s scope when given), by name."""
    stmt = select(Staff).where(Staff.status == StaffStatus.ACTIVE, Staff.role.in_(
        permissions.holder_roles(session, CUSTOMER_OWNER_ROLES)))
    if viewer is not None:
        stmt = stmt.where(scope.staff_filter(viewer))
    return list(session.scalars(stmt.order_by(Staff.display_name, Staff.id)))


_KIND_RANK = {DepartmentKind.COMPANY: 0, DepartmentKind.CENTER: 1, DepartmentKind.BRANCH: 2, DepartmentKind.TEAM: 3}


def create_department(session: Session, name: str, kind: str, parent_id: int | None) -> Department:
    name = name.strip()
    if not name:
        raise InvalidDepartmentTree("部门名称不能为空", field="name")
    try:
        kind_enum = DepartmentKind(kind)
    except ValueError as exc:
        raise InvalidDepartmentTree(f"未知的部门类型：{kind}", field="kind") from exc
    parent = None
    if parent_id is not None:
        parent = session.get(Department, parent_id)
        if parent is None:
            raise DepartmentNotFound()
        if _KIND_RANK[kind_enum] <= _KIND_RANK[DepartmentKind(parent.kind)]:
            raise InvalidDepartmentTree("下级部门的层级必须低于上级部门", field="kind")
    elif kind_enum != DepartmentKind.COMPANY:
        raise InvalidDepartmentTree("只有公司可以作为顶级部门", field="parent_id")
    dept = Department(name=name, kind=kind_enum, parent_id=parent_id, path="/", created_at=clock.now())
    session.add(dept)
    session.flush()
    dept.path = f"{parent.path if parent else '/'}{dept.id}/"
    session.flush()
    audit.record(session, "department.create", entity_type="department", entity_id=dept.id,
                 after={"name": name, "kind": kind_enum.value, "parent_id": parent_id})
    return dept


def get_department(session: Session, department_id: int) -> Department:
    dept = session.get(Department, department_id)
    if dept is None:
        raise DepartmentNotFound()
    return dept


def list_departments(session: Session, viewer: Viewer | None = None) -> list[Department]:
    stmt = select(Department).order_by(Department.path)
    if viewer is not None:
        stmt = stmt.where(scope.department_filter(viewer, Department.path))
    return list(session.scalars(stmt))


def branch_of(session: Session, department_id: int | None) -> Department | None:
    """The branch (分部) a department belongs to: itself or its nearest ancestor of kind branch; None above
    every branch (the company, a center)."""
    if department_id is None:
        return None
    department = session.get(Department, department_id)
    if department is None:
        return None
    ids = [int(part) for part in department.path.strip("/").split("/") if part]
    if department.id not in ids:
        ids.append(department.id)
    found = {d.id: d for d in session.scalars(select(Department).where(Department.id.in_(ids),
                                                                        Department.kind == DepartmentKind.BRANCH))}
    return next((found[i] for i in reversed(ids) if i in found), None)


def rename_department(session: Session, department_id: int, name: str) -> Department:
    dept = get_department(session, department_id)
    before = dept.name
    dept.name = name.strip() or before
    session.flush()
    audit.record(session, "department.rename", entity_type="department", entity_id=dept.id,
                 before={"name": before}, after={"name": dept.name})
    return dept


@dataclass
class StaffInput:
    username: str
    display_name: str
    role: str
    department_id: int
    password: str | None = None
    wecom_userid: str | None = None
    region: str | None = None
    capacity: int = 200
    level: int = 1
    mobile: str | None = None
    data_scope: str | None = None


_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")


def check_password_strength(password: str, username: str | None = None) -> None:
    """The policy of :mod:`core.password_policy`; :class:`WeakPassword` says which rule is broken."""
    broken = password_policy.problem(password, username)
    if broken:
        raise WeakPassword(f"{broken}（{password_policy.RULES}）", field="password")


def _validate(data: StaffInput, session: Session | None = None) -> tuple[str, DataScope, tuple[str, ...] | None]:
    """(role, data scope, the custom role's permission keys or None for a built-in role)."""
    from crm.exceptions import ValidationFailed

    if not _USERNAME_RE.match(data.username):
        raise ValidationFailed("登录名只能包含字母、数字、下划线、点和横线（2–64 位）", field="username")
    if not data.display_name.strip():
        raise ValidationFailed("姓名不能为空", field="display_name")
    custom = session.scalar(select(CustomRole).where(CustomRole.key == data.role)) if session is not None else None
    role: str
    if custom is not None:  # a custom role brings its own data scope
        role, data_scope = custom.key, DataScope(custom.data_scope)
    else:
        try:
            role = Role(data.role)
        except ValueError as exc:
            raise ValidationFailed(f"未知角色：{data.role}", field="role") from exc
        try:
            data_scope = DataScope(data.data_scope) if data.data_scope else DEFAULT_SCOPE[Role(role)]
        except ValueError as exc:
            raise ValidationFailed(f"未知数据范围：{data.data_scope}", field="data_scope") from exc
    if data.capacity < 0 or data.capacity > 100_000:
        raise ValidationFailed("客户容量必须在 0–100000 之间", field="capacity")
    if data.level < 1 or data.level > 100:
        raise ValidationFailed("等级权重必须在 1–100 之间", field="level")
    return role, data_scope, tuple(custom.permissions or ()) if custom is not None else None


def _ensure_unique(session: Session, data: StaffInput, staff_id: int | None = None) -> None:
    clash = session.scalar(select(Staff.id).where(Staff.username == data.username, Staff.id != (staff_id or 0)))
    if clash:
        raise UsernameTaken(field="username")
    if data.wecom_userid:
        clash = session.scalar(select(Staff.id).where(Staff.wecom_userid == data.wecom_userid,
                                                      Staff.id != (staff_id or 0)))
        if clash:
            raise WecomUserIdTaken(field="wecom_userid")


def _ensure_may_grant(viewer: Viewer | None, role: str, data_scope: DataScope,
                     custom: tuple[str, ...] | None = None) -> None:
    """Nobody grants more than they hold: only an admin grants the admin role, only the all-scope grants all,
    and a custom role by a role editor (an admin) or by someone holding each of its permissions."""
    if viewer is None:
        return
    from crm.roles import ROLE_EDITORS  # crm.roles defines the permission; it reads no org service

    may_grant_any = viewer.role in ROLE_EDITORS
    missing = [p.label for k in custom or ()
               if not may_grant_any and (p := permissions.get(k)) is not None and viewer.role not in p]
    if missing:
        raise PermissionDenied(f"您不能授予自己没有的权限：{'、'.join(missing)}")
    if role == Role.ADMIN and viewer.role != Role.ADMIN:
        raise PermissionDenied("只有系统管理员可以授予管理员角色")
    if data_scope == DataScope.ALL and viewer.scope != DataScope.ALL:
        raise PermissionDenied("您不能授予超出自己范围的“全部”数据权限")


def _ensure_may_manage(viewer: Viewer | None, staff: Staff) -> None:
    if viewer is not None and staff.role == Role.ADMIN and viewer.role != Role.ADMIN:
        raise PermissionDenied("只有系统管理员可以修改管理员账号")


def _ensure_department_in_scope(session: Session, viewer: Viewer | None, department_id: int) -> None:
    dept = get_department(session, department_id)
    if viewer is not None and viewer.scope != DataScope.ALL and not dept.path.startswith(viewer.department_path):
        raise scope.OutOfScope()


def create_staff(session: Session, data: StaffInput, viewer: Viewer | None = None) -> Staff:
    role, data_scope, custom = _validate(data, session)
    _ensure_may_grant(viewer, role, data_scope, custom)
    _ensure_department_in_scope(session, viewer, data.department_id)
    _ensure_unique(session, data)
    if data.password is not None:
        check_password_strength(data.password, data.username)
    staff = Staff(
        username=data.username, display_name=data.display_name.strip(), role=role, data_scope=data_scope,
        department_id=data.department_id, wecom_userid=data.wecom_userid or None, region=data.region or None,
        capacity=data.capacity, level=data.level, status=StaffStatus.ACTIVE,
        password_hash=hash_password(data.password) if data.password else None, created_at=clock.now(),
    )
    if data.mobile:
        _set_mobile(staff, data.mobile)
    session.add(staff)
    session.flush()
    audit.record(session, "staff.create", entity_type="staff", entity_id=staff.id,
                 after=_snapshot(staff))
    return staff


def _set_mobile(staff: Staff, mobile: str) -> None:
    sealed = pii.protect(pii.PHONE, mobile)
    staff.mobile_enc, staff.mobile_index, staff.mobile_masked = sealed.ciphertext, sealed.index, sealed.masked


def _snapshot(staff: Staff) -> dict[str, object]:
    return {
        "username": staff.username, "display_name": staff.display_name, "role": staff.role,
        "data_scope": staff.data_scope, "department_id": staff.department_id,
        "wecom_userid": staff.wecom_userid, "region": staff.region, "capacity": staff.capacity,
        "level": staff.level, "status": staff.status, "mobile": staff.mobile_masked,
    }


def get_staff(session: Session, staff_id: int, viewer: Viewer | None = None) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise StaffNotFound()
    if viewer is not None:
        scope.ensure_visible(session, viewer, staff.id)
    return staff


def active_viewer(session: Session, staff_id: int) -> Viewer | None:
    """The staff member's viewer as it is now; None when they are gone or no longer active."""
    staff = session.get(Staff, staff_id)
    return Viewer.of(staff) if staff is not None and staff.status == StaffStatus.ACTIVE else None


@dataclass(frozen=True)
class SessionsEnded:
    sessions: int
    api_tokens: int


def end_sessions_after_password_change(session: Session, staff_id: int, *, keep_session_id: int | None = None,
                                       revoke_api_tokens: bool = False) -> SessionsEnded:
    """A changed password ends every other console session of the staff member (whoever knew the old one
    is logged out), and their API tokens when asked to. ``keep_session_id``: the session that changed it."""
    from crm.models import ApiToken, StaffSession

    now = clock.now()
    live = [StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None)]
    if keep_session_id is not None:
        live.append(StaffSession.id != keep_session_id)
    sessions = session.execute(update(StaffSession).where(*live).values(revoked_at=now)
                               .execution_options(synchronize_session=False)).rowcount or 0
    tokens = 0
    if revoke_api_tokens:
        tokens = session.execute(update(ApiToken).where(ApiToken.staff_id == staff_id, ApiToken.revoked_at.is_(None))
                                 .values(revoked_at=now).execution_options(synchronize_session=False)).rowcount or 0
    session.flush()
    audit.record(session, "staff.sessions_ended", entity_type="staff", entity_id=staff_id,
                 detail=f"password changed: {sessions} sessions ended, {tokens} API tokens revoked")
    return SessionsEnded(sessions, tokens)


def update_staff(session: Session, staff_id: int, data: StaffInput, viewer: Viewer | None = None, *,
                 keep_session_id: int | None = None, revoke_api_tokens: bool = False) -> Staff:
    """Save the form; a new password ends the person's other sessions (and API tokens when asked)."""
    staff = get_staff(session, staff_id, viewer)
    _ensure_may_manage(viewer, staff)
    role, data_scope, custom = _validate(data, session)
    _ensure_may_grant(viewer, role, data_scope, custom)
    _ensure_department_in_scope(session, viewer, data.department_id)
    _ensure_unique(session, data, staff_id)
    before = _snapshot(staff)
    staff.username, staff.display_name = data.username, data.display_name.strip()
    staff.role, staff.data_scope, staff.department_id = role, data_scope, data.department_id
    staff.wecom_userid, staff.region = data.wecom_userid or None, data.region or None
    staff.capacity, staff.level = data.capacity, data.level
    if data.mobile:
        _set_mobile(staff, data.mobile)
    if data.password:
        check_password_strength(data.password, data.username)
        staff.password_hash = hash_password(data.password)
    session.flush()
    session.refresh(staff, ["department"])
    after = _snapshot(staff)
    changed = {k for k in after if after[k] != before[k]}
    if data.password:
        changed.add("password")
    if changed:
        audit.record(session, "staff.update", entity_type="staff", entity_id=staff.id,
                     before={k: before.get(k) for k in changed if k != "password"},
                     after={k: ("(已重置)" if k == "password" else after[k]) for k in changed})
    if data.password:
        end_sessions_after_password_change(session, staff.id, keep_session_id=keep_session_id,
                                           revoke_api_tokens=revoke_api_tokens)
    return staff


def change_own_password(session: Session, staff_id: int, current_password: str, new_password: str, *,
                        keep_session_id: int | None = None, revoke_api_tokens: bool = False) -> SessionsEnded:
    """A staff member changes their own password: the current one first, then the policy; every other
    session ends, and the API tokens too when asked."""
    from crm.exceptions import ValidationFailed

    staff = get_staff(session, staff_id)
    if not verify_password(staff.password_hash, current_password):
        raise ValidationFailed("当前密码不正确", field="current_password")
    if constant_time_equals(current_password, new_password):
        raise ValidationFailed("新密码不能与当前密码相同", field="password")
    check_password_strength(new_password, staff.username)
    staff.password_hash = hash_password(new_password)
    session.flush()
    audit.record(session, "staff.password_change", entity_type="staff", entity_id=staff.id)
    return end_sessions_after_password_change(session, staff.id, keep_session_id=keep_session_id,
                                              revoke_api_tokens=revoke_api_tokens)


def mark_departed(session: Session, staff_id: int, viewer: Viewer | None = None) -> Staff:
    """Mark a staff member as departed and end their sessions. (The CRM handover case builds on this.)"""
    from crm.models import ApiToken, StaffSession

    staff = get_staff(session, staff_id, viewer)
    _ensure_may_manage(viewer, staff)
    if staff.status == StaffStatus.DEPARTED:
        return staff
    now = clock.now()
    staff.status, staff.departed_at = StaffStatus.DEPARTED, now
    session.execute(update(StaffSession).where(StaffSession.staff_id == staff.id, StaffSession.revoked_at.is_(None))
                    .values(revoked_at=now))
    session.execute(update(ApiToken).where(ApiToken.staff_id == staff.id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    session.flush()
    audit.record(session, "staff.depart", entity_type="staff", entity_id=staff.id,
                 before={"status": StaffStatus.ACTIVE.value}, after={"status": StaffStatus.DEPARTED.value})
    return staff


def list_staff(session: Session, viewer: Viewer, *, q: str | None = None, role: str | None = None,
               status: str | None = None, department_id: int | None = None,
               limit: int = 100, offset: int = 0) -> tuple[list[Staff], int]:
    stmt = select(Staff).join(Department, Staff.department_id == Department.id).where(scope.staff_filter(viewer))
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(Staff.username.ilike(like) | Staff.display_name.ilike(like)
                          | Staff.wecom_userid.ilike(like))
    if role:
        stmt = stmt.where(Staff.role == role)
    if status:
        stmt = stmt.where(Staff.status == status)
    if department_id:
        dept = get_department(session, department_id)
        stmt = stmt.where(Department.path.startswith(dept.path, autoescape=True))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Staff.id).limit(limit).offset(offset))
    return list(rows), total


def find_by_mobile(session: Session, mobile: str) -> Staff | None:
    index = pii.blind_index(pii.PHONE, pii.normalize_phone(mobile))
    return session.scalar(select(Staff).where(Staff.mobile_index == index))


def find_by_wecom_userid(session: Session, wecom_userid: str) -> Staff | None:
    return session.scalar(select(Staff).where(Staff.wecom_userid == wecom_userid))
