"""Backfilled snapshots (analytics.snapshots.backfill): a past day reconstructed from the append-only records
equals what the nightly snapshot wrote on that day; a day taken or not yet over is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from analytics import snapshots
from analytics.models import AnalyticsSnapshot, LoanDay
from core import clock
from lending.models import Repayment, RepaymentAllocation
from lending.servicing import cob, repayments
from tests.lending_flow_support import V
from tests.servicing_support import START, make_loan, on, pay, rows

DUE = START + timedelta(days=30)  # the first bill's due date (2026-12-23)
SECOND_DUE = DUE + timedelta(days=31)  # 2027-01-23
LAST = START + timedelta(days=85)


def _rows(session, day):
    return sorted(session.execute(select(LoanDay.loan_id, LoanDay.bucket, LoanDay.overdue_days,
                                         LoanDay.outstanding_principal_amount)
                                  .where(LoanDay.snapshot_date == day)).all())


def _book_through_time(session):
    """Five loans lived day by day, the close of business and the nightly snapshot run each day: one paid on
    time then stopping, one whose payment is reversed ten days later, one paid late (with penalty), one with
    grace days that never pays, one paying two bills on time whose first payment is reversed afterwards (the
    second payment written off again: the correction's difference rows). Returns the nightly rows of every day."""
    on_time = make_loan(session)
    reversed_ = make_loan(session)
    late = make_loan(session)
    make_loan(session, overdue_grace_days=3)  # never pays
    replayed = make_loan(session)
    taken = {}
    slip = first = None
    day = START
    while day <= LAST:
        on(day)
        if day == DUE:
            for w, loan in (on_time, reversed_):
                paid = pay(session, w, loan, rows(session, loan)[0].outstanding_amount, day)
                if loan is reversed_[1]:
                    slip = paid.id
        if day in (DUE, SECOND_DUE):
            w, loan = replayed
            bill = next(r for r in rows(session, loan) if r.status != "paid")
            paid = pay(session, w, loan, bill.outstanding_amount, day)
            first = first or paid.id
        if day == SECOND_DUE + timedelta(days=9):
            repayments.reverse_repayment(session, first, viewer=V(replayed[0].finance), reason="付款人账户错误")
        if day == DUE + timedelta(days=10):
            repayments.reverse_repayment(session, slip, viewer=V(reversed_[0].finance), reason="银行退票")
        if day == DUE + timedelta(days=5):
            w, loan = late
            pay(session, w, loan, rows(session, loan)[0].outstanding_amount, day)
        cob.run_date(day)
        assert snapshots.take(session, day) is not None
        taken[day] = _rows(session, day)
        day += timedelta(days=1)
    return taken


def test_a_backfilled_day_equals_the_nightly_snapshot_of_that_day(session):
    taken = _book_through_time(session)
    buckets = {b for day_rows in taken.values() for _, b, _, _ in day_rows}
    assert buckets >= {"C", "M1", "M2"}  # the book went through current, M1 and M2
    assert session.scalar(select(Repayment.id).where(Repayment.kind == "reversal")) is not None
    assert session.scalar(select(RepaymentAllocation.id).where(RepaymentAllocation.replay_id.is_not(None)))
    # the nightly rows forgotten (a test may; the product never deletes them), then every day reconstructed
    session.execute(delete(LoanDay))
    session.execute(delete(AnalyticsSnapshot))
    on(LAST + timedelta(days=20))
    for day, expected in taken.items():
        marker = snapshots.backfill(session, day)
        assert (marker.source, marker.loans, marker.pools) == ("backfill", len(expected), 0)
        assert _rows(session, day) == expected, day


def test_a_day_taken_or_not_yet_over_is_refused_and_nothing_written(session):
    make_loan(session)  # disbursed on START
    on(START + timedelta(days=5))
    today = clock.today()
    yesterday = today - timedelta(days=1)
    snapshots.take(session, yesterday)
    before = _rows(session, yesterday)
    with pytest.raises(snapshots.BackfillRefused, match="已有快照"):
        snapshots.backfill(session, yesterday)
    for day in (today, today + timedelta(days=1)):
        with pytest.raises(snapshots.BackfillRefused, match="尚未结束"):
            snapshots.backfill(session, day)
        assert session.get(AnalyticsSnapshot, day) is None
    assert _rows(session, yesterday) == before
    assert session.get(AnalyticsSnapshot, yesterday).source == "nightly"
    assert snapshots.backfill(session, yesterday - timedelta(days=1)).loans == 1
    assert snapshots.backfill(session, START - timedelta(days=1)).loans == 0  # before the loan was disbursed


def test_the_demo_backfills_its_history_and_the_risk_charts_are_not_empty(session):
    from datetime import UTC, date, datetime

    from analytics import dashboards
    from analytics import demo as analytics_demo
    from analytics.metrics import Filters
    from crm import demo as crm_demo
    from crm.models import Staff
    from lending import demo as lending_demo

    clock.freeze(datetime(2026, 12, 6, 1, 30, tzinfo=UTC))
    crm_demo.seed(session)
    lending_demo.seed(session)
    lines = analytics_demo.seed(session)
    assert [line.split("：")[0] for line in lines] == ["渠道成本", "贷款日快照"], lines
    assert lines[1].startswith("贷款日快照：补录 215 天"), lines
    assert analytics_demo.seed(session) == []  # once
    assert set(session.scalars(select(AnalyticsSnapshot.source))) == {"backfill"}
    assert set(session.scalars(select(LoanDay.bucket))) == {"C", "M1", "M2", "M3", "M3+"}
    risk = session.scalar(select(Staff).where(Staff.username == "risk"))
    board = dashboards.build(session, V(risk), Filters(date(2026, 11, 1), date(2026, 12, 5)))
    trend, rolls, curves = (board.charts[k] for k in ("overdue_trend", "roll_rates", "vintages"))
    assert len(trend["x"]) == 30 and any(any(s["data"]) for s in trend["series"])
    assert trend["note"].endswith("其中 30 天为事后补录（由还款记录重建）")
    assert rolls["items"] and curves["series"]
