"""The double-entry ledger: balanced entries only, append-only, reversals, period close, and the check."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DatabaseError

from core import clock, db
from core.cli import main
from finance import ledger
from finance.exceptions import AlreadyReversed, AmountInvalid, PeriodClosed, StateConflict, Unbalanced
from finance.models import Account, JournalEntry, JournalLine
from tests.conftest import IS_POSTGRES

DEC_15 = datetime(2026, 12, 15, 2, 0, tzinfo=UTC)


def balance(session, code: str) -> int:
    return session.scalar(select(Account.balance_amount).where(Account.code == code))


def lines_count(session) -> int:
    return session.scalar(select(func.count()).select_from(JournalLine))


def deposit(session, amount: int = 50_000, key: str = "t:1", day: date | None = None) -> JournalEntry:
    return ledger.post(session, source_type="test", source_key=key, memo="收定金", entry_date=day,
                       lines=[ledger.Line("cash", debit=amount), ledger.Line("deposits_held", credit=amount)])


def test_a_balanced_entry_moves_both_balances_and_passes_the_check(session):
    cash, held = balance(session, "cash"), balance(session, "deposits_held")
    entry = deposit(session, 50_000)
    assert entry.total_amount == 50_000
    assert balance(session, "cash") == cash + 50_000
    assert balance(session, "deposits_held") == held - 50_000
    result = ledger.run_check(session)
    assert result.ok, result.problems
    assert result.lines >= 2


@pytest.mark.parametrize(("lines", "error", "words"), [
    ([ledger.Line("cash", debit=100), ledger.Line("deposits_held", credit=99)], Unbalanced, "借贷不平衡"),
    ([ledger.Line("cash", debit=100)], Unbalanced, "至少要有两行"),
    ([ledger.Line("cash", debit=-100), ledger.Line("deposits_held", credit=-100)], AmountInvalid, "负数"),
    ([ledger.Line("cash", debit=1.5), ledger.Line("deposits_held", credit=1.5)], AmountInvalid, "整数分"),
    ([ledger.Line("cash", debit=100, credit=100), ledger.Line("deposits_held", credit=100),
      ledger.Line("bank", debit=100)], AmountInvalid, "只能记"),
    ([ledger.Line("nope", debit=100), ledger.Line("deposits_held", credit=100)], AmountInvalid, "科目不存在"),
])
def test_bad_entries_are_refused_in_chinese_and_write_nothing(session, lines, error, words):
    before = lines_count(session)
    with pytest.raises(error) as exc:
        ledger.post(session, source_type="test", source_key="bad", memo="x", lines=lines)
    assert words in exc.value.message
    assert lines_count(session) == before


def test_one_business_event_is_posted_once(session):
    deposit(session, key="deposit:77")
    with pytest.raises(StateConflict):
        deposit(session, key="deposit:77")


def test_entries_and_lines_cannot_be_updated_or_deleted_even_by_sql(session):
    entry = deposit(session)
    with pytest.raises(RuntimeError, match="append-only"):
        entry.memo = "改"
        session.flush()
    session.rollback()
    entry = deposit(session, key="t:2")
    for statement in (f"UPDATE finance_journal_line SET debit_amount = 1 WHERE entry_id = {entry.id}",
                      f"DELETE FROM finance_journal_line WHERE entry_id = {entry.id}",
                      f"UPDATE finance_journal_entry SET memo = 'x' WHERE id = {entry.id}",
                      f"DELETE FROM finance_journal_entry WHERE id = {entry.id}"):
        with pytest.raises(DatabaseError, match="append-only"), session.begin_nested():
            session.execute(text(statement))


def test_the_database_refuses_an_entry_whose_lines_do_not_balance(session):
    """Around the service: raw SQL that writes debits ≠ credits is refused by the database itself."""
    cash = session.scalar(select(Account.id).where(Account.code == "cash"))
    held = session.scalar(select(Account.id).where(Account.code == "deposits_held"))
    with pytest.raises(DatabaseError, match="balance"), session.begin_nested():
        entry_id = session.execute(text(
            "INSERT INTO finance_journal_entry (entry_date, period_month, total_amount, memo, source_type, "
            "source_key, created_at) VALUES (:d, :m, 100, 'raw', 'raw', 'raw:1', :at) RETURNING id"),
            {"d": date(2026, 12, 1), "m": date(2026, 12, 1), "at": datetime(2026, 12, 1)}).scalar_one()
        session.execute(text("INSERT INTO finance_journal_line (entry_id, account_id, debit_amount, credit_amount) "
                             "VALUES (:e, :a, 100, 0), (:e, :b, 0, 150)"), {"e": entry_id, "a": cash, "b": held})
        if IS_POSTGRES:  # the constraint trigger is deferred to commit: make it fire now
            session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))


def _unbalanced_write(s, key: str) -> None:
    """Around the service: an entry of 100 with a single debit line of 100 and no credit, as the audit did."""
    cash = s.scalar(select(Account.id).where(Account.code == "cash"))
    entry = JournalEntry(entry_date=date(2026, 12, 1), period_month=date(2026, 12, 1), total_amount=100,
                         memo="raw", source_type="raw", source_key=key, created_at=datetime(2026, 12, 1, tzinfo=UTC))
    s.add(entry)
    s.flush()
    s.add(JournalLine(entry_id=entry.id, account_id=cash, debit_amount=100, credit_amount=0))


@pytest.mark.parametrize("how", ["orm", "core_insert"])
def test_an_unbalanced_entry_written_around_the_service_is_refused_at_commit(committed, how):
    """Even while it is the newest entry (SQLite's trigger only looks at it when the next entry comes):
    the commit is refused on every database and nothing is stored."""
    with pytest.raises((Unbalanced, DatabaseError)) as exc, db.unit_of_work() as s:
        if how == "orm":
            _unbalanced_write(s, "raw:orm")
        else:
            cash = s.scalar(select(Account.id).where(Account.code == "cash"))
            entry = JournalEntry(entry_date=date(2026, 12, 1), period_month=date(2026, 12, 1), total_amount=100,
                                 memo="raw", source_type="raw", source_key="raw:core", created_at=datetime(2026, 12, 1, tzinfo=UTC))
            s.add(entry)
            s.flush()
            s.execute(insert(JournalLine), [{"entry_id": entry.id, "account_id": cash, "debit_amount": 100,
                                             "credit_amount": 0}])
    assert "balance" in str(exc.value) or "借贷不平衡" in str(exc.value)
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 0
        assert s.scalar(select(func.count()).select_from(JournalLine)) == 0
        assert s.scalar(select(Account.balance_amount).where(Account.code == "cash")) == 0


def test_the_commit_refusal_speaks_chinese_and_a_balanced_post_still_commits(committed):
    with pytest.raises(Unbalanced, match="借贷不平衡：?.*借方 100 分，贷方 0 分|借贷不平衡（1 行"), \
            db.unit_of_work() as s:
        _unbalanced_write(s, "raw:zh")
        # the hook runs before PostgreSQL's deferred trigger, so both databases say it in Chinese
    with db.unit_of_work() as s:
        deposit(s, 2_000, key="ok:1")
    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 1
        assert ledger.run_check(s).ok


def test_a_correction_is_a_reversing_entry_once(session):
    cash = balance(session, "cash")
    entry = deposit(session, 30_000)
    reversal = ledger.reverse(session, entry.id, reason="录错金额")
    assert reversal.reversal_of_id == entry.id and reversal.total_amount == 30_000
    assert balance(session, "cash") == cash
    with pytest.raises(AlreadyReversed):
        ledger.reverse(session, entry.id, reason="再来")
    with pytest.raises(StateConflict, match="冲销凭证不能再冲销"):
        ledger.reverse(session, reversal.id, reason="再来")
    assert ledger.run_check(session).ok


def test_a_closed_month_takes_no_more_entries(session):
    clock.freeze(DEC_15)
    deposit(session, key="nov", day=date(2026, 11, 20))
    with pytest.raises(Exception, match="尚未结束"):
        ledger.close_period(session, date(2026, 12, 1), viewer=None)
    closed = ledger.close_period(session, date(2026, 11, 1), viewer=None)
    assert closed.line_count >= 2
    before = lines_count(session)
    with pytest.raises(PeriodClosed) as exc:
        deposit(session, key="nov-late", day=date(2026, 11, 30))
    assert "2026年11月已月结" in exc.value.message
    assert lines_count(session) == before
    with pytest.raises(StateConflict, match="已月结"):
        ledger.close_period(session, date(2026, 11, 1), viewer=None)
    # Around the service: the database refuses an entry in the closed month.
    with pytest.raises(DatabaseError), session.begin_nested():
        session.execute(text(
            "INSERT INTO finance_journal_entry (entry_date, period_month, total_amount, memo, source_type, "
            "source_key, created_at) VALUES (:d, :m, 100, 'raw', 'raw', 'raw:nov', :at)"),
            {"d": date(2026, 11, 30), "m": date(2026, 11, 1), "at": datetime(2026, 12, 1)})
    # A correction of a November entry goes into December.
    entry = session.scalar(select(JournalEntry).where(JournalEntry.source_key == "nov"))
    reversal = ledger.reverse(session, entry.id, reason="月结后发现错误")
    assert reversal.period_month == date(2026, 12, 1)
    assert ledger.run_check(session).ok


def test_an_earlier_open_month_must_be_closed_first(session):
    clock.freeze(DEC_15)
    deposit(session, key="oct", day=date(2026, 10, 5))
    with pytest.raises(Exception, match="请先月结更早的 2026年10月"):
        ledger.close_period(session, date(2026, 11, 1), viewer=None)


def test_finance_check_exits_non_zero_with_the_reason_when_an_invariant_breaks(committed):
    clock.freeze(DEC_15)
    with committed() as s, s.begin():
        deposit(s, 12_345, key="a", day=date(2026, 11, 3))
        deposit(s, 500, key="b", day=date(2026, 12, 3))
        ledger.close_period(s, date(2026, 11, 1), viewer=None)
    ok = CliRunner().invoke(main, ["finance", "check"])
    assert ok.exit_code == 0, ok.output
    assert "总账校验通过" in ok.output

    with committed() as s, s.begin():  # a balance edited by hand
        s.execute(text("UPDATE finance_account SET balance_amount = balance_amount + 1 WHERE code = 'cash'"))
    bad = CliRunner().invoke(main, ["finance", "check"])
    assert bad.exit_code == 1
    assert "库存现金" in bad.output and "与分录合计" in bad.output

    with committed() as s, s.begin():  # someone bypasses the triggers and edits a closed month's line
        s.execute(text("UPDATE finance_account SET balance_amount = balance_amount - 1 WHERE code = 'cash'"))
        if IS_POSTGRES:
            s.execute(text("ALTER TABLE finance_journal_line DISABLE TRIGGER USER"))
        else:
            s.execute(text("DROP TRIGGER finance_journal_line_no_update"))
        s.execute(text("UPDATE finance_journal_line SET debit_amount = 12000 WHERE debit_amount = 12345"))
        if IS_POSTGRES:
            s.execute(text("ALTER TABLE finance_journal_line ENABLE TRIGGER USER"))
    tampered = CliRunner().invoke(main, ["finance", "check", "--json"])
    assert tampered.exit_code == 1
    assert re.search(r"凭证 #\d+ 不平衡：2 行，借方 12000 分，贷方 12345 分", tampered.output)
    assert "已月结的2026年11月被改动" in tampered.output


def test_the_database_and_python_digests_of_a_month_agree(session):
    from finance.ledger.periods import fingerprint, python_fingerprint

    deposit(session, 700, key="d1", day=date(2026, 10, 3))
    deposit(session, 800, key="d2", day=date(2026, 10, 4))
    month = date(2026, 10, 1)
    assert fingerprint(session, month) == python_fingerprint(session, month)
    assert fingerprint(session, month)[:2] == (4, 1500)
