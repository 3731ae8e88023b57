"""Every metric drills down to a list, and the list behind each figure makes it: the applications list's count is
进件数, its decided applications are the approval rate's denominator, the overdue loans the overdue rate's
numerator, the bills list's totals the collection rate's paid and due."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import date

import pytest

from analytics import dashboards, metrics, reports  # noqa: F401 - reports imports every metric module
from analytics.export_kinds import KINDS
from analytics.metrics import Filters
from lending.servicing import bills, loans
from tests.analytics_support import PERIOD, seed
from tests.lending_flow_support import V
from tests.servicing_support import on, pay
from tests.test_admin_support import console_client, log_in

NOV = Filters(*PERIOD)
FIRST_DUES = Filters(date(2026, 12, 1), date(2027, 1, 31))  # the seeded loan's first two installments


def _client(session, staff):
    client = console_client()
    log_in(client, session, staff)
    return client


def _page(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, (url, page.text[:500])
    return page.text


def _count(client, url: str) -> int:
    text = _page(client, url)
    total = re.search(r"共 (\d+) 条", text)
    assert total, url
    return int(total.group(1))


def _bill_totals(client, url: str) -> tuple[int, int, int]:
    m = re.search(r'data-bill-totals data-count="(\d+)" data-due="(\d+)" data-paid="(\d+)"', _page(client, url))
    assert m, url
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_every_registered_metric_has_a_drill_down():
    missing = [key for key, m in metrics.METRICS.items() if m.drill is None]
    assert not missing, f"metrics without a drill-down: {missing}"
    assert len(metrics.METRICS) >= 25


@pytest.mark.parametrize("who", ["manager", "sales", "other_sales"])
def test_the_applications_figure_is_the_row_count_of_its_list(session, who):
    s = seed(session)
    staff = getattr(s.w, who)
    figure = metrics.value(session, V(staff), "applications", NOV)
    url = metrics.get("applications").drill(NOV)
    assert url.startswith("/console/lending/applications?view=list&created_from=2026-11-01&created_to=2026-11-30")
    assert _count(_client(session, staff), url) == figure
    assert figure == {"manager": 3, "sales": 2, "other_sales": 1}[who]


def test_the_applications_list_honours_the_dashboard_filters(session):
    s = seed(session)
    client = _client(session, s.w.manager)
    for flt in (replace(NOV, owner_id=s.w.sales.id), replace(NOV, owner_id=s.w.other_sales.id),
                replace(NOV, source="referral"), replace(NOV, department_id=s.w.sales.department_id),
                Filters(*PERIOD[:1], PERIOD[0])):
        figure = metrics.value(session, V(s.w.manager), "applications", flt)
        assert _count(client, metrics.get("applications").drill(flt)) == figure, flt


def test_the_approval_rate_drills_to_its_decided_applications(session):
    s = seed(session)
    client = _client(session, s.w.manager)
    url = metrics.get("approval_rate").drill(NOV)
    decided = _count(client, url)
    approved = _count(client, url.replace("status=decided", "status=approved_all"))
    assert (approved, decided) == (1, 2)  # 李四 disbursed, 王五 rejected; 钱七's is still in intake
    assert metrics.value(session, V(s.w.manager), "approval_rate", NOV) == metrics.rate(approved, decided)


def test_the_conversion_rate_drills_to_the_leads_that_reached_disbursement(session):
    s = seed(session)
    client = _client(session, s.w.manager)
    converted = _count(client, metrics.get("conversion_rate").drill(NOV))
    leads = metrics.value(session, V(s.w.manager), "funnel_lead", NOV)
    assert converted == 1
    assert metrics.value(session, V(s.w.manager), "conversion_rate", NOV) == metrics.rate(converted, leads)


def test_the_overdue_rate_drills_to_the_active_overdue_loans(session):
    s = seed(session)
    s.loan.bucket, s.loan.overdue_days = "M1", 5
    session.flush()
    client = _client(session, s.w.manager)
    page = _page(client, metrics.get("overdue_rate").drill(NOV))
    overdue = len(re.findall(r'<tr><td><a href="/console/lending/loans/\d+">', page))
    active = metrics.value(session, V(s.w.manager), "active_loans", NOV)
    assert overdue == 1 and active == 1
    assert metrics.value(session, V(s.w.manager), "overdue_rate", NOV) == metrics.rate(overdue, active)


def _repaid_seed(session):
    s = seed(session)
    first = bills.list_bills(session, V(s.w.manager), bills.BillFilter(loan=loans.LoanFilter(customer_id=s.loan.customer_id)),
                             limit=1)[0]
    on(first.installment.due_date)
    pay(session, s.w, s.loan, first.due_amount, day=first.installment.due_date)
    session.flush()
    return s, first


@pytest.mark.parametrize("who", ["manager", "sales", "risk"])
def test_the_bills_totals_are_the_collection_rate_paid_and_due(session, who):
    s, first = _repaid_seed(session)
    staff = getattr(s.w, who)
    due = metrics.value(session, V(staff), "due_amount", FIRST_DUES)
    url = metrics.get("collection_rate").drill(FIRST_DUES)
    assert url == metrics.get("due_amount").drill(FIRST_DUES)
    assert url.startswith("/console/lending/bills?due_from=2026-12-01&due_to=2027-01-31")
    count, list_due, list_paid = _bill_totals(_client(session, staff), url)
    assert count == 2 and due > 0
    assert list_due == due
    assert list_paid == first.due_amount
    assert metrics.value(session, V(staff), "collection_rate", FIRST_DUES) == metrics.rate(list_paid, list_due)


def test_the_bills_list_honours_the_owner_and_the_viewers_scope(session):
    s, _ = _repaid_seed(session)
    manager = _client(session, s.w.manager)
    mine = metrics.get("collection_rate").drill(replace(FIRST_DUES, owner_id=s.w.sales.id))
    theirs = metrics.get("collection_rate").drill(replace(FIRST_DUES, owner_id=s.w.other_sales.id))
    assert _bill_totals(manager, mine)[0] == 2
    assert _bill_totals(manager, theirs) == (0, 0, 0)
    assert metrics.value(session, V(s.w.manager), "due_amount", replace(FIRST_DUES, owner_id=s.w.other_sales.id)) == 0
    # far sees only own customers: none of the loan's bills, whatever the filters
    assert _bill_totals(_client(session, s.far), metrics.get("collection_rate").drill(FIRST_DUES)) == (0, 0, 0)


def test_the_bills_list_filters_by_state(session):
    s, first = _repaid_seed(session)
    client = _client(session, s.w.manager)
    base = "/console/lending/bills?due_from=2026-12-01&due_to=2027-01-31"
    assert _bill_totals(client, base + "&state=paid")[:1] == (1,)
    assert _bill_totals(client, base + "&state=unpaid")[:1] == (1,)
    assert _bill_totals(client, base + "&state=overdue")[:1] == (0,)
    page = _page(client, base + "&state=paid")
    assert f'href="/console/lending/loans/{s.loan.id}"' in page and "已还清" in page
    assert s.customers["李四"].name not in page  # masked, as the loan list shows customers
    assert client.get(base + "&state=nonsense").status_code == 422
    assert "到期开始日期格式不正确" in client.get("/console/lending/bills?due_from=2026-13-01").text


def test_the_bills_totals_cover_every_page(session):
    s, _ = _repaid_seed(session)
    client = _client(session, s.w.manager)
    text = _page(client, "/console/lending/bills?page=2")  # the loan has 12 bills, all on page 1
    count = re.search(r'data-count="(\d+)"', text)
    assert count and int(count.group(1)) == 12
    assert "没有符合条件的账单" in text


def test_the_bills_export_has_the_rows_of_the_list(session):
    s, _ = _repaid_seed(session)
    client = _client(session, s.w.manager)
    url = metrics.get("collection_rate").drill(replace(FIRST_DUES, owner_id=s.w.sales.id))
    export = re.search(r'<form method="post" action="/console/exports/bills".*?</form>', _page(client, url), re.S)
    assert export
    params = dict(re.findall(r'name="(\w+)" value="([^"]*)"', export.group(0)))
    params.pop("csrf_token")
    assert params == {"due_from": "2026-12-01", "due_to": "2027-01-31", "owner_id": str(s.w.sales.id)}
    from admin.console.lending_bills import export_params
    stored = export_params(session, None, params)  # type: ignore[arg-type]
    assert KINDS["bills"].count(session, V(s.w.manager), stored) == 2
    rows = KINDS["bills"].batch(session, V(s.w.manager), stored, 0, 10)
    assert [cells[3] for _, cells in rows] == ["2026-12-23", "2027-01-23"]


def test_the_risk_dashboard_links_every_card(session):
    s = seed(session)
    board = dashboards.build(session, V(s.w.risk), NOV)
    assert all(card.url for card in board.cards), [c.key for c in board.cards if not c.url]
    client = _client(session, s.w.risk)
    page = client.get("/console/?period=month").text
    links = {html.unescape(u) for u in re.findall(r'class="dash-value" href="([^"]+)"', page)}
    assert any(u.startswith("/console/lending/bills?due_from=") for u in links)
    assert any(u.startswith("/console/lending/applications?view=list") for u in links)


def test_a_department_scope_sees_the_bills_of_its_departments_loans(session):
    from crm.models import Department
    from tests.factories import make_staff

    s, _ = _repaid_seed(session)
    team = make_staff(session, role="supervisor", department=session.get(Department, s.w.sales.department_id),
                      data_scope="department")
    elsewhere = make_staff(session, role="supervisor", department=session.get(Department, s.far.department_id),
                           data_scope="department")
    session.flush()
    url = metrics.get("collection_rate").drill(FIRST_DUES)
    for staff, count in ((team, 2), (elsewhere, 0)):
        due = metrics.value(session, V(staff), "due_amount", FIRST_DUES)
        assert _bill_totals(_client(session, staff), url)[:2] == (count, due)
        assert bills.totals(session, V(staff), bills.BillFilter(FIRST_DUES.start, FIRST_DUES.end)).due_amount == due


def test_a_monthly_report_of_due_amounts_links_each_month_to_its_bills(session):
    s, _ = _repaid_seed(session)
    manager = V(s.w.manager)
    draft = reports.ReportDraft(name="到期应还", metrics=["due_amount", "applications"], dimension="month",
                                period="quarter")
    result = reports.run(session, manager, reports.save(session, manager, draft), date(2027, 1, 31))
    assert [r.keys[0] for r in result.rows] == [date(2027, 1, 1)]  # the quarter to date: January
    client = _client(session, s.w.manager)
    due, applications = result.rows[0].cells
    assert due.url.startswith("/console/lending/bills?due_from=2027-01-01&due_to=2027-01-31")
    assert _bill_totals(client, due.url)[1] == due.value > 0
    assert applications.value == 0 and _count(client, applications.url) == 0
    last = reports.run(session, manager, reports.save(session, manager, replace(draft, name="上季度", period="last_quarter")),
                       date(2027, 1, 31))
    assert [r.label for r in last.rows] == ["2026-10", "2026-11", "2026-12"]
    for row in last.rows:
        assert _bill_totals(client, row.cells[0].url)[1] == row.cells[0].value
        assert _count(client, row.cells[1].url) == row.cells[1].value


def test_the_applications_list_clamps_a_huge_page_and_refuses_bad_filters_in_chinese(session):
    s = seed(session)
    client = _client(session, s.w.manager)
    assert client.get("/console/lending/applications?view=list&page=99999999999999999999").status_code == 200
    bad = client.get("/console/lending/applications?view=list&created_from=2026-13-01")
    assert bad.status_code == 422 and "申请开始日期格式不正确" in bad.text
    assert client.get("/console/lending/applications?view=list&status=nonsense").status_code == 422
    assert client.get("/console/lending/applications?view=list&department_id=999999").status_code == 422


def test_the_bills_export_job_writes_the_rows_of_the_list(session, tmp_path, monkeypatch):
    import io

    from openpyxl import load_workbook

    from admin.console.lending_bills import export_params
    from analytics import export_jobs
    from core.settings import reset_settings_cache

    monkeypatch.setenv("SCRM_EXPORT_DIR", str(tmp_path / "exports"))
    reset_settings_cache()
    try:
        s, first = _repaid_seed(session)
        params = export_params(session, None, {"due_from": "2026-12-01", "due_to": "2027-01-31",  # type: ignore[arg-type]
                                               "owner_id": str(s.w.sales.id)})
        job = export_jobs.request(session, V(s.w.manager), "bills", params)
        assert export_jobs.run(job.id) == "done"
        session.refresh(job)
        data = export_jobs.file_path(job).read_bytes()
    finally:
        reset_settings_cache()
    rows = list(load_workbook(io.BytesIO(data), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[0][:4] == ("合同编号", "客户", "期次", "到期日")
    assert [(r[2], r[3], r[8]) for r in rows[1:]] == [(1, "2026-12-23", "已还清"), (2, "2027-01-23", "待还")]
    assert s.customers["李四"].name not in str(rows)
    assert float(rows[1][5]) * 100 == pytest.approx(first.due_amount)
