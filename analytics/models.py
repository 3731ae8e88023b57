"""Nightly snapshots (日快照): what history needs, frozen once taken, so that a past day's figures never change
when today's data does.

- ``AnalyticsSnapshot``: one row per business date taken (the marker; its primary key decides a race);
- ``LoanDay``: every active loan as it stood that day — bucket, overdue days, outstanding principal. Overdue
  trends, roll rates and vintage curves read these rows, never the loans' current state;
- ``PoolDay``: the number of customers in each public pool that day.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["AnalyticsSnapshot", "LoanDay", "PoolDay"]


class AnalyticsSnapshot(Base):
    __tablename__ = "analytics_snapshot"

    snapshot_date: Mapped[date] = mapped_column(primary_key=True)
    loans: Mapped[int]  # LoanDay rows written
    pools: Mapped[int]  # PoolDay rows written
    taken_at: Mapped[datetime]


class LoanDay(Base):
    __tablename__ = "analytics_loan_day"
    __table_args__ = (Index("ix_analytics_loan_day_loan", "loan_id", "snapshot_date"),)

    snapshot_date: Mapped[date] = mapped_column(ForeignKey("analytics_snapshot.snapshot_date"), primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("lending_loan.id"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(4))  # C | M1 | M2 | M3 | M3+
    overdue_days: Mapped[int]
    outstanding_principal_amount: Mapped[int]


class PoolDay(Base):
    __tablename__ = "analytics_pool_day"

    snapshot_date: Mapped[date] = mapped_column(ForeignKey("analytics_snapshot.snapshot_date"), primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("crm_pool.id"), primary_key=True)
    customers: Mapped[int]
