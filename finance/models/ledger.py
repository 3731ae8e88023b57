"""The double-entry ledger's tables (总账).

- ``Account`` — the chart of accounts (科目), seeded by the migration. ``balance_amount`` is the
  running balance, debit positive (资产/费用 grow by debits, 负债/收入 by credits, so those show
  negative): it moves in the same transaction as the lines it sums, and ``scrm finance check`` proves it.
- ``JournalEntry`` — APPEND-ONLY. One balanced posting (凭证): ``total_amount`` is its debits and its
  credits. A correction is a new entry reversing it (``reversal_of_id``, unique: once).
- ``JournalLine`` — APPEND-ONLY. One side of one account: exactly one of debit / credit is positive.
- ``PeriodClose`` — APPEND-ONLY. A closed month (月结) with the count, debit total and digest of its
  lines at the moment of closing; no entry may be dated in it afterwards.

Enforced by the database, not only by the service: the append-only triggers, the checks below, a
trigger refusing an entry in a closed month, and the balance of each entry (PostgreSQL: a deferred
constraint trigger that sums the entry's lines at commit; SQLite: a trigger refusing a line that would
take the entry's debits or credits past its ``total_amount``, and one refusing a new entry while the
previous entry's lines do not add up to its total). The migration installs them.

SQLite cannot defer a trigger to commit, so an entry written around the service (lines short of its
total) would stand until the next entry arrives. The session closes that gap on every database:
:func:`_entries_balance_at_commit` (a ``before_commit`` hook) re-reads every entry the transaction wrote
(through the ORM or ``session.execute(insert(...))``) and refuses the commit when one does not balance.
Raw SQL text passed to the connection is not seen by it; the triggers above still stand there.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Insert, String, event, func, select
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from core.db import Base
from finance.exceptions import Unbalanced

__all__ = ["ACCOUNT_KIND_LABELS", "LEDGER_APPEND_ONLY", "Account", "JournalEntry", "JournalLine", "PeriodClose"]

ACCOUNT_KIND_LABELS = {"asset": "资产", "liability": "负债", "revenue": "收入", "expense": "费用"}
LEDGER_APPEND_ONLY = ("finance_journal_entry", "finance_journal_line", "finance_period_close")


class Account(Base):
    __tablename__ = "finance_account"
    __table_args__ = (CheckConstraint("kind IN ('asset', 'liability', 'revenue', 'expense')", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    number: Mapped[str] = mapped_column(String(12), unique=True)  # 科目编号, e.g. 1002.01
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(12))
    balance_amount: Mapped[int] = mapped_column(default=0)  # debit positive


class JournalEntry(Base):
    __tablename__ = "finance_journal_entry"
    __table_args__ = (
        CheckConstraint("total_amount > 0", name="total_positive"),
        Index("ix_finance_journal_entry_period", "period_month"),
        Index("ix_finance_journal_entry_source", "source_type", "source_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_date: Mapped[date]  # business date (Asia/Shanghai)
    period_month: Mapped[date]  # the first day of entry_date's month
    total_amount: Mapped[int]  # fen: the sum of the debits, and of the credits
    memo: Mapped[str] = mapped_column(String(200))
    source_type: Mapped[str] = mapped_column(String(40))  # deposit | refund | settlement | …
    source_id: Mapped[int | None]
    source_key: Mapped[str] = mapped_column(String(80), unique=True)  # one posting per business event
    reversal_of_id: Mapped[int | None] = mapped_column(ForeignKey("finance_journal_entry.id"), unique=True)
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class JournalLine(Base):
    __tablename__ = "finance_journal_line"
    __table_args__ = (
        CheckConstraint("debit_amount >= 0 AND credit_amount >= 0", name="sides_non_negative"),
        CheckConstraint("(debit_amount > 0) <> (credit_amount > 0)", name="one_side"),
        Index("ix_finance_journal_line_account", "account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("finance_journal_entry.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("finance_account.id"))
    debit_amount: Mapped[int] = mapped_column(default=0)
    credit_amount: Mapped[int] = mapped_column(default=0)


class PeriodClose(Base):
    __tablename__ = "finance_period_close"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_month: Mapped[date] = mapped_column(unique=True)
    line_count: Mapped[int]
    debit_total_amount: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the month's lines, in id order
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    closed_at: Mapped[datetime]


@event.listens_for(JournalEntry, "before_update")
@event.listens_for(JournalEntry, "before_delete")
@event.listens_for(JournalLine, "before_update")
@event.listens_for(JournalLine, "before_delete")
@event.listens_for(PeriodClose, "before_update")
@event.listens_for(PeriodClose, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: Any) -> None:
    raise RuntimeError(f"{target.__tablename__} is append-only: a mistake is corrected by a reversing entry")


# --- every entry written in a transaction balances at its commit (all databases) --------------------------

_TOUCHED = "finance_ledger_entries_touched"


def _touched(session: Session) -> set[int | None]:
    return session.info.setdefault(_TOUCHED, set())


@event.listens_for(Session, "after_flush")
def _note_flushed_entries(session: Session, _context: Any) -> None:
    for obj in session.new:
        if isinstance(obj, JournalEntry):
            _touched(session).add(obj.id)
        elif isinstance(obj, JournalLine):
            _touched(session).add(obj.entry_id)


@event.listens_for(Session, "do_orm_execute")
def _note_inserted_entries(state: ORMExecuteState) -> None:
    statement = state.statement
    if not isinstance(statement, Insert) or statement.table.name not in ("finance_journal_entry",
                                                                         "finance_journal_line"):
        return
    if statement.table.name == "finance_journal_entry":
        _touched(state.session).add(None)  # a bulk insert of entries: the newest entry is checked
        return
    params = state.parameters
    for row in params if isinstance(params, list) else [params or {}]:
        _touched(state.session).add(row.get("entry_id"))


@event.listens_for(Session, "before_commit")
def _entries_balance_at_commit(session: Session) -> None:
    if not session.info.get(_TOUCHED):
        return
    session.flush()  # what is still pending is part of the commit
    touched = set(session.info.get(_TOUCHED, ()))
    ids = {i for i in touched if i is not None}
    if None in touched:
        newest = session.scalar(select(func.max(JournalEntry.id)))
        if newest is not None:
            ids.add(newest)
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHECK_CHUNK):  # bound parameters stay under every database's limit
        _refuse_unbalanced(session, ordered[start:start + _CHECK_CHUNK])


_CHECK_CHUNK = 1000


def _refuse_unbalanced(session: Session, ids: list[int]) -> None:
    sums = (select(JournalLine.entry_id, func.count().label("n"), func.sum(JournalLine.debit_amount).label("dr"),
                   func.sum(JournalLine.credit_amount).label("cr"))
            .where(JournalLine.entry_id.in_(ids)).group_by(JournalLine.entry_id).subquery())
    with session.no_autoflush:
        rows = session.execute(
            select(JournalEntry.id, JournalEntry.total_amount, sums.c.n, sums.c.dr, sums.c.cr)
            .outerjoin(sums, sums.c.entry_id == JournalEntry.id).where(JournalEntry.id.in_(ids))
            .order_by(JournalEntry.id)).all()
    for entry_id, total, n, dr, cr in rows:
        n, dr, cr = n or 0, dr or 0, cr or 0
        if n < 2 or dr != cr or dr != total:
            raise Unbalanced(f"凭证 #{entry_id} 借贷不平衡（{n} 行，借方 {dr} 分，贷方 {cr} 分，凭证合计 {total} 分），"
                             "不能保存")


@event.listens_for(Session, "after_transaction_end")
def _forget_at_the_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the session's own transaction (not a savepoint) committed or rolled back
        session.info.pop(_TOUCHED, None)
