"""Taking the nightly snapshot (日快照) of a business date: three INSERT … SELECT statements in one transaction.

The marker row (``analytics_snapshot``) goes first: its primary key makes a second run of the same date — or
two at once — write nothing (the loser's transaction rolls back whole). A day once taken is never rewritten,
so its figures stay as they were whatever happens to the loans afterwards.

The snapshot of a date is taken after that date's close of business (``lending.servicing.cob``) has set the
loans' buckets; the task ``analytics.take_snapshot`` runs hourly and takes the latest closed date not yet
taken. Days whose moment has passed cannot be taken afterwards (the state is gone): they stay missing.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from analytics.models import AnalyticsSnapshot, LoanDay, PoolDay
from core import clock
from crm.models import Customer, CustomerStatus
from lending.models import Loan, LoanInstallment
from lending.servicing import cob

__all__ = ["SNAPSHOT_TASK", "due_date", "take"]

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
