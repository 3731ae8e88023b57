"""``scrm finance check``: every invariant of the ledger, verified from the rows themselves.

1. every entry balances: at least two lines, debits = credits = the entry's total;
2. every entry's period is the month of its date;
3. a reversal mirrors its original (same total, every account's net the opposite);
4. every account's stored balance equals the sum of its lines;
5. every closed month still has the lines it had when it was closed (count, total, digest).

Each check is one aggregate query (or one streamed pass for the digests), so a million lines take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Date, func, select
from sqlalchemy.orm import Session

from finance.ledger.periods import fingerprint
from finance.ledger.posting import month_label
from finance.models import Account, JournalEntry, JournalLine, PeriodClose

MAX_REPORTED = 20


@dataclass
class CheckResult:
    entries: int = 0
    lines: int = 0
    closed_months: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def run_check(session: Session) -> CheckResult:
    result = CheckResult()
    result.entries = session.scalar(select(func.count()).select_from(JournalEntry)) or 0
    result.lines = session.scalar(select(func.count()).select_from(JournalLine)) or 0

    sums = (select(JournalLine.entry_id, func.count().label("n"), func.sum(JournalLine.debit_amount).label("dr"),
                   func.sum(JournalLine.credit_amount).label("cr"))
            .group_by(JournalLine.entry_id).subquery())
    bad = session.execute(
        select(JournalEntry.id, JournalEntry.total_amount, sums.c.n, sums.c.dr, sums.c.cr)
        .outerjoin(sums, sums.c.entry_id == JournalEntry.id)
        .where((sums.c.n.is_(None)) | (sums.c.n < 2) | (sums.c.dr != sums.c.cr)
               | (sums.c.dr != JournalEntry.total_amount))
        .order_by(JournalEntry.id).limit(MAX_REPORTED)).all()
    for entry_id, total, n, dr, cr in bad:
        result.add(f"凭证 #{entry_id} 不平衡：{n or 0} 行，借方 {dr or 0} 分，贷方 {cr or 0} 分，凭证合计 {total} 分")

    if session.get_bind().dialect.name == "postgresql":
        first_of_month = func.date_trunc("month", JournalEntry.entry_date).cast(Date)
    else:
        first_of_month = func.date(JournalEntry.entry_date, "start of month")
    for entry_id, day, month in session.execute(
            select(JournalEntry.id, JournalEntry.entry_date, JournalEntry.period_month)
            .where(first_of_month != JournalEntry.period_month).limit(MAX_REPORTED)):
        result.add(f"凭证 #{entry_id} 的会计期间 {month} 与日期 {day} 不符")

    original = JournalEntry.__table__.alias("original")
    for rev_id, orig_id, rev_total, orig_total in session.execute(
            select(JournalEntry.id, original.c.id, JournalEntry.total_amount, original.c.total_amount)
            .join(original, original.c.id == JournalEntry.reversal_of_id)):
        if rev_total != orig_total:
            result.add(f"冲销凭证 #{rev_id} 的金额与原凭证 #{orig_id} 不符")
            continue
        nets = dict(session.execute(
            select(JournalLine.account_id, func.sum(JournalLine.debit_amount - JournalLine.credit_amount))
            .where(JournalLine.entry_id.in_([rev_id, orig_id])).group_by(JournalLine.account_id)).all())
        if any(nets.values()):
            result.add(f"冲销凭证 #{rev_id} 没有完全冲回原凭证 #{orig_id}")

    line_sums = dict(session.execute(
        select(JournalLine.account_id, func.sum(JournalLine.debit_amount - JournalLine.credit_amount))
        .group_by(JournalLine.account_id)).all())
    for account in session.scalars(select(Account).order_by(Account.id)):
        expected = int(line_sums.get(account.id) or 0)
        if account.balance_amount != expected:
            result.add(f"科目 {account.number} {account.name} 余额 {account.balance_amount} 分，"
                       f"与分录合计 {expected} 分不符")

    for closed in session.scalars(select(PeriodClose).order_by(PeriodClose.period_month)):
        result.closed_months += 1
        count, debit, digest = fingerprint(session, closed.period_month)
        if (count, debit, digest) != (closed.line_count, closed.debit_total_amount, closed.digest):
            result.add(f"已月结的{month_label(closed.period_month)}被改动：月结时 {closed.line_count} 行、借方 "
                       f"{closed.debit_total_amount} 分，现在 {count} 行、借方 {debit} 分")
    return result
