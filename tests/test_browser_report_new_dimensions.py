"""The report builder's new dimensions in a real browser: a manager builds a report of disbursements by 部门 ×
资方类型 filtered by 行业, runs it, and a figure drills down to the loan list with as many rows; the customer list
opened from a 部门 / 渠道码 / 行业 drill-down keeps those filters in its form."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from core.db import unit_of_work
from tests.analytics_support import DETAIL_A, seed_dimensions
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.test_browser_reports import _log_in, at_each_size, charts_drawn

pytestmark = pytest.mark.browser


@pytest.fixture
def world(committed):
    require_chromium()
    with unit_of_work() as session:
        d = seed_dimensions(session)
        names = {"manager": d.w.manager.username, "team_a": d.w.sales.department_id, "branch": d.branch.id}
    with live_server() as url:
        yield url, names


def test_a_report_by_department_and_funder_type_drills_down_to_its_loans(world):
    from playwright.sync_api import expect

    base_url, names = world
    with chromium_page() as page:
        _log_in(page, base_url, names["manager"])
        page.goto(f"{base_url}/console/reports/new")
        page.fill("input[name=name]", "部门资方放款")
        page.select_option("select[name=dimension]", "department")
        page.select_option("select[name=second_dimension]", "funder_type")
        page.check("input[name=metrics][value=disbursed_count]")
        page.check("input[name=metrics][value=disbursed_amount]")
        page.fill("input[name=industry]", "物流运输")
        at_each_size(page, "report-form-dimensions")
        page.click(".report-form button[type=submit]")
        expect(page.locator(".notice")).to_contain_text("报表已保存")
        header = page.locator(".report-table thead th")
        expect(header.nth(0)).to_have_text("部门")
        expect(header.nth(1)).to_have_text("资方类型")
        rows = page.locator(".report-table tbody tr")
        expect(rows).to_have_count(1)  # 丁's loan: 上海分部 × 消金
        expect(rows.first).to_contain_text("上海分部")
        expect(rows.first).to_contain_text("消金")
        expect(page.locator("text=行业：物流运输")).to_be_visible()
        report_url = page.url.split("?")[0]
        at_each_size(page, "report-view-dimensions", charts_drawn(page, report_url))
        page.locator(".report-table tbody tr").first.locator("a[data-metric='disbursed_count']").click()
        expect(page).to_have_url(f"{base_url}/console/lending/loans?disbursed_from=2026-11-01&disbursed_to=2026-11-23"
                                 f"&owner_department_id={names['branch']}&industry={quote('物流运输')}"
                                 f"&funder_type=consumer_finance")
        expect(page.locator("table.grid tbody tr")).to_have_count(1)


def test_the_customer_list_keeps_the_drill_downs_filters_in_its_form(world):
    from playwright.sync_api import expect

    base_url, names = world
    with chromium_page() as page:
        _log_in(page, base_url, names["manager"])
        url = (f"{base_url}/console/customers?owner_department_id={names['team_a']}&industry={quote('建筑')}"
               f"&source_detail={quote(DETAIL_A)}")

        def show() -> None:
            page.goto(url)
            expect(page.locator(".pager")).to_contain_text("共 2 条")  # 甲 (建筑装修) and 乙 (建筑)

        at_each_size(page, "customers-dimension-filters", show)
        expect(page.locator("select[name=industry]")).to_have_value("建筑")
        expect(page.locator("form.filters input[name=source_detail]")).to_have_value(DETAIL_A)
        expect(page.locator("text=本部门（不含下级）")).to_be_visible()
        page.click("form.filters button[type=submit]")  # submitting the form keeps all three
        expect(page.locator(".pager")).to_contain_text("共 2 条")
        page.uncheck("form.filters input[name=owner_department_id]")
        page.select_option("select[name=industry]", "")
        page.click("form.filters button[type=submit]")
        expect(page.locator(".pager")).to_contain_text("共 2 条")  # 地推A: still 甲 and 乙
        expect(page.locator("form.filters input[name=source_detail]")).to_have_value(DETAIL_A)
