"""Taking the nightly snapshot (日快照) of a business date: three INSERT … SELECT statements in one transaction.

The marker row (``analytics_snapshot``) goes first: its primary key makes a second run of the same date — or
two at once — write nothing (the loser's transaction rolls back whole). A day once taken is never rewritten,
so its figures stay as they were whatever happens to the loans afterwards.

The snapshot of a date is taken after that date's close of business (``lending.servicing.cob``) has set the
loans' buckets; the task ``analytics.take_snapshot`` runs hourly and takes the latest closed date not yet
taken. Days whose moment has passed cannot be taken that way afterwards (the state is gone).

:func:`backfill` reconstructs such a past day instead, from the append-only records, and marks its marker
``source = 'backfill'``. As of the end of the day D (Asia/Shanghai), one INSERT … SELECT:

- a repayment allocation counts when it was booked by then: its entry's ``created_at`` — or, for the difference
  rows a backdated correction wrote (``replay_id``), the reversal's — before the end of D; a reversal's negated
  rows count from its own booking, so between a repayment and its reversal the bill stands paid, as the nightly
  snapshot of those days saw it;
- a bill is settled when its principal, interest and fee are covered by those allocations and so is its penalty
  (the penalty it was settled with, when it is paid today; none otherwise — the penalty a bill owed on D is
  not recomputed: a bill reversed and paid again late is taken as settled with its final penalty);
- a loan is active when it was created by then and has a bill not settled; its overdue days are D minus the
  due date of its oldest unsettled bill past the product's grace days (0 when none), its bucket is the close of
  business's own (``cob.bucket_sql``), its outstanding principal the bills' principal less what was paid on it.

Schedule changes (prepayment, extension, restructure) rewrite the unpaid bills in place: for a loan changed after
D the bills are today's, not D's (not reconstructed from ``lending_schedule_version``). Pool rows are left out
of a backfill (``pools`` = 0): who sat in a pool on a past day is not recorded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

# ruff: noqa: S608 - the SQL text formats in only the close of business's dialect fragments; every value is bound
from sqlalchemy import Date, bindparam, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from analytics.models import AnalyticsSnapshot, LoanDay, PoolDay
from core import clock
from crm.models import Customer, CustomerStatus
from lending.models import Loan, LoanInstallment, Repayment
from lending.servicing import cob

__all__ = ["SNAPSHOT_TASK", "BackfillRefused", "backfill", "due_date", "take"]

SNAPSHOT_TASK = "analytics.take_snapshot"


def due_date(session: Session) -> date | None:
    """The business date to take now: the last one whose close of business completed, if not yet taken."""
    day = cob.completed_through(session)
    if day is None or session.get(AnalyticsSnapshot, day) is not None:
        return None
    return day


def take(session: Session, day: date) -> AnalyticsSnapshot | None:
    """Write the snapshot of ``day``; None when it was already taken (then nothing is written)."""
    marker = AnalyticsSnapshot(snapshot_date=day, loans=0, pools=0, taken_at=clock.now())
    try:
        with session.begin_nested():
            session.add(marker)
            session.flush()
    except IntegrityError:
        return None
    rest = (select(LoanInstallment.loan_id,
                   func.sum(LoanInstallment.principal_amount - LoanInstallment.paid_principal_amount).label("rest"))
            .group_by(LoanInstallment.loan_id).subquery())
    loans = (select(literal(day), Loan.id, Loan.bucket, Loan.overdue_days, func.coalesce(rest.c.rest, 0))
             .select_from(Loan).outerjoin(rest, rest.c.loan_id == Loan.id).where(Loan.status == "active"))
    session.execute(insert(LoanDay).from_select(
        ["snapshot_date", "loan_id", "bucket", "overdue_days", "outstanding_principal_amount"], loans))
    pools = (select(literal(day), Customer.pool_id, func.count()).where(
        Customer.status == CustomerStatus.POOL, Customer.pool_id.is_not(None)).group_by(Customer.pool_id))
    session.execute(insert(PoolDay).from_select(["snapshot_date", "pool_id", "customers"], pools))
    # counted afterwards: the driver's row count of an INSERT … SELECT is not reliable on every dialect
    marker.loans = session.scalar(select(func.count()).select_from(LoanDay).where(LoanDay.snapshot_date == day))
    marker.pools = session.scalar(select(func.count()).select_from(PoolDay).where(PoolDay.snapshot_date == day))
    session.flush()
    return marker


class BackfillRefused(ValueError):
    """The day cannot be backfilled (already taken, or not yet over); nothing was written."""


def _loan_rows(session: Session) -> str:
    """SELECT of the LoanDay rows of ``:d`` reconstructed as of ``:t`` (the end of that day, UTC)."""
    d = cob.date_param(session)
    days = cob.days_sql(session, d, "b.due_date")
    return f"""
        SELECT {d}, f.loan_id, {cob.bucket_sql("f.od")}, f.od, f.rest FROM (
          SELECT b.loan_id, COALESCE(MAX(CASE WHEN b.settled = 0 AND {days} > b.grace THEN {days} END), 0) AS od,
                 SUM(b.rest) AS rest, SUM(1 - b.settled) AS open
          FROM (
            SELECT i.loan_id, i.due_date, COALESCE(v.overdue_grace_days, 0) AS grace,
                   i.principal_amount - COALESCE(p.principal, 0) AS rest,
                   CASE WHEN COALESCE(p.other, 0) >= i.principal_amount + i.interest_amount + i.fee_amount
                         AND COALESCE(p.penalty, 0) >= CASE WHEN i.status = 'paid' THEN i.penalty_amount ELSE 0 END
                        THEN 1 ELSE 0 END AS settled
            FROM lending_loan_installment i
            JOIN lending_loan l ON l.id = i.loan_id AND l.created_at < :t
            JOIN lending_contract c ON c.id = l.contract_id
            JOIN lending_product_version v ON v.id = c.product_version_id
            LEFT JOIN (
              SELECT a.installment_id,
                     SUM(CASE WHEN a.component = 'principal' THEN a.amount ELSE 0 END) AS principal,
                     SUM(CASE WHEN a.component <> 'penalty' THEN a.amount ELSE 0 END) AS other,
                     SUM(CASE WHEN a.component = 'penalty' THEN a.amount ELSE 0 END) AS penalty
              FROM lending_repayment_allocation a
              JOIN lending_repayment r ON r.id = a.repayment_id
              LEFT JOIN lending_repayment x ON x.id = a.replay_id
              WHERE COALESCE(x.created_at, r.created_at) < :t
              GROUP BY a.installment_id) p ON p.installment_id = i.id) b
          GROUP BY b.loan_id) f
        WHERE f.open > 0"""


def backfill(session: Session, day: date) -> AnalyticsSnapshot:
    """Reconstruct the snapshot of the past business date ``day`` (see the module's docstring) and write it,
    marked ``source = 'backfill'``. Refused (:class:`BackfillRefused`, nothing written) for a day already taken
    — a snapshot is never rewritten — and for today or a later day (not over yet: the nightly snapshot's)."""
    if day >= clock.today():
        raise BackfillRefused(f"{day.isoformat()} 尚未结束，不能补录快照")
    if session.get(AnalyticsSnapshot, day) is not None:
        raise BackfillRefused(f"{day.isoformat()} 已有快照，不能重写")
    marker = AnalyticsSnapshot(snapshot_date=day, loans=0, pools=0, taken_at=clock.now(), source="backfill")
    try:
        with session.begin_nested():
            session.add(marker)
            session.flush()
    except IntegrityError:
        raise BackfillRefused(f"{day.isoformat()} 已有快照，不能重写") from None
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=clock.BUSINESS_TZ).astimezone(UTC)
    insert_rows = text(f"""INSERT INTO analytics_loan_day
        (snapshot_date, loan_id, bucket, overdue_days, outstanding_principal_amount) {_loan_rows(session)}""")
    session.execute(insert_rows.bindparams(bindparam("d", type_=Date()),
                                           bindparam("t", type_=Repayment.__table__.c.created_at.type)),
                    {"d": day, "t": end})
    marker.loans = session.scalar(select(func.count()).select_from(LoanDay).where(LoanDay.snapshot_date == day))
    session.flush()
    return marker
