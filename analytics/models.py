"""Nightly snapshots (日快照): what history needs, frozen once taken, so that a past day's figures never change
when today's data does.

- ``AnalyticsSnapshot``: one row per business date taken (the marker; its primary key decides a race);
- ``LoanDay``: every active loan as it stood that day — bucket, overdue days, outstanding principal. Overdue
  trends, roll rates and vintage curves read these rows, never the loans' current state;
- ``PoolDay``: the number of customers in each public pool that day.

``ExportJob``: a large list exported to Excel in the background (导出任务), its progress and its file.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["EXPORT_STATUS_LABELS", "AnalyticsSnapshot", "ExportJob", "LoanDay", "PoolDay"]

EXPORT_STATUS_LABELS = {"queued": "排队中", "running": "导出中", "done": "已完成", "failed": "失败"}


class AnalyticsSnapshot(Base):
    __tablename__ = "analytics_snapshot"

    snapshot_date: Mapped[date] = mapped_column(primary_key=True)
    loans: Mapped[int]  # LoanDay rows written
    pools: Mapped[int]  # PoolDay rows written
    taken_at: Mapped[datetime]


class LoanDay(Base):
    __tablename__ = "analytics_loan_day"
    __table_args__ = (
        Index("ix_analytics_loan_day_loan", "loan_id", "snapshot_date"),
        # the overdue trend (the overdue buckets, a range of days) reads this index alone on PostgreSQL
        Index("ix_analytics_loan_day_bucket", "bucket", "snapshot_date",
              postgresql_include=["outstanding_principal_amount", "loan_id"]),
    )

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


class ExportJob(Base):
    """queued → running → done | failed; the file is written under ``SCRM_EXPORT_DIR`` by the task."""

    __tablename__ = "analytics_export_job"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status_known"),
        Index("ix_analytics_export_job_staff", "requested_by_staff_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # which list: analytics.export_jobs.EXPORTS
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # the list's filters, as the list took them
    requested_by_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    total_rows: Mapped[int | None]
    done_rows: Mapped[int] = mapped_column(default=0)
    file_name: Mapped[str | None] = mapped_column(String(120))  # inside SCRM_EXPORT_DIR
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
