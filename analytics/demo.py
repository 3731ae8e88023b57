"""Demo snapshots for `scrm seed-demo` (after the demo loans, lending.loan_demo): the demo lives its loans
through seven months with the clock travelled back, but no nightly snapshot was taken on those days, so the
risk dashboard's history (overdue trend, roll rates, vintage curves) would start empty. Every past day from
the first loan's start to yesterday is reconstructed by :func:`analytics.snapshots.backfill` (marked
``backfill``); today's is left to the nightly snapshot. Once per database (nothing when any snapshot exists)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import snapshots
from analytics.models import AnalyticsSnapshot
from core import clock
from lending.models import Loan

__all__ = ["seed"]


def seed(session: Session) -> list[str]:
    first = session.scalar(select(func.min(Loan.start_date)))
    if first is None or session.scalar(select(AnalyticsSnapshot.snapshot_date).limit(1)) is not None:
        return []
    day, today, count = first, clock.today(), 0
    while day < today:
        snapshots.backfill(session, day)
        day += timedelta(days=1)
        count += 1
    return [f"贷款日快照：补录 {count} 天（{first.isoformat()} 至 {(today - timedelta(days=1)).isoformat()}，由还款记录重建）"]
