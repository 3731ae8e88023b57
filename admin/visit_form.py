"""The 预约上门 form's choices, shared by the Customer 360 and the customer's work page: the branches a visit
may be received at, and the one it defaults to (the salesperson's branch, not 总公司)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import org_service
from crm.models import Department, Staff
from crm.scope import Viewer


def branches(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.path)))


def default_branch_id(session: Session, viewer: Viewer, customer: Any) -> int | None:
    """A visit is received by the salesperson's branch: the customer's owner's, else the booker's."""
    department_id = viewer.department_id
    if customer.owner_id:
        owner = session.get(Staff, customer.owner_id)
        department_id = owner.department_id if owner else department_id
    branch = org_service.branch_of(session, department_id) or org_service.branch_of(session, viewer.department_id)
    return branch.id if branch else department_id


def context(session: Session, viewer: Viewer, customer: Any) -> dict[str, Any]:
    return {"branches": branches(session), "default_branch_id": default_branch_id(session, viewer, customer)}
