"""The report builder's time dimension (按日 / 按周 / 按月, in business time, computed in SQL) and its second
dimension (a cross-tab): buckets across a month and a time-zone boundary, cross-tab figures that sum to the
one-dimension ones, bad combinations refused, time rows that drill down to lists of as many rows, and the export and
the WeCom push with both dimension columns."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from analytics import export_jobs, metrics, report_schedule, reports
from analytics.metrics import Filters
from analytics.models import ExportJob, Report
from core import clock
from core.db import unit_of_work
from crm import customer_queries
from lending.models import Disbursement, Loan
from tests.analytics_support import seed
from tests.factories import make_customer
from tests.lending_flow_support import AMOUNT, V, make_world

# UTC instants and their business (Asia/Shanghai) dates
EVENTS = {
    "甲": datetime(2026, 11, 29, 15, 30, tzinfo=UTC),  # 11-29 23:30, a Sunday: the week of Monday 11-23
    "乙": datetime(2026, 11, 29, 16, 30, tzinfo=UTC),  # 11-30 00:30, Monday (in UTC still Sunday)
    "丙": datetime(2026, 11, 30, 15, 59, tzinfo=UTC),  # 11-30 23:59
    "丁": datetime(2026, 11, 30, 17, 0, tzinfo=UTC),  # 12-01 01:00: December in Shanghai, November in UTC
    "戊": datetime(2026, 12, 2, 3, 0, tzinfo=UTC),  # 12-02 11:00
}
SPAN = Filters(start=date(2026, 11, 25), end=date(2026, 12, 5))
TODAY = date(2026, 12, 5)  # the report's 近 30 天: 11-06 … 12-05


def _leads(session):
    """The five leads of EVENTS: 甲 乙 丁 owned by sales, 丙 戊 by other_sales (丁 and 戊 from referrals)."""
    clock.freeze(datetime(2026, 12, 5, 4, 0, tzinfo=UTC))
    w = make_world(session)
    w.customer.created_at = datetime(2026, 10, 1, tzinfo=UTC)  # the world's own customer: outside every period
    for name, at in EVENTS.items():
        owner = w.other_sales if name in ("丙", "戊") else w.sales
        customer = make_customer(session, owner=owner, name=name,
                                 **({"source": "referral"} if name in ("丁", "戊") else {}))
        customer.created_at = at
    session.flush()
    return w


def _draft(**kw) -> reports.ReportDraft:
    values = {"name": "月度来源交叉表", "metrics": ["funnel_lead"], "dimension": "month",
              "second_dimension": "salesperson", "period": "30d"}
    return reports.ReportDraft(**(values | kw))


def test_time_buckets_are_business_days_weeks_and_months_across_the_month_and_time_zone_boundary(session):
    w = _leads(session)
    manager = V(w.manager)
    assert metrics.by_dimension(session, manager, "funnel_lead", "day", SPAN) == [
        (date(2026, 11, 29), 1), (date(2026, 11, 30), 2), (date(2026, 12, 1), 1), (date(2026, 12, 2), 1)]
    assert metrics.by_dimension(session, manager, "funnel_lead", "week", SPAN) == [
        (date(2026, 11, 23), 1), (date(2026, 11, 30), 4)]
    assert metrics.by_dimension(session, manager, "funnel_lead", "month", SPAN) == [
        (date(2026, 11, 1), 3), (date(2026, 12, 1), 2)]
    # the buckets agree with the period filter: a day's figure is the figure of that day alone
    for day, figure in metrics.by_dimension(session, manager, "funnel_lead", "day", SPAN):
        assert metrics.value(session, manager, "funnel_lead", Filters(start=day, end=day)) == figure


def test_a_loan_metric_is_bucketed_by_its_disbursement_date(session):
    s = seed(session)  # one loan of AMOUNT, disbursed on 2026-11-23
    disbursed_on = session.scalar(select(Disbursement.disbursement_date).join(Loan, Loan.disbursement_id == Disbursement.id))
    assert disbursed_on == date(2026, 11, 23)
    flt = Filters(start=date(2026, 11, 1), end=date(2026, 11, 30))
    manager = V(s.w.manager)
    assert metrics.by_dimension(session, manager, "disbursed_amount", "week", flt) == [(date(2026, 11, 23), AMOUNT)]
    assert metrics.by_dimensions(session, manager, "disbursed_count", ("month", "salesperson"), flt) == [
        ((date(2026, 11, 1), s.w.sales.id), 1)]


def test_a_time_report_is_in_time_order_and_each_row_drills_down_to_as_many_customers(session):
    w = _leads(session)
    report = reports.save(session, V(w.manager), _draft(dimension="day", second_dimension=None))
    result = reports.run(session, V(w.manager), report, TODAY)
    # every day of the period has a row, zero rows included (近 30 天: 11-06 … 12-05)
    assert [r.label for r in result.rows if r.cells[0].value] == ["2026-11-29", "2026-11-30", "2026-12-01",
                                                                  "2026-12-02"]
    assert [r.keys[0] for r in result.rows] == reports.time_buckets("day", date(2026, 11, 6), TODAY)
    assert result.dimension_labels == ["日期"]
    for row in result.rows:
        url = row.cells[0].url
        params = dict(parse_qsl(urlsplit(url).query))
        assert params["created_from"] == params["created_to"] == row.keys[0].isoformat()
        listed = session.scalar(customer_queries.filtered(session, V(w.manager),
                                                          customer_queries.filter_from_params(params))
                                .with_only_columns(func.count()))
        assert listed == row.cells[0].value
    # a week clipped by the report's period drills to the part inside it
    weekly = reports.save(session, V(w.manager), _draft(name="周报", dimension="week", second_dimension=None))
    last = reports.run(session, V(w.manager), weekly, TODAY).rows[-1]
    assert last.label == "2026-W49（11-30 起）"
    assert "created_from=2026-11-30" in last.cells[0].url and "created_to=2026-12-05" in last.cells[0].url


def test_a_cross_tab_sums_to_each_one_dimension_report(session):
    w = _leads(session)
    manager = V(w.manager)
    cross = reports.run(session, manager, reports.save(session, manager, _draft()), TODAY)
    assert cross.dimension_labels == ["月份", "业务员"]
    assert [r.labels for r in cross.rows] == [("2026-11", w.sales.display_name), ("2026-11", w.other_sales.display_name),
                                              ("2026-12", w.sales.display_name), ("2026-12", w.other_sales.display_name)]
    # within a month largest first (November: sales 2, other_sales 1), a tie by the value
    by_month = reports.run(session, manager, reports.save(session, manager, _draft(second_dimension=None)), TODAY)
    by_sales = reports.run(session, manager, reports.save(session, manager, _draft(dimension="salesperson",
                                                                                  second_dimension=None)), TODAY)
    for single, position in ((by_month, 0), (by_sales, 1)):
        sums: dict = {}
        for row in cross.rows:
            sums[row.keys[position]] = sums.get(row.keys[position], 0) + row.cells[0].value
        assert sums == {row.keys[0]: row.cells[0].value for row in single.rows}
    assert sum(r.cells[0].value for r in cross.rows) == cross.totals.cells[0].value == 5
    # a pair's drill-down narrows both: the month and the salesperson
    december_sales = cross.rows[2].cells[0].url
    assert f"owner_id={w.sales.id}" in december_sales and "created_from=2026-12-01" in december_sales
    assert "created_to=2026-12-05" in december_sales


@pytest.mark.parametrize(("draft", "message"), [
    ({"dimension": None, "second_dimension": "source"}, "请先选择第一个分组维度"),
    ({"dimension": "source", "second_dimension": "source"}, "两个分组维度不能相同"),
    ({"dimension": "month", "second_dimension": "day"}, "两个分组维度不能都是时间"),
    ({"metrics": ["funnel_lead", "owned_customers"], "dimension": "week", "second_dimension": None},
     "指标「私海客户」不能按「周」分组"),
    ({"metrics": ["funnel_lead", "applications"], "dimension": "month", "second_dimension": "source"},
     "指标「进件数」不能按「来源」分组"),
    ({"metrics": ["fee_revenue"], "dimension": "month", "second_dimension": "salesperson"},
     "不能按「业务员」分组"),
    ({"second_dimension": "weather"}, "未知的维度：weather"),
])
def test_bad_dimension_combinations_are_refused_and_nothing_is_saved(session, draft, message):
    w = _leads(session)
    with pytest.raises(reports.ReportInvalid, match=message):
        reports.save(session, V(w.manager), _draft(**draft))
    assert session.scalar(select(func.count(Report.id))) == 0


def test_an_edit_can_drop_the_second_dimension(session):
    w = _leads(session)
    report = reports.save(session, V(w.manager), _draft())
    assert (report.dimension, report.second_dimension) == ("month", "salesperson")
    reports.save(session, V(w.manager), _draft(second_dimension=""), report.id)
    assert (report.dimension, report.second_dimension) == ("month", None)


def test_the_push_lists_both_dimensions(session):
    w = _leads(session)
    report = reports.save(session, V(w.manager), _draft())
    text = report_schedule.message(session, report, TODAY)
    assert "**按月份 × 业务员**" in text
    assert f"- 2026-12 · {w.sales.display_name}：新增线索 1" in text


def test_the_export_has_a_column_per_dimension(committed, task_runner):
    with unit_of_work() as session:
        w = _leads(session)
        report = reports.save(session, V(w.manager), _draft(period="month"))
        job_id = export_jobs.request(session, V(w.manager), "report", {"report_id": report.id}).id
        sales, other = w.sales.display_name, w.other_sales.display_name
    task_runner.drain()
    with unit_of_work() as session:
        job = session.get(ExportJob, job_id)
        assert job.status == "done"
        path = export_jobs.file_path(job)
    rows = list(load_workbook(io.BytesIO(path.read_bytes()), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[0] == ("月份", "业务员", "新增线索")
    # 本月 as of the frozen clock (2026-12-05): 丁 (sales) and 戊 (other_sales)
    assert sorted(rows[1:3]) == sorted([("2026-12", sales, 1), ("2026-12", other, 1)])
    assert rows[3][0] == "合计" and rows[3][1] in ("", None) and rows[3][2] == 2 and len(rows) == 4


def test_installments_due_are_bucketed_by_their_due_date_and_sum_to_the_total(session):
    s = seed(session)  # one loan disbursed 2026-11-23: its installments fall due month by month
    flt = Filters(start=date(2026, 11, 1), end=date(2027, 12, 31))
    manager = V(s.w.manager)
    months = metrics.by_dimension(session, manager, "due_amount", "month", flt)
    assert len(months) >= 2 and [m for m, _ in months] == sorted(m for m, _ in months)
    assert all(m.day == 1 for m, _ in months)
    assert sum(v for _, v in months) == metrics.value(session, manager, "due_amount", flt) > 0
    for month, figure in months:  # each month's figure is the figure of that month alone
        _, last = metrics.bucket_span("month", month)
        assert metrics.value(session, manager, "due_amount", Filters(start=month, end=last)) == figure
