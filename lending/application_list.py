"""The list of applications (申请列表): every application, open or decided, of the customers a viewer may see,
filtered by the day it was started, by the customer's owner, department, source, channel detail, region and
industry, and by the product and its funder.

The pipeline board (``applications.pipeline``) shows open applications by node; this is the flat list behind
the figures of analytics (进件数, 审批通过率): the same scope and the same filters, so its count is the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from core import clock
from crm import customer_queries, customers
from crm.models import Customer
from crm.scope import Viewer
from lending.models import APPLICATION_STATUS_LABELS, Application, Funder, Product

__all__ = ["APPROVED", "DECIDED", "STATUS_CHOICES", "ApplicationFilter", "ApplicationRow", "count",
           "filter_clauses", "list_applications"]

APPROVED = ("approved", "signed", "disbursed")  # passed review (审批通过)
DECIDED = (*APPROVED, "rejected")  # reviewed either way: the approval rate's denominator
# the status filter: one status, or a group of them
STATUS_CHOICES = {"decided": "已审结（通过或拒绝）", "approved_all": "审批通过（含已签约、已放款）",
                  **APPLICATION_STATUS_LABELS}
_GROUPS = {"decided": DECIDED, "approved_all": APPROVED}


@dataclass(frozen=True)
class ApplicationFilter:
    """Empty values mean 'any'. ``created_from``/``created_to``: business dates (Asia/Shanghai), inclusive."""

    created_from: date | None = None
    created_to: date | None = None
    status: str | None = None  # STATUS_CHOICES
    owner_id: int | None = None  # the customer's owner
    department_path: str | None = None  # the customer's owner is in this department subtree
    source: str | None = None  # the customer's source
    region: str | None = None  # contained in the customer's region
    product_id: int | None = None
    owner_department_id: int | None = None  # the customer's owner is in this department itself (not below it)
    source_detail: str | None = None  # the customer's 来源明细, exactly
    industry: str | None = None  # the customer's industry (``crm.customer_queries.industry_clause``)
    funder_id: int | None = None  # the funder of the application's product (资方)
    funder_type: str | None = None  # that funder's type (lending.models.FunderType)


def filter_clauses(viewer: Viewer, flt: ApplicationFilter) -> list[ColumnElement[bool]]:
    """WHERE clauses over Application joined to Customer: the viewer's scope and the filter."""
    out: list[ColumnElement[bool]] = [customers.visible_clause(viewer)]
    if flt.created_from:
        out.append(Application.created_at >= clock.start_of_business_day(flt.created_from))
    if flt.created_to:
        out.append(Application.created_at < clock.start_of_business_day(flt.created_to + timedelta(days=1)))
    if flt.status in _GROUPS:
        out.append(Application.status.in_(_GROUPS[flt.status]))
    elif flt.status:
        out.append(Application.status == flt.status)
    out += customer_queries.belonging_clauses(
        Application.customer_id, owner_id=flt.owner_id, department_path=flt.department_path,
        owner_department_id=flt.owner_department_id, source=flt.source, source_detail=flt.source_detail,
        region=flt.region, industry=flt.industry)
    if flt.product_id:
        out.append(Application.product_id == flt.product_id)
    if flt.funder_id:
        out.append(Application.product_id.in_(select(Product.id).where(Product.funder_id == flt.funder_id)))
    if flt.funder_type:
        out.append(Application.product_id.in_(select(Product.id).join(Funder, Funder.id == Product.funder_id)
                                              .where(Funder.funder_type == flt.funder_type)))
    return out


def _query(viewer: Viewer, flt: ApplicationFilter, *columns: Any) -> Select[Any]:
    return (select(*columns).select_from(Application).join(Customer, Customer.id == Application.customer_id)
            .where(*filter_clauses(viewer, flt)))


def count(session: Session, viewer: Viewer, flt: ApplicationFilter) -> int:
    return int(session.scalar(_query(viewer, flt, func.count(Application.id))) or 0)


@dataclass(frozen=True)
class ApplicationRow:
    application: Application
    customer_name: str | None
    owner_id: int | None
    product_name: str


def list_applications(session: Session, viewer: Viewer, flt: ApplicationFilter, *, limit: int = 50,
                      offset: int = 0) -> list[ApplicationRow]:
    """A page of applications, newest first."""
    stmt = (_query(viewer, flt, Application, Customer.name, Customer.owner_id, Product.name)
            .join(Product, Product.id == Application.product_id)
            .order_by(Application.created_at.desc(), Application.id.desc()).limit(limit).offset(offset))
    return [ApplicationRow(*row) for row in session.execute(stmt)]
