"""Nightly snapshots (日快照): what history needs, frozen once taken, so that a past day's figures never change
when today's data does.

- ``AnalyticsSnapshot``: one row per business date taken (the marker; its primary key decides a race), with
  its ``source``: ``nightly`` (taken that night) or ``backfill`` (reconstructed later from the records);
- ``LoanDay``: every active loan as it stood that day — bucket, overdue days, outstanding principal. Overdue
  trends, roll rates and vintage curves read these rows, never the loans' current state;
- ``PoolDay``: the number of customers in each public pool that day.

``CustomerFunnel``: per customer, the first time it reached each step of the lead funnel (转化漏斗) — kept by
database triggers on the event tables (``core.migrations.funnel_rollup``), so every write path fills it, the
services, a plain Core insert, a bulk load.

``ChannelCost``: what a lead channel (来源) cost on a day — a purchased lead list, an ad campaign's spend — as
a manager records it (渠道成本), so that the channel analysis can show the cost per lead and per disbursed loan.
A cost is never edited; a wrong one is voided (with who, when and why) and entered again.

``ExportJob``: a large list exported to Excel in the background (导出任务), its progress and its file.

``Report``: a saved report of the report builder (自定义报表) — metrics, one dimension, filters, the roles it is
shared with, and an optional schedule pushing it to a WeCom group chat; ``ReportPush``: one push per report and
period (the outbox row: its unique key is what makes a push happen once per day or week).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["EXPORT_STATUS_LABELS", "PUSH_STATUS_LABELS", "AnalyticsSnapshot", "ChannelCost", "CustomerFunnel", "ExportJob", "LoanDay", "PoolDay", "Report",
           "ReportPush"]

EXPORT_STATUS_LABELS = {"queued": "排队中", "running": "导出中", "done": "已完成", "failed": "失败"}
PUSH_STATUS_LABELS = {"pending": "待发送", "sending": "发送中", "sent": "已发送", "unknown": "结果未知（未重发）"}


class AnalyticsSnapshot(Base):
    __tablename__ = "analytics_snapshot"

    snapshot_date: Mapped[date] = mapped_column(primary_key=True)
    loans: Mapped[int]  # LoanDay rows written
    pools: Mapped[int]  # PoolDay rows written
    taken_at: Mapped[datetime]
    # nightly: taken after the day's close of business (``snapshots.take``); backfill: reconstructed afterwards
    # from the append-only repayment records (``snapshots.backfill``), see there for what it leaves out
    source: Mapped[str] = mapped_column(String(10), default="nightly", server_default="nightly")


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
    kind: Mapped[str] = mapped_column(String(20))  # which list: analytics.export_kinds.KINDS
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


class ChannelCost(Base):
    """One cost of one lead channel: the customers' source it paid for (its label, ``crm.sources.label``), the
    business date it counts on, the amount in fen; optionally the department that bought it (then only viewers
    of that department see it; without one it is the company's and only viewers of scope all see it)."""

    __tablename__ = "analytics_channel_cost"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_analytics_channel_cost_day", "spent_on", "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    spent_on: Mapped[date]
    amount: Mapped[int]  # fen
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    note: Mapped[str | None] = mapped_column(String(200))
    created_by_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]
    voided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    void_reason: Mapped[str | None] = mapped_column(String(200))


class Report(Base):
    """A saved report: what it shows (metrics by one dimension, filters, period), who may run it (its owner,
    admins, and the roles in ``shared_roles``), and when it is pushed to a WeCom group chat (``schedule``)."""

    __tablename__ = "analytics_report"
    __table_args__ = (
        CheckConstraint("schedule IN ('none', 'daily', 'weekly')", name="schedule_known"),
        Index("ix_analytics_report_owner", "owner_staff_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    metrics: Mapped[list[str]] = mapped_column(JSON)  # metric keys (analytics.metrics.METRICS)
    dimension: Mapped[str | None] = mapped_column(String(20))  # None: one row of totals
    second_dimension: Mapped[str | None] = mapped_column(String(20))  # a cross-tab's second (needs the first)
    period: Mapped[str] = mapped_column(String(12))  # analytics.periods.PERIODS
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)  # department_id, owner_id, source, region, product_id
    shared_roles: Mapped[list[str]] = mapped_column(JSON)
    owner_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    schedule: Mapped[str] = mapped_column(String(10), default="none")
    schedule_weekday: Mapped[int | None]  # 1 = Monday … 7 = Sunday (weekly)
    schedule_time: Mapped[str | None] = mapped_column(String(5))  # HH:MM, Asia/Shanghai
    schedule_since: Mapped[datetime | None]  # when the schedule was set: no push for a time before it
    chat_name: Mapped[str | None] = mapped_column(String(50))  # the WeCom group chat (群聊) it is pushed to
    chat_staff_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # its members
    chat_id: Mapped[str | None] = mapped_column(String(32))  # set by the bot once appchat/create made the chat
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReportPush(Base):
    """pending → sending → sent; a push that failed in a way that may have sent it stays ``unknown`` and is never
    sent again. ``period_key``: the business date (daily) or the ISO week (weekly) the push is for."""

    __tablename__ = "analytics_report_push"
    __table_args__ = (
        UniqueConstraint("report_id", "period_key", name="uq_analytics_report_push_period"),
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'unknown')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("analytics_report.id"))
    period_key: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    content: Mapped[str] = mapped_column(Text)  # the markdown message, written when the push was queued
    msgid: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class CustomerFunnel(Base):
    """The first time the customer reached each funnel step (NULL: not reached). Written only by the triggers of
    ``core.migrations.funnel_rollup`` (a step's time only ever moves earlier); the lead step is the customer's
    own ``created_at``. A customer without any step event has no row."""

    __tablename__ = "analytics_customer_funnel"
    __table_args__ = tuple(Index(f"ix_analytics_customer_funnel_{step}", f"{step}_at")
                           for step in ("lead", "contacted", "visited", "applied", "approved", "signed", "disbursed"))

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    lead_at: Mapped[datetime]  # a copy of the customer's created_at (the cohort funnel's index)
    contacted_at: Mapped[datetime | None]  # the first follow-up (crm_followup)
    visited_at: Mapped[datetime | None]  # the first arrived visit (crm_visit)
    applied_at: Mapped[datetime | None]  # the first application (lending_application)
    approved_at: Mapped[datetime | None]  # the first transition into approved / signed / disbursed
    signed_at: Mapped[datetime | None]  # the first transition into signed / disbursed, or a contract signed
    disbursed_at: Mapped[datetime | None]  # the first loan (lending_loan)
