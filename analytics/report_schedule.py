"""Scheduled reports pushed to a WeCom group chat (定时推送), once per period.

The periodic job ``analytics.queue_report_pushes`` (every minute) finds each scheduled report whose time has come
in the current period — a business date for a daily report, an ISO week for a weekly one — and inserts its
:class:`ReportPush` row (``INSERT … ON CONFLICT DO NOTHING`` on (report, period): the database decides that a
period gets one row, however often or concurrently the job runs). Only a newly inserted row enqueues
``bot.push_report``; the message is written into the row then: the report run as its owner (their data scope),
in Chinese markdown.

The bot's task claims the row (pending → sending, committed before WeCom is called), sends, and marks it sent.
A WeCom refusal (an errcode: nothing was sent) puts it back to pending and the task retries; anything else
(a time-out, the process dying) leaves the row ``sending``/``unknown``, which no run sends again: a push may be
missing, never doubled.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from analytics import metrics, periods, reports
from analytics.models import Report, ReportPush
from core import clock, outbox
from core.db import insert_ignore
from core.settings import get_settings
from crm.models import Staff
from crm.scope import Viewer

__all__ = ["PUSH_TASK", "QUEUE_TASK", "chat_id_for", "claim", "due_period", "mark_sent", "message", "queue_pushes",
           "recent_pushes", "release", "set_chat"]

QUEUE_TASK = "analytics.queue_report_pushes"
PUSH_TASK = "bot.push_report"
MAX_ROWS = 10  # rows in a pushed message (WeCom caps a message at 2,048 bytes); the rest are on the console
MAX_BYTES = 2000


def due_period(report: Report, now: datetime | None = None) -> str | None:
    """The period a push is due for at ``now`` ('2026-12-07' daily, '2026-W50' weekly), or None: not scheduled,
    before the time of day (or not the weekday), or a scheduled instant from before the schedule was set."""
    if report.schedule == "none" or not report.schedule_time:
        return None
    now = now or clock.now()
    local = now.astimezone(clock.BUSINESS_TZ)
    hour, minute = (int(x) for x in report.schedule_time.split(":"))
    at = datetime.combine(local.date(), time(hour, minute), tzinfo=clock.BUSINESS_TZ)
    if local < at or (report.schedule_since is not None and at < report.schedule_since):
        return None
    if report.schedule == "daily":
        return local.date().isoformat()
    if local.isoweekday() != report.schedule_weekday:
        return None
    year, week, _ = local.date().isocalendar()
    return f"{year}-W{week:02d}"


def message(session: Session, report: Report, today: Any = None) -> str:
    """The push: the report run as its owner, as WeCom markdown (at most ``MAX_ROWS`` rows)."""
    owner = session.get(Staff, report.owner_staff_id)
    assert owner is not None
    result = reports.run(session, Viewer.of(owner), report, today)
    flt = result.filters
    span = flt.start.isoformat() if flt.start == flt.end else f"{flt.start.isoformat()} 至 {flt.end.isoformat()}"
    lines = [f"**{report.name}**", f"> 统计区间：{span}（{periods.PERIODS.get(report.period, '')}）",
             f"> 数据范围：{owner.display_name}可见的数据"]
    lines += [f"> {p}" for p in reports.describe(session, report)[2 if report.dimension else 1:]]  # the filters
    if result.totals is not None:
        lines.append("")
        lines.append(f"**按{result.dimension_label}**")
        for row in result.rows[:MAX_ROWS]:
            figures = "，".join(f"{m.label} {metrics.display(c.value, m.unit)}"
                               for m, c in zip(result.columns, row.cells, strict=True))
            lines.append(f"- {row.label}：{figures}")
        if len(result.rows) > MAX_ROWS:
            lines.append(f"- ……其余 {len(result.rows) - MAX_ROWS} 项见控制台")
        if not result.rows:
            lines.append("- 本期暂无数据")
    totals = result.totals or result.rows[0]
    lines.append("")
    lines.append("**合计**")
    lines += [f"- {m.label}：**{metrics.display(c.value, m.unit)}**"
              for m, c in zip(result.columns, totals.cells, strict=True)]
    lines.append("")
    lines.append(f"[在控制台查看明细]({get_settings().base_url.rstrip('/')}/console/reports/{report.id})")
    text = "\n".join(lines)
    while len(text.encode()) > MAX_BYTES and len(lines) > 4:  # drop rows from the middle until it fits
        lines.pop(len(lines) // 2)
        text = "\n".join(lines)
    return text


def queue_pushes(session: Session, now: datetime | None = None) -> int:
    """Queue the pushes due now; the number newly queued (0 when every due period already has its row)."""
    now = now or clock.now()
    queued = 0
    for report in session.scalars(select(Report).where(Report.schedule != "none").order_by(Report.id)):
        key = due_period(report, now)
        if key is None:
            continue
        if session.scalar(select(ReportPush.id).where(ReportPush.report_id == report.id,
                                                      ReportPush.period_key == key)) is not None:
            continue  # the usual case: already queued this period (checked first so the message is not built)
        push_id = insert_ignore(session, ReportPush, {
            "report_id": report.id, "period_key": key, "status": "pending", "created_at": now,
            "content": message(session, report, clock.business_date(now))}, ["report_id", "period_key"])
        if push_id is not None:
            outbox.enqueue(session, PUSH_TASK, push_id)
            queued += 1
    return queued


def chat_id_for(report: Report) -> str:
    """The group chat's id: fixed by the report and its members and name, so creating it again after a crash
    finds the same chat (WeCom answers 86215, already exists) and a new member list makes a new chat."""
    digest = hashlib.sha256(f"{report.chat_name}|{sorted(report.chat_staff_ids)}".encode()).hexdigest()[:12]
    return f"scrmrpt{report.id}x{digest}"  # at most 32 letters and digits


def claim(session: Session, push_id: int) -> ReportPush | None:
    """pending → sending (the caller commits before sending); None when the push is not pending."""
    claimed = session.execute(update(ReportPush).where(ReportPush.id == push_id, ReportPush.status == "pending")
                              .values(status="sending", error=None)
                              .execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        return None
    push = session.get(ReportPush, push_id)
    if push is not None:
        session.refresh(push)
    return push


def set_chat(session: Session, report_id: int, chat_id: str) -> None:
    session.execute(update(Report).where(Report.id == report_id).values(chat_id=chat_id)
                    .execution_options(synchronize_session=False))


def mark_sent(session: Session, push_id: int, msgid: str | None) -> None:
    session.execute(update(ReportPush).where(ReportPush.id == push_id, ReportPush.status == "sending")
                    .values(status="sent", msgid=(msgid or None), sent_at=clock.now())
                    .execution_options(synchronize_session=False))


def release(session: Session, push_id: int, error: str, *, sent_maybe: bool) -> None:
    """After a failed send: back to pending (WeCom refused: nothing was sent, the task retries) or ``unknown``
    (it may have been sent: never again)."""
    session.execute(update(ReportPush).where(ReportPush.id == push_id, ReportPush.status == "sending")
                    .values(status="unknown" if sent_maybe else "pending", error=error[:300])
                    .execution_options(synchronize_session=False))


def recent_pushes(session: Session, report_id: int, limit: int = 10) -> list[ReportPush]:
    return list(session.scalars(select(ReportPush).where(ReportPush.report_id == report_id)
                                .order_by(ReportPush.id.desc()).limit(limit)))

