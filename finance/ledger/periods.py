"""Period close (月结): a month that has ended is locked with the count, total and digest of its lines.

After close no entry may be dated in the month (the service says so in Chinese; a database trigger
refuses it too) and ``scrm finance check`` recomputes the digest to prove nothing in it changed.
There is no reopening: a correction found later is a reversing entry in an open month.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import PermissionDenied
from crm.models import Role
from crm.permissions import permission
from crm.scope import Viewer
from finance.exceptions import FinanceInvalid, StateConflict
from finance.ledger.posting import month_label, month_of
from finance.models import JournalEntry, JournalLine, PeriodClose

CLOSERS = permission("finance.close", "月结", "关闭会计期间（月结）", {Role.FINANCE, Role.MANAGER, Role.ADMIN}, group="财务")


def _line_rows(session: Session, month: date) -> Iterator[tuple[int, int, int, int, int, int]]:
    stmt = (select(JournalLine.id, JournalLine.entry_id, JournalLine.account_id, JournalLine.debit_amount,
                   JournalLine.credit_amount, JournalEntry.total_amount)
            .join(JournalEntry, JournalLine.entry_id == JournalEntry.id)
            .where(JournalEntry.period_month == month).order_by(JournalLine.id)
            .execution_options(yield_per=5000))
    for row in session.execute(stmt):
        yield tuple(row)  # type: ignore[misc]


def fingerprint(session: Session, month: date) -> tuple[int, int, str]:
    """(line count, debit total, sha256 digest) of the month's lines, in id order.

    The digest is the sha256 of ``"line:entry:account:debit:credit:total;"`` for every line in id order; on
    PostgreSQL the database computes it (one aggregate, no rows shipped), elsewhere Python does, the same bytes.
    """
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(text("""
            SELECT count(*), coalesce(sum(l.debit_amount), 0),
                   encode(sha256(convert_to(coalesce(string_agg(
                       l.id || ':' || l.entry_id || ':' || l.account_id || ':' || l.debit_amount || ':'
                       || l.credit_amount || ':' || e.total_amount || ';', '' ORDER BY l.id), ''), 'UTF8')), 'hex')
            FROM finance_journal_line l JOIN finance_journal_entry e ON e.id = l.entry_id
            WHERE e.period_month = :month"""), {"month": month}).one()
        return int(row[0]), int(row[1]), row[2]
    return python_fingerprint(session, month)


def python_fingerprint(session: Session, month: date) -> tuple[int, int, str]:
    digest = hashlib.sha256()
    count = debit = 0
    for line_id, entry_id, account_id, dr, cr, total in _line_rows(session, month):
        count += 1
        debit += dr
        digest.update(f"{line_id}:{entry_id}:{account_id}:{dr}:{cr}:{total};".encode())
    return count, debit, digest.hexdigest()


def closed_months(session: Session) -> list[PeriodClose]:
    return list(session.scalars(select(PeriodClose).order_by(PeriodClose.period_month.desc())))


def open_months(session: Session) -> list[date]:
    """Months that have entries and are not closed, oldest first."""
    closed = select(PeriodClose.period_month)
    return list(session.scalars(select(JournalEntry.period_month).where(JournalEntry.period_month.not_in(closed))
                                .group_by(JournalEntry.period_month).order_by(JournalEntry.period_month)))


def close_period(session: Session, month: date, *, viewer: Viewer | None) -> PeriodClose:
    """Lock ``month`` (any day in it). Only a month that has ended; once."""
    if viewer is not None and viewer.role not in CLOSERS:
        raise PermissionDenied("只有财务、经理或管理员可以月结")
    month = month_of(month)
    if month >= month_of(clock.today()):
        raise FinanceInvalid(f"{month_label(month)}尚未结束，不能月结", field="month")
    if session.scalar(select(PeriodClose.id).where(PeriodClose.period_month == month)) is not None:
        raise StateConflict(f"{month_label(month)}已月结")
    earlier = session.scalar(select(func.min(JournalEntry.period_month))
                             .where(JournalEntry.period_month < month,
                                    JournalEntry.period_month.not_in(select(PeriodClose.period_month))))
    if earlier is not None:
        raise FinanceInvalid(f"请先月结更早的 {month_label(earlier)}", field="month")
    count, debit, digest = fingerprint(session, month)
    try:
        with session.begin_nested():
            row = PeriodClose(period_month=month, line_count=count, debit_total_amount=debit, digest=digest,
                              by_staff_id=viewer.staff_id if viewer else None, closed_at=clock.now())
            session.add(row)
            session.flush()
    except IntegrityError:
        raise StateConflict(f"{month_label(month)}已月结") from None
    audit.record(session, "finance.period_closed", entity_type="finance_period", entity_id=month.isoformat(),
                 after={"lines": count, "debit_total": debit})
    return row
