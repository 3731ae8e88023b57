"""Named periods (本季度, 上季度, 本年, 近 90 天 …) and a time report's zero rows: every day / week / month of the
period is a row, in time order, a bucket without figures a row of zeros; with a second dimension only a bucket
with no row at all gets one."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from analytics import periods, reports
from analytics.metrics import Filters
from core import clock
from tests.factories import make_customer
from tests.lending_flow_support import V, make_world
from tests.test_admin_support import console_client, log_in


@pytest.mark.parametrize(("name", "today", "start", "end"), [
    ("quarter", date(2026, 11, 23), date(2026, 10, 1), date(2026, 11, 23)),
    ("quarter", date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1)),
    ("last_quarter", date(2026, 11, 23), date(2026, 7, 1), date(2026, 9, 30)),
    ("last_quarter", date(2026, 2, 10), date(2025, 10, 1), date(2025, 12, 31)),
    ("year", date(2026, 11, 23), date(2026, 1, 1), date(2026, 11, 23)),
    ("90d", date(2026, 11, 23), date(2026, 8, 26), date(2026, 11, 23)),
])
def test_named_periods_cover_their_dates(name, today, start, end):
    assert periods.resolve(name, today) == (name, Filters(start=start, end=end))
    assert len(name) <= 12  # analytics_report.period


def test_the_new_periods_have_chinese_labels():
    assert {k: periods.PERIODS[k] for k in ("quarter", "last_quarter", "year", "90d")} == {
        "quarter": "本季度", "last_quarter": "上季度", "year": "本年", "90d": "近 90 天"}


def test_the_dashboard_and_the_report_builder_offer_the_new_periods(session):
    clock.freeze(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    w = make_world(session)
    client = console_client()
    log_in(client, session, w.manager)
    home = client.get("/console/?period=quarter")
    assert home.status_code == 200
    for label in ("本季度", "上季度", "本年", "近 90 天"):
        assert label in home.text
    assert "2026-10-01" in home.text  # the quarter's first day in the cards' drill-down links
    builder = client.get("/console/reports/new")
    assert builder.status_code == 200 and "本季度" in builder.text and "近 90 天" in builder.text


@pytest.mark.parametrize(("dimension", "start", "end", "keys"), [
    ("day", date(2026, 11, 29), date(2026, 12, 2),
     [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)]),
    ("week", date(2026, 11, 25), date(2026, 12, 8), [date(2026, 11, 23), date(2026, 11, 30), date(2026, 12, 7)]),
    ("month", date(2026, 10, 15), date(2027, 1, 3),
     [date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]),
])
def test_time_buckets_cover_the_period(dimension, start, end, keys):
    assert reports.time_buckets(dimension, start, end) == keys


def _world(session):
    clock.freeze(datetime(2026, 12, 31, 4, 0, tzinfo=UTC))
    w = make_world(session)
    w.customer.created_at = datetime(2025, 1, 1, tzinfo=UTC)  # outside the period
    for name, owner, at in (("甲", w.sales, datetime(2026, 11, 3, 2, tzinfo=UTC)),
                            ("乙", w.other_sales, datetime(2026, 11, 4, 2, tzinfo=UTC)),
                            ("丙", w.sales, datetime(2026, 11, 25, 2, tzinfo=UTC))):
        make_customer(session, owner=owner, name=name).created_at = at
    session.flush()
    return w


def _run(session, w, **kw):
    draft = reports.ReportDraft(**({"name": "季度线索", "metrics": ["funnel_lead"], "period": "quarter"} | kw))
    return reports.run(session, V(w.manager), reports.save(session, V(w.manager), draft), date(2026, 12, 31))


def test_a_monthly_report_has_a_zero_row_for_a_month_without_figures(session):
    w = _world(session)
    result = _run(session, w, dimension="month")
    assert [(r.label, r.cells[0].value) for r in result.rows] == [("2026-10", 0), ("2026-11", 3), ("2026-12", 0)]
    assert "created_from=2026-10-01" in result.rows[0].cells[0].url  # a zero row drills to its (empty) list


def test_a_weekly_report_lists_every_week_in_time_order(session):
    w = _world(session)
    rows = _run(session, w, dimension="week").rows
    keys = [r.keys[0] for r in rows]
    assert keys == reports.time_buckets("week", date(2026, 10, 1), date(2026, 12, 31)) and len(keys) == 14
    assert sum(r.cells[0].value for r in rows) == 3
    assert [r.cells[0].value for r in rows if r.keys[0] == date(2026, 11, 2)] == [2]


def test_a_cross_tab_fills_only_the_time_buckets_without_any_row(session):
    w = _world(session)
    rows = _run(session, w, dimension="month", second_dimension="salesperson").rows
    assert [(r.keys[0], r.labels[1], r.cells[0].value) for r in rows] == [
        (date(2026, 10, 1), "—", 0),
        (date(2026, 11, 1), w.sales.display_name, 2), (date(2026, 11, 1), w.other_sales.display_name, 1),
        (date(2026, 12, 1), "—", 0)]
    assert rows[0].cells[0].url is None  # no salesperson to narrow to
