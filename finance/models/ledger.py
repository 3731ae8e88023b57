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
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

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
