"""The loan book's history, read from the nightly snapshots (never recomputed from today's loans):

- overdue trend: outstanding principal by bucket on each snapshot date;
- roll rates (迁徙率): of the principal in each bucket on one snapshot date, the share that stood in a worse
  bucket on a later one (C→M1, M1→M2, M2→M3, M3→M3+); loans repaid or closed in between did not roll;
- vintage curves (账龄曲线): for the loans disbursed in each month, the principal overdue (M1 and worse) at the
  end of each later month on book, as a share of the principal disbursed that month.

Each is one grouped SELECT over ``analytics_loan_day`` joined to the loan and its customer, limited by the same
scope clauses as the loan list (``lending.servicing.loans.filter_clauses``: the customer's owner as of now).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session, aliased

from analytics.metrics import join_customer, rate
from analytics.models import AnalyticsSnapshot, LoanDay
from crm.scope import Viewer
from lending.models import BUCKETS, Loan
from lending.servicing import loans

__all__ = ["RollRate", "backfilled_days", "month_ends", "overdue_trend", "roll_rates", "snapshot_dates", "vintages"]

RANK = {b: i for i, b in enumerate(BUCKETS)}  # C < M1 < M2 < M3 < M3+


ANY_LOAN = loans.LoanFilter()


def _scope(viewer: Viewer) -> list[ColumnElement[bool]]:
    return loans.filter_clauses(viewer, ANY_LOAN)


def _customer(stmt: Select, viewer: Viewer) -> Select:
    return join_customer(stmt, viewer, ANY_LOAN)


def _rank(column: ColumnElement[Any]) -> ColumnElement[int]:
    return case(*((column == b, i) for b, i in RANK.items()), else_=0)


def backfilled_days(session: Session, since: date, until: date) -> int:
    """How many snapshot dates of the range were reconstructed afterwards (``snapshots.backfill``)."""
    return session.scalar(select(func.count()).select_from(AnalyticsSnapshot).where(
        AnalyticsSnapshot.snapshot_date.between(since, until), AnalyticsSnapshot.source == "backfill")) or 0


def snapshot_dates(session: Session, since: date, until: date) -> list[date]:
    return list(session.scalars(select(AnalyticsSnapshot.snapshot_date).where(
        AnalyticsSnapshot.snapshot_date.between(since, until)).order_by(AnalyticsSnapshot.snapshot_date)))


def _loan(stmt: Select, viewer: Viewer) -> Select:
    """Join the snapshot rows' loan when the scope reads it (the loan's customer, its collector); a viewer who
    sees every loan (scope all) needs no join, every snapshot row having its loan (foreign key)."""
    return stmt if viewer.scope == "all" else _customer(stmt.join(Loan, Loan.id == LoanDay.loan_id), viewer)


def overdue_trend(session: Session, viewer: Viewer, since: date, until: date,
                  buckets: tuple[str, ...] | None = None) -> dict[date, dict[str, int]]:
    """{snapshot date: {bucket: outstanding principal}} for every snapshot in [since, until]; only ``buckets``
    when given (the dashboard's trend leaves out C, most of the rows: ``ix_analytics_loan_day_bucket`` then
    reads the overdue ones alone)."""
    stmt = (_loan(select(LoanDay.snapshot_date, LoanDay.bucket, func.sum(LoanDay.outstanding_principal_amount))
                  .select_from(LoanDay), viewer)
            .where(LoanDay.snapshot_date.between(since, until), *_scope(viewer))
            .group_by(LoanDay.snapshot_date, LoanDay.bucket))
    if buckets is not None:
        stmt = stmt.where(LoanDay.bucket.in_(buckets))
    out: dict[date, dict[str, int]] = {d: {} for d in snapshot_dates(session, since, until)}
    for day, bucket, amount in session.execute(stmt):
        out.setdefault(day, {})[bucket] = int(amount or 0)
    return out


@dataclass(frozen=True)
class RollRate:
    bucket: str  # the bucket on the first date
    loans: int
    principal: int  # outstanding principal in ``bucket`` on the first date
    rolled_loans: int
    rolled_principal: int  # of it, the principal of the loans in a worse bucket on the second date

    @property
    def rate(self) -> Decimal | None:
        return rate(self.rolled_principal, self.principal)


def roll_rates(session: Session, viewer: Viewer, first: date, second: date) -> list[RollRate]:
    """Bucket to worse bucket between two snapshot dates, by principal, for every bucket but the last."""
    later = aliased(LoanDay)
    rolled = and_(later.loan_id.is_not(None), _rank(later.bucket) > _rank(LoanDay.bucket))
    stmt = (select(LoanDay.bucket, func.count(), func.sum(LoanDay.outstanding_principal_amount),
                   func.count(case((rolled, 1))),
                   func.coalesce(func.sum(case((rolled, LoanDay.outstanding_principal_amount), else_=0)), 0))
            .select_from(LoanDay).join(Loan, Loan.id == LoanDay.loan_id))
    stmt = (_customer(stmt, viewer)
            .outerjoin(later, and_(later.loan_id == LoanDay.loan_id, later.snapshot_date == second))
            .where(LoanDay.snapshot_date == first, *_scope(viewer))
            .group_by(LoanDay.bucket))
    found = {row[0]: row for row in session.execute(stmt)}
    out = []
    for bucket in BUCKETS[:-1]:
        _, n, principal, rolled_n, rolled_principal = found.get(bucket, (bucket, 0, 0, 0, 0))
        out.append(RollRate(bucket, int(n), int(principal or 0), int(rolled_n), int(rolled_principal or 0)))
    return out


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    return date(day.year + y, m + 1, 1)


def month_ends(session: Session, first_month: date, until: date) -> dict[date, date]:
    """{month: the last snapshot date of that month} from ``first_month`` up to ``until``."""
    out: dict[date, date] = {}
    for day in snapshot_dates(session, first_month, until):
        out[month_start(day)] = day  # ascending: the last one of each month stays
    return out


def vintages(session: Session, viewer: Viewer, until: date, *, months: int = 12
             ) -> dict[date, list[tuple[int, Decimal | None]]]:
    """{disbursement month: [(months on book, overdue principal M1+ / principal disbursed), …]} for the last
    ``months`` disbursement months, at the last snapshot of each month after the disbursement month."""
    first = add_months(month_start(until), -(months - 1))
    vintage_months = [add_months(first, i) for i in range(months)]
    vintage = case(*((and_(Loan.start_date >= m, Loan.start_date < add_months(m, 1)), m) for m in vintage_months))
    disbursed = dict(session.execute(
        _customer(select(vintage, func.sum(Loan.principal_amount)).select_from(Loan), viewer)
        .where(Loan.start_date >= first, Loan.start_date < add_months(month_start(until), 1), *_scope(viewer))
        .group_by(vintage)).all())
    ends = month_ends(session, first, until)
    overdue: dict[tuple[date, date], int] = {}
    if ends:
        stmt = (select(vintage, LoanDay.snapshot_date,
                       func.coalesce(func.sum(case((LoanDay.bucket != "C", LoanDay.outstanding_principal_amount),
                                                   else_=0)), 0))
                .select_from(LoanDay).join(Loan, Loan.id == LoanDay.loan_id))
        stmt = (_customer(stmt, viewer)
                .where(LoanDay.snapshot_date.in_(list(ends.values())), Loan.start_date >= first, *_scope(viewer))
                .group_by(vintage, LoanDay.snapshot_date))
        overdue = {(v, d): int(a) for v, d, a in session.execute(stmt) if v is not None}
    out: dict[date, list[tuple[int, Decimal | None]]] = {}
    for m in vintage_months:
        total = int(disbursed.get(m) or 0)
        if not total:
            continue
        points = []
        for month, day in ends.items():
            mob = (month.year - m.year) * 12 + month.month - m.month
            if mob >= 1:
                points.append((mob, rate(overdue.get((m, day), 0), total)))
        out[m] = points
    return out


def previous_snapshot(session: Session, before: date) -> date | None:
    """The last snapshot date on or before ``before``."""
    return session.scalar(select(func.max(AnalyticsSnapshot.snapshot_date))
                          .where(AnalyticsSnapshot.snapshot_date <= before))


def roll_window(session: Session, until: date, days: int = 30) -> tuple[date, date] | None:
    """The dates a roll rate compares: the last snapshot up to ``until`` and the last one ``days`` before it."""
    second = previous_snapshot(session, until)
    first = previous_snapshot(session, second - timedelta(days=days)) if second else None
    return (first, second) if first and second else None
