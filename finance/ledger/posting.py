"""Posting to the ledger (记账): one balanced entry per business event, corrections by reversal.

The service refuses what the database would refuse too (see :mod:`finance.models.ledger`), so that a
person gets the reason in Chinese: amounts that are not positive integer fen, debits ≠ credits, fewer
than two lines, an unknown account, a date in a closed month. Each entry carries a ``source_key``
(unique): a business event is posted once, whoever tries twice.

Account balances move in the same transaction, accounts locked in id order (no deadlock between two
postings touching the same accounts).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from finance.exceptions import AlreadyReversed, AmountInvalid, PeriodClosed, RecordNotFound, StateConflict, Unbalanced
from finance.models import Account, JournalEntry, JournalLine, PeriodClose

MAX_LINE_AMOUNT = 10**13


@dataclass(frozen=True)
class Line:
    account: str  # account code
    debit: int = 0
    credit: int = 0


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_label(month: date) -> str:
    return f"{month.year}年{month.month}月"


def is_closed(session: Session, month: date) -> bool:
    return session.scalar(select(PeriodClose.id).where(PeriodClose.period_month == month_of(month))) is not None


def ensure_open(session: Session, day: date) -> None:
    if is_closed(session, day):
        raise PeriodClosed(f"{month_label(month_of(day))}已月结，不能再记入该月的凭证（请在当前月份做冲销或调整）",
                           field="entry_date")


def accounts_by_code(session: Session) -> dict[str, Account]:
    return {a.code: a for a in session.scalars(select(Account))}


def _validate(lines: list[Line]) -> int:
    if len(lines) < 2:
        raise Unbalanced("一张凭证至少要有两行（一借一贷）")
    debit = credit = 0
    for line in lines:
        for value in (line.debit, line.credit):
            if isinstance(value, bool) or not isinstance(value, int):
                raise AmountInvalid("凭证金额必须是整数分")
            if value < 0 or value > MAX_LINE_AMOUNT:
                raise AmountInvalid("凭证金额不能为负数或过大")
        if (line.debit > 0) == (line.credit > 0):
            raise AmountInvalid("每一行只能记借方或贷方之一，且金额大于 0")
        debit += line.debit
        credit += line.credit
    if debit != credit:
        raise Unbalanced(f"借贷不平衡：借方 {debit} 分，贷方 {credit} 分")
    return debit


def post(session: Session, *, source_type: str, source_key: str, memo: str, lines: list[Line],
         source_id: int | None = None, entry_date: date | None = None, by_staff_id: int | None = None,
         reversal_of_id: int | None = None) -> JournalEntry:
    """Write one balanced entry and move the balances; refused with the reason, nothing written."""
    lines = [ln for ln in lines if ln.debit or ln.credit]  # a zero amount is no line (a fee waived, a 0 discount)
    total = _validate(lines)
    day = entry_date or clock.today()
    ensure_open(session, day)
    accounts = accounts_by_code(session)
    unknown = sorted({ln.account for ln in lines} - accounts.keys())
    if unknown:
        raise AmountInvalid(f"科目不存在：{'、'.join(unknown)}")
    if session.scalar(select(JournalEntry.id).where(JournalEntry.source_key == source_key)) is not None:
        raise StateConflict(f"该业务已记账（{source_key}），不能重复记账")
    try:
        with session.begin_nested():
            entry = JournalEntry(entry_date=day, period_month=month_of(day), total_amount=total, memo=memo[:200],
                                 source_type=source_type, source_id=source_id, source_key=source_key,
                                 reversal_of_id=reversal_of_id, by_staff_id=by_staff_id, created_at=clock.now())
            session.add(entry)
            session.flush()
            session.execute(insert(JournalLine), [
                {"entry_id": entry.id, "account_id": accounts[ln.account].id, "debit_amount": ln.debit,
                 "credit_amount": ln.credit} for ln in lines])
            deltas: dict[int, int] = defaultdict(int)
            for ln in lines:
                deltas[accounts[ln.account].id] += ln.debit - ln.credit
            for account_id in sorted(deltas):
                if deltas[account_id]:
                    session.execute(update(Account).where(Account.id == account_id)
                                    .values(balance_amount=Account.balance_amount + deltas[account_id])
                                    .execution_options(synchronize_session=False))
    except IntegrityError:
        # Another transaction posted the same business event (source_key) or reversal first.
        if reversal_of_id is not None:
            raise AlreadyReversed() from None
        raise StateConflict(f"该业务已记账（{source_key}），不能重复记账") from None
    return entry


def entry_lines(session: Session, entry_id: int) -> list[tuple[JournalLine, Account]]:
    return list(session.execute(select(JournalLine, Account).join(Account, JournalLine.account_id == Account.id)
                                .where(JournalLine.entry_id == entry_id).order_by(JournalLine.id)))


def reverse(session: Session, entry_id: int, *, reason: str, by_staff_id: int | None = None,
            entry_date: date | None = None) -> JournalEntry:
    """The correction of an entry (冲销): a new entry with every line on the other side, dated today
    (an open month) unless told otherwise. Once per entry; a reversal is not itself reversed."""
    original = session.get(JournalEntry, entry_id)
    if original is None:
        raise RecordNotFound("凭证不存在")
    if original.reversal_of_id is not None:
        raise StateConflict("冲销凭证不能再冲销")
    if session.scalar(select(JournalEntry.id).where(JournalEntry.reversal_of_id == entry_id)) is not None:
        raise AlreadyReversed(f"凭证 #{entry_id} 已冲销")
    reason = (reason or "").strip()
    if not reason:
        raise AmountInvalid("请填写冲销原因", field="reason")
    lines = [Line(account.code, debit=line.credit_amount, credit=line.debit_amount)
             for line, account in entry_lines(session, entry_id)]
    return post(session, source_type=original.source_type, source_id=original.source_id,
                source_key=f"reversal:{entry_id}", memo=f"冲销 #{entry_id}：{reason}", lines=lines,
                entry_date=entry_date, by_staff_id=by_staff_id, reversal_of_id=entry_id)
