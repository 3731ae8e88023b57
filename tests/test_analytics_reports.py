"""The report builder (自定义报表): a manager saves a report of metrics by a dimension and shares it with a role; a
salesperson running it sees only their own numbers; bad input is refused in Chinese and nothing is saved; the
report exports through the background export jobs with the runner's scope."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from analytics import export_jobs, reports
from analytics.models import ExportJob, Report
from core.db import unit_of_work
from core.errors import PermissionDenied
from tests.analytics_support import seed
from tests.lending_flow_support import AMOUNT, V

LEADS_AND_MONEY = ["funnel_lead", "disbursed_amount"]


def _draft(**kw) -> reports.ReportDraft:
    values = {"name": "业务员月报", "metrics": LEADS_AND_MONEY, "dimension": "salesperson", "period": "month",
              "shared_roles": ["sales"]}
    return reports.ReportDraft(**(values | kw))


def _figures(result: reports.Result) -> dict[str, list]:
    return {row.label: [c.value for c in row.cells] for row in result.rows}


def _count(session) -> int:
    return session.scalar(select(func.count(Report.id)))


def test_a_salesperson_running_a_shared_report_sees_only_own_numbers(session):
    s = seed(session)  # November 2026: sales 3 leads (one disbursed), other_sales 1, far 1
    w = s.w
    report = reports.save(session, V(w.manager), _draft())
    manager_view = _figures(reports.run(session, V(w.manager), report))
    assert manager_view[w.sales.display_name] == [3, AMOUNT]
    assert manager_view[w.other_sales.display_name] == [1, 0]
    assert manager_view[s.far.display_name] == [1, 0]

    shared = reports.get_for_run(session, V(w.sales), report.id)  # shared with the sales role
    result = reports.run(session, V(w.sales), shared)
    assert _figures(result) == {w.sales.display_name: [3, AMOUNT]}
    assert [c.value for c in result.totals.cells] == [3, AMOUNT]
    # each figure drills down to the list behind it, with the row's salesperson and the period
    lead_cell = result.rows[0].cells[0]
    assert lead_cell.url.startswith("/console/customers?") and f"owner_id={w.sales.id}" in lead_cell.url
    assert "created_from=2026-11-01" in lead_cell.url and "created_to=2026-11-23" in lead_cell.url
    assert result.rows[0].cells[1].url.startswith("/console/lending/loans?")


def test_a_report_not_shared_with_the_role_is_not_found(session):
    s = seed(session)
    report = reports.save(session, V(s.w.manager), _draft(shared_roles=["supervisor"]))
    with pytest.raises(reports.ReportNotFound):
        reports.get_for_run(session, V(s.w.sales), report.id)
    assert reports.runnable(session, V(s.w.sales)) == []
    assert [r.id for r in reports.runnable(session, V(s.w.manager))] == [report.id]


def test_only_managers_and_admins_build_reports(session):
    s = seed(session)
    with pytest.raises(PermissionDenied):
        reports.save(session, V(s.w.sales), _draft())
    report = reports.save(session, V(s.w.manager), _draft())
    with pytest.raises(PermissionDenied):  # shared with sales to run, not to edit
        reports.get_for_edit(session, V(s.w.sales), report.id)
    assert _count(session) == 1


@pytest.mark.parametrize(("draft", "message"), [
    ({"metrics": ["funnel_lead", "no_such_metric"]}, "未知的指标：no_such_metric"),
    ({"dimension": "weather"}, "未知的维度：weather"),
    ({"metrics": ["overdue_rate"], "dimension": "bucket"}, "指标「逾期率（笔数）」不能按「账期」分组"),
    ({"metrics": []}, "请至少选择一个指标"),
    ({"name": "  "}, "请填写报表名称"),
    ({"period": "forever"}, "未知的统计区间：forever"),
    ({"filters": {"owner_id": 999999}}, "所选业务员不存在"),
    ({"metrics": ["funnel_lead"], "filters": {"product_id": "PRODUCT"}}, "指标「新增线索」不能按「产品」筛选"),
    ({"shared_roles": ["boss"]}, "未知的角色：boss"),
    ({"schedule": "daily", "schedule_time": "9点"}, "推送时间请填写为 时:分"),
    ({"schedule": "weekly", "schedule_time": "09:00", "schedule_weekday": None}, "每周推送请选择星期几"),
    ({"schedule": "daily", "schedule_time": "09:00", "chat_name": "日报群", "chat_staff_ids": []},
     "企业微信群聊至少需要 2 名成员"),
])
def test_bad_input_is_refused_in_chinese_and_nothing_is_saved(session, draft, message):
    s = seed(session)
    if draft.get("filters", {}).get("product_id") == "PRODUCT":  # the seeded product (ids differ per database)
        draft = draft | {"filters": {"product_id": s.w.product.id}}
    with pytest.raises(reports.ReportInvalid) as refused:
        reports.save(session, V(s.w.manager), _draft(**draft))
    assert message in refused.value.message
    assert _count(session) == 0


def test_a_bad_edit_leaves_the_saved_report_as_it_was(session):
    s = seed(session)
    report = reports.save(session, V(s.w.manager), _draft())
    with pytest.raises(reports.ReportInvalid):
        reports.save(session, V(s.w.manager), _draft(name="改名", dimension="weather"), report.id)
    session.refresh(report)
    assert (report.name, report.dimension) == ("业务员月报", "salesperson")


def test_a_report_without_dimension_is_one_row_of_totals_with_rates(session):
    s = seed(session)
    report = reports.save(session, V(s.w.manager), _draft(metrics=["funnel_lead", "conversion_rate"], dimension=""))
    result = reports.run(session, V(s.w.manager), report)
    assert result.totals is None and len(result.rows) == 1
    leads, conversion = result.rows[0].cells
    assert leads.value == 5 and str(conversion.value) == "0.2000"  # 1 of 5 leads disbursed


def test_a_report_exports_through_the_background_job_with_the_runners_scope(committed, task_runner):
    with unit_of_work() as session:
        s = seed(session)
        report = reports.save(session, V(s.w.manager), _draft())
        job_id = export_jobs.request(session, V(s.w.sales), "report", {"report_id": report.id}).id
        sales_name = s.w.sales.display_name
    task_runner.drain()
    with unit_of_work() as session:
        job = session.get(ExportJob, job_id)
        assert (job.status, job.total_rows, job.done_rows) == ("done", 2, 2)  # the salesperson's row, the total
        path = export_jobs.file_path(job)
    rows = list(load_workbook(io.BytesIO(path.read_bytes()), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[0] == ("业务员", "新增线索", "放款金额(元)")
    assert rows[1][0] == sales_name and rows[1][1] == 3 and float(rows[1][2]) == AMOUNT / 100
    assert rows[2][0] == "合计" and len(rows) == 3
