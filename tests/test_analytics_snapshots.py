"""Nightly snapshots: a day once taken never changes; roll rates and vintage curves are read from them, within
the viewer's scope."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, update

from admin.console import dashboard_view
from analytics import dashboards, loan_history, snapshots
from analytics.metrics import Filters
from analytics.models import LoanDay, PoolDay
from lending.models import Loan
from tests.analytics_support import seed
from tests.lending_flow_support import AMOUNT, V

NOV_END, DEC_END = date(2026, 11, 30), date(2026, 12, 31)


def _snapshot_rows(session, day):
    return session.scalar(select(func.count()).select_from(LoanDay).where(LoanDay.snapshot_date == day))


def test_a_day_once_taken_does_not_change_when_the_loans_do(session):
    s = seed(session)
    assert snapshots.take(session, NOV_END).loans == 1
    assert session.scalar(select(LoanDay.outstanding_principal_amount)) == AMOUNT
    # the loan falls overdue afterwards: November's figures stay, a second take of November writes nothing
    session.execute(update(Loan).where(Loan.id == s.loan.id).values(bucket="M1", overdue_days=8))
    assert snapshots.take(session, NOV_END) is None
    assert _snapshot_rows(session, NOV_END) == 1
    manager = V(s.w.manager)
    assert loan_history.overdue_trend(session, manager, NOV_END, NOV_END) == {NOV_END: {"C": AMOUNT}}
    snapshots.take(session, DEC_END)
    assert loan_history.overdue_trend(session, manager, NOV_END, DEC_END) == {
        NOV_END: {"C": AMOUNT}, DEC_END: {"M1": AMOUNT}}
    # pool sizes are kept as well (none of the seeded customers is in a pool)
    assert session.scalar(select(func.count()).select_from(PoolDay)) == 0


def test_roll_rates_and_vintages_come_from_the_snapshots_within_scope(session):
    s = seed(session)  # one loan of AMOUNT, disbursed 2026-11-23 to 李四 (owned by w.sales)
    snapshots.take(session, NOV_END)
    session.execute(update(Loan).where(Loan.id == s.loan.id).values(bucket="M1", overdue_days=8))
    snapshots.take(session, DEC_END)
    # today the loan is current again: the history does not move
    session.execute(update(Loan).where(Loan.id == s.loan.id).values(bucket="C", overdue_days=0))
    manager, far = V(s.w.manager), V(s.far)
    rolls = {r.bucket: r for r in loan_history.roll_rates(session, manager, NOV_END, DEC_END)}
    assert (rolls["C"].loans, rolls["C"].principal, rolls["C"].rolled_principal) == (1, AMOUNT, AMOUNT)
    assert rolls["C"].rate == Decimal("1.0000") and rolls["M1"].rate is None
    assert loan_history.roll_window(session, DEC_END) == (NOV_END, DEC_END)
    curves = loan_history.vintages(session, manager, DEC_END)
    assert curves == {date(2026, 11, 1): [(1, Decimal("1.0000"))]}
    # a salesperson of another department sees none of it
    assert loan_history.roll_rates(session, far, NOV_END, DEC_END)[0].principal == 0
    assert loan_history.vintages(session, far, DEC_END) == {}
    assert loan_history.overdue_trend(session, far, NOV_END, DEC_END) == {NOV_END: {}, DEC_END: {}}


def test_the_risk_dashboard_draws_the_history_from_the_snapshots(session):
    s = seed(session)
    snapshots.take(session, NOV_END)
    session.execute(update(Loan).where(Loan.id == s.loan.id).values(bucket="M1", overdue_days=8))
    snapshots.take(session, DEC_END)
    board = dashboards.build(session, V(s.w.risk), Filters(date(2026, 12, 1), DEC_END))
    assert board.charts["roll_rates"]["items"] == [
        ("C→M1", Decimal("1.0000"), "/console/lending/loans?as_of=2026-11-30&snapshot_bucket=C&to_as_of=2026-12-31"
                                    "&to_bucket=worse", 1)]
    trend = board.charts["overdue_trend"]
    assert trend["x"] == ["12-31"] and trend["series"][0]["data"] == [AMOUNT]  # M1; November 30 is 31 days back
    assert board.charts["vintages"]["series"] == [{
        "name": "2026-11", "data": [Decimal("1.0000")],
        "urls": ["/console/lending/loans?as_of=2026-12-31&snapshot_bucket=overdue&vintage=2026-11"]}]
    payload = json.loads(json.dumps(dashboard_view.chart_payload(board)))
    assert payload["vintages"]["series"][0]["data"] == [100.0] and payload["roll_rates"]["unit"] == "percent"


def test_the_task_takes_nothing_before_a_close_of_business(session):
    seed(session)
    assert snapshots.due_date(session) is None
