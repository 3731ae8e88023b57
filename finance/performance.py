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
    # One pass (set-based): every agreement of the scope joined to its settlement (one at most), the figures
    # as conditional sums grouped by (salesperson, funder type); the per-salesperson lines and the ranking
    # by funder type are both sums of these few hundred groups. (Was six aggregate subqueries, each
    # joining the two tables again.)
    start, end = _instants(since, until)
    signed_in = Agreement.signed_date.between(since, until) & (Agreement.status != "cancelled")
    disbursed_in = Settlement.disbursed_date.between(since, until)
    settled_in = (Settlement.status == "settled") & (Settlement.settled_at >= start) & (Settlement.settled_at < end)

    def total(condition, value):  # noqa: ANN001, ANN202 - SQL expressions
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    rows = session.execute(
        select(Agreement.sales_staff_id, Settlement.funder_type,
               total(signed_in, 1), total(signed_in, Agreement.loan_amount),
               total(signed_in & Agreement.status.in_(("disbursed", "settled")), 1),
               total(disbursed_in, Settlement.disbursed_amount), total(settled_in, _revenue()),
               total(disbursed_in, 1), total(disbursed_in & (Settlement.status == "settled"), _revenue()))
        .select_from(Agreement).outerjoin(Settlement, Settlement.agreement_id == Agreement.id)
        .where(signed_in | disbursed_in | settled_in, *scope)
        .group_by(Agreement.sales_staff_id, Settlement.funder_type)).all()
    per_staff: dict[int, list[int]] = {}
    per_funder: dict[str, list[int]] = {}
    for sid, funder_type, n, amount, ok, disbursed, revenue, f_count, f_revenue in rows:
        acc = per_staff.setdefault(sid, [0, 0, 0, 0, 0])
        for i, v in enumerate((n, amount, ok, disbursed, revenue)):
            acc[i] += int(v or 0)
        if funder_type is not None and f_count:
            f = per_funder.setdefault(funder_type, [0, 0, 0])
            for i, v in enumerate((f_count, disbursed, f_revenue)):
                f[i] += int(v or 0)
    names = dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(list(per_staff)))).all()) \
        if per_staff else {}
    lines = []
    for sid, (n, amount, ok, disbursed_amount, revenue_amount) in per_staff.items():
        rate = (Decimal(ok) / Decimal(n)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP) if n else Decimal(0)
        lines.append(StaffLine(sid, names.get(sid, ""), n, amount, disbursed_amount, revenue_amount, rate))
    lines.sort(key=lambda x: (-x.revenue_amount, -x.signed_amount, x.staff_id))
    ranking = sorted((FunderLine(t, c, d, r) for t, (c, d, r) in per_funder.items()),
                     key=lambda x: (-x.revenue_amount, -x.disbursed_amount))
    return lines, ranking


def _instants(since: date, until: date):  # noqa: ANN202
    from datetime import timedelta

    from core import clock

    return clock.start_of_business_day(since), clock.start_of_business_day(until + timedelta(days=1))
