"""财务业绩: per salesperson, within the viewer's scope and filters (branch/department, salesperson, period):
signed count and amount (agreements signed in the period, not cancelled), disbursed amount (settlements
disbursed in the period), revenue (fees actually collected: settled in the period, less fee refunds), success
rate (of the period's agreements, those disbursed or settled); and a ranking by funder type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm.models import Department, Staff
from crm.scope import Viewer, owner_filter
from finance.access import REPORT_READERS, require
from finance.models import Agreement, Settlement


@dataclass(frozen=True)
class StaffLine:
    staff_id: int
    name: str
    signed_count: int
    signed_amount: int
    disbursed_amount: int
    revenue_amount: int
    success_rate: Decimal


@dataclass(frozen=True)
class FunderLine:
    funder_type: str
    count: int
    disbursed_amount: int
    revenue_amount: int


def _revenue():  # noqa: ANN202 - a SQL expression: fee revenue kept
    return (Settlement.total_due_amount + Settlement.deposit_applied_amount - Settlement.loan_repaid_amount
            - Settlement.fee_refunded_amount)


def report(session: Session, viewer: Viewer, *, since: date, until: date, department_id: int | None = None,
           salesperson_id: int | None = None) -> tuple[list[StaffLine], list[FunderLine]]:
    require(viewer, REPORT_READERS, "查看财务业绩")
    scope = [owner_filter(viewer, Agreement.sales_staff_id)]
    if salesperson_id:
        scope.append(Agreement.sales_staff_id == salesperson_id)
    if department_id:
        path = session.scalar(select(Department.path).where(Department.id == department_id))
        if path:
            scope.append(Agreement.sales_staff_id.in_(
                select(Staff.id).join(Department, Department.id == Staff.department_id)
                .where(Department.path.startswith(path, autoescape=True))))
    in_period = Agreement.signed_date.between(since, until) & (Agreement.status != "cancelled")
    signed = (select(Agreement.sales_staff_id.label("sid"), func.count().label("n"),
                     func.sum(Agreement.loan_amount).label("amount"),
                     func.sum(case((Agreement.status.in_(("disbursed", "settled")), 1), else_=0)).label("ok"))
              .where(in_period, *scope).group_by(Agreement.sales_staff_id).subquery())
    disbursed = (select(Agreement.sales_staff_id.label("sid"), func.sum(Settlement.disbursed_amount).label("amount"))
                 .join(Settlement, Settlement.agreement_id == Agreement.id)
                 .where(Settlement.disbursed_date.between(since, until), *scope)
                 .group_by(Agreement.sales_staff_id).subquery())
    start, end = _instants(since, until)
    revenue = (select(Agreement.sales_staff_id.label("sid"), func.sum(_revenue()).label("amount"))
               .join(Settlement, Settlement.agreement_id == Agreement.id)
               .where(Settlement.status == "settled", Settlement.settled_at >= start, Settlement.settled_at < end, *scope)
               .group_by(Agreement.sales_staff_id).subquery())
    ids = select(signed.c.sid).union(select(disbursed.c.sid), select(revenue.c.sid)).subquery()
    rows = session.execute(
        select(Staff.id, Staff.display_name, signed.c.n, signed.c.amount, signed.c.ok, disbursed.c.amount,
               revenue.c.amount)
        .join(ids, ids.c.sid == Staff.id).outerjoin(signed, signed.c.sid == Staff.id)
        .outerjoin(disbursed, disbursed.c.sid == Staff.id).outerjoin(revenue, revenue.c.sid == Staff.id)).all()
    lines = []
    for sid, name, n, amount, ok, disbursed_amount, revenue_amount in rows:
        rate = (Decimal(ok or 0) / Decimal(n)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP) if n else Decimal(0)
        lines.append(StaffLine(sid, name, int(n or 0), int(amount or 0), int(disbursed_amount or 0),
                               int(revenue_amount or 0), rate))
    lines.sort(key=lambda x: (-x.revenue_amount, -x.signed_amount, x.staff_id))
    funders = session.execute(
        select(Settlement.funder_type, func.count(), func.sum(Settlement.disbursed_amount),
               func.sum(case((Settlement.status == "settled", _revenue()), else_=0)))
        .join(Agreement, Agreement.id == Settlement.agreement_id)
        .where(Settlement.disbursed_date.between(since, until), *scope)
        .group_by(Settlement.funder_type)).all()
    ranking = sorted((FunderLine(t, int(c), int(d or 0), int(r or 0)) for t, c, d, r in funders),
                     key=lambda x: (-x.revenue_amount, -x.disbursed_amount))
    return lines, ranking


def _instants(since: date, until: date):  # noqa: ANN202
    from datetime import timedelta

    from core import clock

    return clock.start_of_business_day(since), clock.start_of_business_day(until + timedelta(days=1))
