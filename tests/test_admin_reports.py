"""报表 › 自定义报表 over HTTP: the form saves a report and runs it; a refused form shows the Chinese reason, keeps
what was typed and saves nothing; a salesperson gets the report shared with their role, not the builder, and the
export button starts a background export job of the report."""

from __future__ import annotations

from sqlalchemy import func, select

from analytics.models import ExportJob, Report
from tests.analytics_support import seed
from tests.test_admin_support import console_client, log_in


def _form(csrf: str, **kw) -> dict[str, str | list[str]]:
    fields = {"csrf_token": csrf, "name": "业务员月报", "dimension": "salesperson", "period": "month",
              "metrics": ["funnel_lead", "disbursed_amount"], "shared_roles": ["sales"], "schedule": "none"}
    return fields | kw


def test_the_form_saves_and_runs_a_report(session):
    s = seed(session)
    client = console_client()
    csrf = log_in(client, session, s.w.manager)
    assert "新建报表" in client.get("/console/reports/new").text
    saved = client.post("/console/reports/new", data=_form(csrf))
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert "报表已保存" in page and "业务员月报" in page and s.far.display_name in page
    assert 'data-chart="m_funnel_lead"' in page and "/console/customers?created_from=2026-11-01" in page


def test_a_refused_form_shows_the_reason_and_saves_nothing(session):
    s = seed(session)
    client = console_client()
    csrf = log_in(client, session, s.w.manager)
    refused = client.post("/console/reports/new", data=_form(csrf, dimension="bucket"))
    assert refused.status_code == 422
    assert "指标「新增线索」不能按「账期」分组" in refused.text
    assert 'value="业务员月报"' in refused.text  # what was typed stays
    assert session.scalar(select(func.count(Report.id))) == 0


def test_a_salesperson_runs_the_shared_report_and_exports_it(session):
    s = seed(session)
    manager = console_client()
    saved = manager.post("/console/reports/new", data=_form(log_in(manager, session, s.w.manager)))
    report_url = saved.headers["location"].split("?")[0]
    sales = console_client()
    csrf = log_in(sales, session, s.w.sales)
    assert sales.get("/console/reports/new").status_code == 403
    page = sales.get(report_url).text
    assert s.w.sales.display_name in page and s.far.display_name not in page
    export = sales.post(report_url + "/export", data={"csrf_token": csrf})
    assert export.status_code == 303 and export.headers["location"].startswith("/console/exports/")
    job = session.scalar(select(ExportJob).order_by(ExportJob.id.desc()))
    assert job.kind == "report" and job.requested_by_staff_id == s.w.sales.id


def test_the_form_saves_a_cross_tab_and_shows_both_dimension_columns(session):
    s = seed(session)
    client = console_client()
    csrf = log_in(client, session, s.w.manager)
    form = client.get("/console/reports/new").text
    assert 'name="second_dimension"' in form and '<option value="month" >按月</option>' in form
    saved = client.post("/console/reports/new", data=_form(csrf, dimension="week", second_dimension="salesperson"))
    assert saved.status_code == 303
    report = session.scalar(select(Report))
    assert (report.dimension, report.second_dimension) == ("week", "salesperson")
    page = client.get(saved.headers["location"]).text
    assert '<th class="dim">周（起始日）</th><th class="dim">业务员</th>' in page
    assert f'<td class="dim">2026-W48（11-23 起）</td><td class="dim">{s.w.sales.display_name}</td>' in page
    refused = client.post(f"/console/reports/{report.id}/edit",
                          data=_form(csrf, dimension="week", second_dimension="day"))
    assert refused.status_code == 422 and "两个分组维度不能都是时间" in refused.text
    session.refresh(report)
    assert report.second_dimension == "salesperson"
