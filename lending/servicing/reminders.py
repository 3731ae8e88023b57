"""Repayment reminders (还款提醒): before the due date (T-3, T-0) and after it (T+1, T+3), configurable
(``SCRM_REMINDER_OFFSETS``, days from the due date).

The close of business creates, for its business date ``D`` and each offset ``k``, one ``Reminder`` row per
unpaid bill due on ``D − k`` and audience (channel) — the borrower (mini-program subscription message), the
staff member (WeCom: the collector once the loan is assigned, else the customer's salesperson) and, for the
overdue offsets only (``k ≥ 1``), the borrower's WeCom (``wecom``: a message to the customer as an external
contact, sent as the member who holds them) — set-based, and only where none exists (unique per bill, offset
and audience: a rerun or a retry never makes a second, the database decides). A borrower who opted out
(``ReminderOptOut``) gets a ``skipped`` row instead on both borrower channels, and a customer who is no WeCom
contact (no external userid) a ``skipped`` ``wecom`` row; the reason is kept in ``error``.

Sending is the channels' work: :func:`dispatch` enqueues one task by name per pending row
(``miniprogram.send_repayment_reminder`` / ``bot.send_repayment_reminder`` /
``bot.send_borrower_wecom_reminder``); the channel calls :func:`mark` with the outcome, which moves the row
from ``pending`` once (conditional UPDATE).
"""

# ruff: noqa: S608 - the SQL text formats in only this module's own dialect fragments; every value is bound
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from core import clock, outbox
from core.errors import ValidationFailed
from core.settings import get_settings
from lending.models import Reminder, ReminderOptOut

__all__ = ["AUDIENCE_LABELS", "BORROWER_TASK", "DISPATCH_TASK", "STAFF_TASK", "STATUS_LABELS", "WECOM_TASK", "create_for",
           "dispatch", "for_loan", "label", "mark", "offsets", "opt_out"]

DISPATCH_TASK = "lending.dispatch_reminders"
BORROWER_TASK = "miniprogram.send_repayment_reminder"
STAFF_TASK = "bot.send_repayment_reminder"
WECOM_TASK = "bot.send_borrower_wecom_reminder"
TASKS = {"borrower": BORROWER_TASK, "staff": STAFF_TASK, "wecom": WECOM_TASK}
AUDIENCE_LABELS = {"borrower": "借款人（小程序）", "wecom": "借款人（企业微信）", "staff": "员工（企业微信）"}
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "失败", "skipped": "已跳过"}
OPTED_OUT = "客户已退订还款提醒"
NO_WECOM_CONTACT = "客户未添加企业微信，无法发送"


def offsets() -> list[int]:
    raw = get_settings().reminder_offsets
    try:
        return sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise ValidationFailed(f"SCRM_REMINDER_OFFSETS 格式不正确：{raw}（如 -3,0,1,3）") from None


def label(offset_days: int) -> str:
    return "T-0" if offset_days == 0 else f"T{offset_days:+d}"


def create_for(session: Session, day: date) -> int:
    """The reminder rows of business date ``day`` (see the module docstring); returns how many were made.

    One INSERT … SELECT for every offset and audience: the bills due on any of the offsets' dates are read once
    (the unpaid-bills index), joined to a small list of (offset, due date, audience); the opt-out read once per
    bill by its primary key."""
    pg = session.get_bind().dialect.name == "postgresql"
    wanted, params = [], {"d": day, "now": clock.now(), "opted_out": OPTED_OUT, "no_contact": NO_WECOM_CONTACT}
    for k in offsets():
        for audience in ("borrower", "staff", "wecom") if k >= 1 else ("borrower", "staff"):  # wecom: overdue only
            n = len(wanted)
            due = f"CAST(:due{n} AS DATE)" if pg else f":due{n}"  # SQLite's CAST AS DATE would make it a number
            wanted.append(f"(CAST(:n{n} AS INTEGER), CAST(:k{n} AS INTEGER), {due}, CAST(:a{n} AS VARCHAR(10)))")
            params.update({f"n{n}": n, f"k{n}": k, f"due{n}": day - timedelta(days=k), f"a{n}": audience})
    if not wanted:
        return 0
    d = "CAST(:d AS DATE)" if pg else ":d"
    staff = "COALESCE(l.collector_staff_id, c.owner_id)"
    opted = "o.customer_id IS NOT NULL"
    no_contact = "c.wecom_external_userid IS NULL"
    # the first reason that applies is the one recorded: the opt-out (both borrower channels), then no contact
    return session.execute(text(f"""
        INSERT INTO lending_reminder (installment_id, loan_id, offset_days, audience, staff_id, business_date,
                                      status, error, created_at)
        WITH w(n, k, due, audience) AS (VALUES {", ".join(wanted)})
        SELECT i.id, l.id, w.k, w.audience, CASE WHEN w.audience = 'staff' THEN {staff} END, {d},
               CASE WHEN w.audience = 'borrower' AND {opted} THEN 'skipped'
                    WHEN w.audience = 'wecom' AND ({opted} OR {no_contact}) THEN 'skipped'
                    ELSE 'pending' END,
               CASE WHEN w.audience IN ('borrower', 'wecom') AND {opted} THEN CAST(:opted_out AS VARCHAR(300))
                    WHEN w.audience = 'wecom' AND {no_contact} THEN CAST(:no_contact AS VARCHAR(300)) END,
               :now
        FROM w
        JOIN lending_loan_installment i ON i.due_date = w.due AND i.status <> 'paid'
        JOIN lending_loan l ON l.id = i.loan_id AND l.status = 'active'
        JOIN customer c ON c.id = l.customer_id
        LEFT JOIN lending_reminder_opt_out o ON o.customer_id = l.customer_id
        WHERE (w.audience <> 'staff' OR {staff} IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM lending_reminder r WHERE r.installment_id = i.id
                          AND r.offset_days = w.k AND r.audience = w.audience)
        ORDER BY w.n, i.id
    """), params).rowcount


def dispatch(session: Session, *, limit: int = 1000) -> int:
    """Enqueue the sending of pending reminders (the channel marks each). Returns how many were enqueued."""
    rows = list(session.execute(select(Reminder.id, Reminder.audience).where(Reminder.status == "pending")
                                .order_by(Reminder.id).limit(limit)))
    for reminder_id, audience in rows:
        outbox.enqueue(session, TASKS[audience], reminder_id)
    return len(rows)


def mark(session: Session, reminder_id: int, status: str, error: str | None = None) -> bool:
    """The channel's outcome: ``sent``, ``failed`` or ``skipped`` (the borrower opted out meanwhile), once
    (False when the row had left ``pending``)."""
    if status not in ("sent", "failed", "skipped"):
        raise ValueError(status)
    return session.execute(update(Reminder).where(Reminder.id == reminder_id, Reminder.status == "pending").values(
        status=status, sent_at=clock.now() if status == "sent" else None, error=(error or "")[:300] or None)
        .execution_options(synchronize_session=False)).rowcount == 1


def for_loan(session: Session, loan_id: int, *, limit: int = 100) -> list[Reminder]:
    """A loan's reminders, newest first (the loan page)."""
    return list(session.scalars(select(Reminder).where(Reminder.loan_id == loan_id)
                                .order_by(Reminder.id.desc()).limit(limit)))


def opt_out(session: Session, customer_id: int, *, out: bool = True) -> None:
    """The borrower's choice: no repayment reminders (退订), or reminders again."""
    row = session.get(ReminderOptOut, customer_id)
    if out and row is None:
        session.add(ReminderOptOut(customer_id=customer_id, created_at=clock.now()))
    elif not out and row is not None:
        session.delete(row)
    session.flush()
