"""Data scopes (数据权限): the one helper every channel and every query uses.

A viewer sees records owned by themselves (own), by anyone in their department subtree
(department), or everything (all). Queries add :func:`owner_filter`; single-record reads call
:func:`ensure_visible`, which refuses with :class:`OutOfScope` (rendered as 404, so a record's
existence does not leak outside the scope).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session, object_session

from crm.exceptions import OutOfScope
from crm.models import DataScope, Department, Role, Staff
from crm.permissions import role_name


@dataclass(frozen=True)
class Viewer:
    staff_id: int
    role: str
    scope: str
    department_id: int
    department_path: str
    display_name: str

    @classmethod
    def of(cls, staff: Staff) -> Viewer:
        return cls(staff.id, role_name(object_session(staff), staff.role), staff.data_scope, staff.department_id, staff.department.path,
                   staff.display_name)

    def has_role(self, *roles: str | Role) -> bool:
        return self.role in {str(r) for r in roles}


def subtree_staff_ids(path: str):  # noqa: ANN201 - a SQL subquery
    return (
        select(Staff.id)
        .join(Department, Staff.department_id == Department.id)
        .where(Department.path.startswith(path, autoescape=True))
        .scalar_subquery()
    )


def owner_filter(viewer: Viewer, owner_column: ColumnElement[int | None], *,
                 include_unowned: bool = False) -> ColumnElement[bool]:
    """A WHERE clause limiting rows whose owner is ``owner_column`` to the viewer's scope."""
    if viewer.scope == DataScope.ALL:
        return true()
    if viewer.scope == DataScope.DEPARTMENT:
        clause = owner_column.in_(subtree_staff_ids(viewer.department_path))
    elif viewer.scope == DataScope.OWN:
        clause = owner_column == viewer.staff_id
    else:
        return false()
    return or_(clause, owner_column.is_(None)) if include_unowned else clause


def department_filter(viewer: Viewer, path_column: ColumnElement[str]) -> ColumnElement[bool]:
    """Limit departments (or rows carrying a department path) to the viewer's subtree."""
    if viewer.scope == DataScope.ALL:
        return true()
    return path_column.startswith(viewer.department_path, autoescape=True)


def staff_filter(viewer: Viewer) -> ColumnElement[bool]:
    """Which staff members the viewer may see and manage: their scope applied to staff themselves."""
    return owner_filter(viewer, Staff.id)


def can_see_owner(session: Session, viewer: Viewer, owner_id: int | None, *,
                  include_unowned: bool = False) -> bool:
    if owner_id is None:
        return include_unowned or viewer.scope == DataScope.ALL
    if viewer.scope == DataScope.ALL:
        return True
    if viewer.scope == DataScope.OWN:
        return owner_id == viewer.staff_id
    owner_path = session.scalar(
        select(Department.path).join(Staff, Staff.department_id == Department.id).where(Staff.id == owner_id)
    )
    return owner_path is not None and owner_path.startswith(viewer.department_path)


def ensure_visible(session: Session, viewer: Viewer, owner_id: int | None, *,
                   include_unowned: bool = False) -> None:
    if not can_see_owner(session, viewer, owner_id, include_unowned=include_unowned):
        raise OutOfScope()
