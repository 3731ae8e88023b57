"""Who may do what in the finance center, and which cases a viewer sees (crm's data scope).

A case (an agreement and everything hanging off it) belongs to its salesperson (营销专员) and its case
officer (做单专员): a viewer sees it when either is inside the viewer's data scope. Finance, managers and
admins act on money; supervisors approve and confirm vouchers; case officers ask for refunds.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import Session

from core.errors import PermissionDenied
from crm.models import ROLE_LABELS, Role
from crm.permissions import permission
from crm.scope import Viewer, can_see_owner, owner_filter
from finance.exceptions import RecordNotFound
from finance.models import Agreement

FINANCE = permission("finance.money", "财务确认", "确认合同与收款、结算、结单（财务中心）", {Role.FINANCE, Role.MANAGER, Role.ADMIN},
                     group="财务")
SIGNERS = permission("finance.sign", "录入签单", "录入服务协议（签单）", {Role.SALES, Role.SUPERVISOR, Role.MANAGER, Role.ADMIN, Role.FINANCE},
                     group="财务")
APPROVERS = permission("finance.approve", "主管审批", "审批签单与报销（主管审批）", {Role.SUPERVISOR, Role.MANAGER, Role.ADMIN},
                       group="财务")
REPORT_READERS = permission("finance.reports", "财务业绩", "查看财务业绩报表", {Role.MANAGER, Role.ADMIN, Role.FINANCE, Role.SUPERVISOR},
                            group="报表")


def require(viewer: Viewer | None, roles: frozenset[str], what: str) -> None:
    if viewer is not None and viewer.role not in roles:
        raise PermissionDenied(f"角色（{ROLE_LABELS.get(viewer.role, viewer.role)}）无权{what}")


def case_filter(viewer: Viewer) -> ColumnElement[bool]:
    return or_(owner_filter(viewer, Agreement.sales_staff_id), owner_filter(viewer, Agreement.case_officer_id))


def ensure_case_visible(session: Session, viewer: Viewer | None, agreement: Agreement) -> None:
    if viewer is None:
        return
    if not (can_see_owner(session, viewer, agreement.sales_staff_id)
            or can_see_owner(session, viewer, agreement.case_officer_id)):
        raise RecordNotFound()
