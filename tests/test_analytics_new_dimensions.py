"""The metric layer's department (部门), channel detail (渠道码/来源明细), industry (行业), funder (资方) and funder
type (资方类型) dimensions and filters: each grouped figure equals the figure filtered by its value, the groups sum
to the total, a salesperson's groups hold only their own rows, each report row drills down to a list of as many
rows, and a metric that cannot be cut by one is refused in Chinese."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select

from analytics import metrics, reports
from analytics.metrics import Filters
from analytics.models import Report
from crm import auth_service
from tests.analytics_support import DETAIL_A, DETAIL_B, seed_dimensions
from tests.lending_flow_support import AMOUNT, NOW, V
from tests.test_admin_support import bearer, console_client, log_in

NOV = Filters(start=date(2026, 11, 1), end=date(2026, 11, 30))
NEW_DIMENSIONS = ("department", "source_detail", "industry", "funder", "funder_type")


CUSTOMER_KEYS = ("funnel_lead", "funnel_applied", "owned_customers")
LOAN_KEYS = ("disbursed_count", "disbursed_amount", "active_loans", "outstanding_principal", "due_amount")
APPLICATION_KEYS = ("applications",)


def _cases():
    for key in (*CUSTOMER_KEYS, *LOAN_KEYS, *APPLICATION_KEYS):
        for dimension in NEW_DIMENSIONS:
            if dimension in metrics.get(key).dimensions:
                yield key, dimension


def _span(key: str) -> Filters:
    return Filters(start=NOV.start, end=date(2027, 12, 31)) if key == "due_amount" else NOV


@pytest.mark.parametrize(("key", "dimension"), list(_cases()))
def test_each_group_is_the_figure_filtered_by_its_value_and_the_groups_sum_to_the_total(session, key, dimension):
    d = seed_dimensions(session)
    manager, flt = V(d.w.manager), _span(key)
    groups = metrics.by_dimension(session, manager, key, dimension, flt)
    total = metrics.value(session, manager, key, flt)
    assert total and sum(v for _, v in groups) == total
    assert len({k for k, _ in groups}) == len(groups)  # one row per value
    field_name = reports.DRILL_FIELDS[dimension]
    for value, figure in groups:
        if value is None:
            continue
        assert metrics.value(session, manager, key, replace(flt, **{field_name: value})) == figure, value


def test_the_groups_are_the_owners_department_the_channel_detail_the_industry_and_the_funder(session):
    d = seed_dimensions(session)
    manager = V(d.w.manager)
    team_a = d.w.sales.department_id
    assert dict(metrics.by_dimension(session, manager, "funnel_lead", "department", NOV)) == {
        team_a: 4, d.branch.id: 1, None: 1}  # 戊 sits in the pool
    assert dict(metrics.by_dimension(session, manager, "funnel_lead", "source_detail", NOV)) == {
        DETAIL_A: 2, DETAIL_B: 2, None: 2}
    # an industry of the product's list groups every industry starting with it; any other one stands alone
    assert dict(metrics.by_dimension(session, manager, "funnel_lead", "industry", NOV)) == {
        "建筑": 2, "物流": 1, "物流运输": 1, None: 2}
    assert dict(metrics.by_dimension(session, manager, "disbursed_amount", "funder", NOV)) == {
        d.bank.id: AMOUNT, d.cfc.id: 2 * AMOUNT}
    assert dict(metrics.by_dimension(session, manager, "disbursed_count", "funder_type", NOV)) == {
        "bank": 1, "consumer_finance": 2}
    assert dict(metrics.by_dimension(session, manager, "applications", "funder_type", NOV)) == {
        "bank": 1, "consumer_finance": 3}
    assert dict(metrics.by_dimensions(session, manager, "disbursed_count", ("department", "funder"), NOV)) == {
        (team_a, d.bank.id): 1, (team_a, d.cfc.id): 1, (d.branch.id, d.cfc.id): 1}
    # the filters: a department's subtree, or the department itself (a 部门 row)
    assert metrics.value(session, manager, "funnel_lead", replace(NOV, department_id=d.branch.id)) == 5
    assert metrics.value(session, manager, "funnel_lead", replace(NOV, owner_department_id=d.branch.id)) == 1
    assert metrics.value(session, manager, "funnel_lead", replace(NOV, industry="建筑")) == 2
    assert metrics.value(session, manager, "funnel_lead", replace(NOV, industry="建筑装修")) == 1
    assert metrics.value(session, manager, "funnel_lead", replace(NOV, industry="物流")) == 1  # exact: not 物流运输
    assert metrics.value(session, manager, "active_loans", replace(NOV, funder_type="consumer_finance",
                                                                   industry="物流运输")) == 1


def test_a_salesperson_grouping_by_department_sees_only_own_customers(session):
    d = seed_dimensions(session)
    team_a = d.w.sales.department_id
    # 一组 holds sales (李四 甲 乙) and other_sales (丙): each salesperson's row is their own customers only
    assert metrics.by_dimension(session, V(d.w.sales), "funnel_lead", "department", NOV) == [(team_a, 3)]
    assert metrics.by_dimension(session, V(d.w.other_sales), "funnel_lead", "department", NOV) == [(team_a, 1)]
    assert metrics.by_dimension(session, V(d.w.sales), "disbursed_count", "department", NOV) == [(team_a, 2)]
    assert metrics.by_dimension(session, V(d.lead), "disbursed_amount", "funder_type", NOV) == [
        ("consumer_finance", AMOUNT)]
    assert metrics.by_dimension(session, V(d.w.other_sales), "applications", "industry", NOV) == []


def _figure_behind(client, url: str, unit: str = "count") -> int:
    """The row count of the list at ``url`` (a bills list: its due total for an amount)."""
    page = client.get(url)
    assert page.status_code == 200, url
    if url.startswith("/console/lending/bills"):
        totals = re.search(r'data-bill-totals data-count="(\d+)" data-due="(\d+)"', page.text)
        return int(totals.group(2 if unit == "fen" else 1))
    if url.startswith(("/console/customers", "/console/lending/applications")):
        total = re.search(r"共 (\d+) 条", page.text)
        assert total, url
        return int(total.group(1))
    assert url.startswith("/console/lending/loans")
    return len(re.findall(r'<tr><td><a href="/console/lending/loans/\d+">', page.text))


@pytest.mark.parametrize("dimension", NEW_DIMENSIONS)
def test_each_report_row_drills_down_to_a_list_of_as_many_rows(session, dimension):
    d = seed_dimensions(session)
    keys = [k for k in ("funnel_lead", "owned_customers", "disbursed_count", "active_loans", "applications",
                        "due_amount") if dimension in metrics.get(k).dimensions]
    report = reports.save(session, V(d.w.manager), reports.ReportDraft(
        name="维度报表", metrics=keys, dimension=dimension, period="month", shared_roles=["sales"]))
    client = console_client()
    checked = 0
    for viewer in (d.w.manager, d.w.sales):
        log_in(client, session, viewer)
        result = reports.run(session, V(viewer), report, NOW.date())
        assert result.rows
        for row in result.rows:
            assert "#" not in row.label  # every value named (the department's, the funder's name)
            for metric, cell in zip(result.columns, row.cells, strict=True):
                if row.keys[0] is None:
                    assert cell.url is None  # 公海/未分配, no detail, no industry: no list to narrow to
                    continue
                assert cell.url, (dimension, row.label)
                assert _figure_behind(client, cell.url, metric.unit) == cell.value, (dimension, row.label, cell.url)
                checked += 1
    assert checked >= 4


def test_the_labels_name_departments_funders_and_the_rows_without_a_value(session):
    d = seed_dimensions(session)
    report = reports.save(session, V(d.w.manager), reports.ReportDraft(
        name="部门报表", metrics=["funnel_lead"], dimension="department", second_dimension="industry",
        period="month"))
    labels = {row.labels for row in reports.run(session, V(d.w.manager), report, NOW.date()).rows}
    assert ("一组", "建筑") in labels and ("上海分部", "物流运输") in labels and ("公海/未分配", "未填写行业") in labels
    report = reports.save(session, V(d.w.manager), reports.ReportDraft(
        name="资方报表", metrics=["disbursed_amount"], dimension="funder_type", second_dimension="funder",
        period="month", filters={"source_detail": DETAIL_A}))
    result = reports.run(session, V(d.w.manager), report, NOW.date())
    assert [row.labels for row in result.rows] == [("消金", "某消金")]
    assert result.totals.cells[0].value == AMOUNT
    assert "渠道码/来源明细：" + DETAIL_A in reports.describe(session, report)


@pytest.mark.parametrize(("draft", "message"), [
    ({"metrics": ["funnel_lead"], "dimension": "funder"}, "指标「新增线索」不能按「资方」分组"),
    ({"metrics": ["owned_customers", "disbursed_count"], "dimension": "funder_type"},
     "指标「私海客户」不能按「资方类型」分组"),
    ({"metrics": ["fee_revenue"], "dimension": "department"}, "不能按「部门」分组"),
    ({"metrics": ["funnel_lead"], "filters": {"funder_type": "bank"}}, "指标「新增线索」不能按「资方类型」筛选"),
    ({"metrics": ["disbursed_count"], "filters": {"funder_type": "pawnshop"}}, "未知的资方类型：pawnshop"),
    ({"metrics": ["disbursed_count"], "filters": {"funder_id": 999999}}, "所选资方不存在"),
    ({"metrics": ["fee_revenue"], "filters": {"industry": "建筑"}}, "不能按「行业」筛选"),
])
def test_a_dimension_or_filter_a_metric_cannot_be_cut_by_is_refused_in_chinese(session, draft, message):
    d = seed_dimensions(session)
    with pytest.raises(reports.ReportInvalid) as refused:
        reports.save(session, V(d.w.manager), reports.ReportDraft(name="报表", period="month", **draft))
    assert message in refused.value.message
    assert session.scalar(select(func.count(Report.id))) == 0
    with pytest.raises(ValueError, match="cannot be filtered by"):
        metrics.value(session, V(d.w.manager), "funnel_lead", replace(NOV, funder_id=d.cfc.id))


def test_the_lists_take_the_new_filters_from_their_urls(session):
    d = seed_dimensions(session)
    client = console_client()
    log_in(client, session, d.w.manager)
    for flt, key in ((replace(NOV, funder_type="consumer_finance"), "disbursed_count"),
                     (replace(NOV, funder_id=d.bank.id), "disbursed_count"),
                     (replace(NOV, industry="建筑"), "disbursed_count"),
                     (replace(NOV, funder_type="consumer_finance"), "applications"),
                     (replace(NOV, industry="建筑", owner_department_id=d.w.sales.department_id), "applications"),
                     (replace(NOV, source_detail=DETAIL_A), "applications"),
                     (replace(NOV, end=date(2027, 12, 31), funder_id=d.cfc.id), "due_amount"),
                     (replace(NOV, end=date(2027, 12, 31), source_detail=DETAIL_A), "due_amount"),
                     (replace(NOV, source_detail=DETAIL_A), "funnel_lead"),
                     (replace(NOV, owner_department_id=d.branch.id), "funnel_lead"),
                     (replace(NOV, industry="物流"), "funnel_lead")):
        metric = metrics.get(key)
        url = metric.drill(flt)
        figure = metrics.value(session, V(d.w.manager), key, flt)
        assert figure and _figure_behind(client, url, metric.unit) == figure, url


def test_the_staff_api_lists_customers_by_industry_channel_detail_and_own_department(session):
    d = seed_dimensions(session)
    client = console_client()
    token = auth_service.issue_api_token(session, d.w.manager.id, "测试", 30)[0]

    def names(**params) -> list[str]:
        body = client.get("/api/v1/customers", params=params, headers=bearer(token)).json()
        return sorted(i["name"] for i in body["items"])

    assert names(industry="建筑") == ["乙", "甲"]
    assert names(industry="物流") == ["丙"]
    assert names(source_detail=DETAIL_B, owner_department_id=d.w.sales.department_id) == ["丙"]
    assert names(owner_department_id=d.branch.id) == ["丁"]


@pytest.mark.parametrize(("keys", "dims"), [
    (("funnel_lead", "conversion_rate"), ("department", "industry")),
    (("disbursed_count", "disbursed_amount"), ("funder_type", "source_detail")),
    (("applications", "approval_rate"), ("funder", "department")),
])
def test_a_cube_by_the_new_dimensions_equals_each_figure_alone(session, keys, dims):
    d = seed_dimensions(session)
    for staff in (d.w.manager, d.w.sales):
        cube = metrics.cube(session, V(staff), keys, dims, NOV, compare=True)
        for key in keys:
            assert cube.total(key) == metrics.value(session, V(staff), key, NOV)
            if metrics.get(key).ratio:
                continue
            for dim in dims:
                alone = metrics.by_dimension(session, V(staff), key, dim, NOV)
                assert sorted(cube.by(key, dim), key=str) == sorted(alone, key=str), (key, dim)
