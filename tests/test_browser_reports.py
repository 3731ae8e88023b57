"""The report builder in a real browser: a manager builds a report with the form, saves and runs it (table and
ECharts bars from our own static files), shares it with the sales role; a salesperson runs it and sees only their
own row, and a figure drills down to the customer list whose row count is that figure."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlparse

import pytest

from core.db import unit_of_work
from tests.analytics_support import seed
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("SCRM_SCREENSHOT_DIR", "/tmp/analytics-shots")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def world(committed):
    require_chromium()
    with unit_of_work() as session:
        s = seed(session)  # November 2026: sales 3 leads (one disbursed), other_sales 1, far 1
        names = {"manager": s.w.manager.username, "sales": s.w.sales.username,
                 "sales_name": s.w.sales.display_name, "sales_id": s.w.sales.id, "other_name": s.w.other_sales.display_name}
    with live_server() as url:
        yield url, names


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/console/")


def _no_overflow(page) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def at_each_size(page, stem: str, show: Callable[[], None] | None = None) -> None:
    """At 1366×900 and 390×844: ``show()`` (open the page at that width), no sideways scroll, a full-page
    screenshot ``SHOTS/{stem}-{desktop|phone}.png``. The page is left at 1366×900."""
    os.makedirs(SHOTS, exist_ok=True)
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        if show is not None:
            show()
        _no_overflow(page)
        page.screenshot(path=f"{SHOTS}/{stem}-{name}.png", full_page=True)
    page.set_viewport_size({"width": SIZES["desktop"][0], "height": SIZES["desktop"][1]})


def charts_drawn(page, url: str | None = None) -> Callable[[], None]:
    """``show`` for :func:`at_each_size`: open ``url`` (None: reload, so the charts are drawn at this width, not
    resized from another) and wait for the report's two charts."""
    from playwright.sync_api import expect

    def show() -> None:
        if url is None:
            page.reload()
        else:
            page.goto(url)
        expect(page.locator("[data-chart][data-rendered='1']")).to_have_count(2)
    return show


def test_a_manager_builds_a_report_a_salesperson_runs_it_and_drills_down(world):
    from playwright.sync_api import expect

    base_url, names = world
    host = urlparse(base_url).netloc
    foreign: list[str] = []
    with chromium_page() as page:
        page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).netloc not in (host, "") else None)
        _log_in(page, base_url, names["manager"])
        page.click("a[href='/console/reports']")  # 报表 › 自定义报表 in the menu
        page.click("text=新建报表")
        page.fill("input[name=name]", "业务员月报")
        page.select_option("select[name=dimension]", "salesperson")
        page.check("input[name=metrics][value=funnel_lead]")
        page.check("input[name=metrics][value=disbursed_amount]")
        page.check("input[name=shared_roles][value=sales]")
        at_each_size(page, "report-form")
        page.click(".report-form button[type=submit]")
        expect(page.locator(".notice")).to_contain_text("报表已保存")
        expect(page.locator("h1")).to_have_text("业务员月报")
        rows = page.locator(".report-table tbody tr")
        expect(rows).to_have_count(3)  # the manager sees every salesperson
        expect(page.locator("[data-chart][data-rendered='1']")).to_have_count(2)
        report_url = page.url.split("?")[0]
        at_each_size(page, "report-view-manager", charts_drawn(page, report_url))
        page.context.clear_cookies()  # log out

        _log_in(page, base_url, names["sales"])
        page.goto(f"{base_url}/console/reports")
        page.click("text=业务员月报")
        rows = page.locator(".report-table tbody tr")
        expect(rows).to_have_count(1)  # only their own numbers
        expect(rows.first.locator("td").first).to_have_text(names["sales_name"])
        expect(page.locator(".report-table")).not_to_contain_text(names["other_name"])
        expect(page.locator("text=编辑")).to_have_count(0)  # shared to run, not to edit
        at_each_size(page, "report-view-sales", charts_drawn(page))
        figure = rows.first.locator("a[data-metric='funnel_lead']")
        expect(figure).to_have_text("3")
        figure.click()
        expect(page).to_have_url(f"{base_url}/console/customers?created_from=2026-11-01&created_to=2026-11-23"
                                 f"&owner_id={names['sales_id']}")
        expect(page.locator(".pager")).to_contain_text("共 3 条")
    assert foreign == []


def test_a_salesperson_cannot_open_the_builder(world):
    from playwright.sync_api import expect

    base_url, names = world
    with chromium_page() as page:
        _log_in(page, base_url, names["sales"])
        page.goto(f"{base_url}/console/reports")
        expect(page.locator("text=还没有共享给您的报表")).to_be_visible()
        expect(page.locator("text=新建报表")).to_have_count(0)
        response = page.goto(f"{base_url}/console/reports/new")
        assert response is not None and response.status == 403


def test_a_manager_builds_a_month_by_salesperson_cross_tab(world):
    from playwright.sync_api import expect

    base_url, names = world
    with chromium_page() as page:
        _log_in(page, base_url, names["manager"])
        page.goto(f"{base_url}/console/reports/new")
        page.fill("input[name=name]", "月度业务员交叉表")
        page.select_option("select[name=dimension]", "month")
        page.select_option("select[name=second_dimension]", "salesperson")
        page.check("input[name=metrics][value=funnel_lead]")
        page.check("input[name=metrics][value=disbursed_amount]")
        at_each_size(page, "report-form-crosstab")
        page.click(".report-form button[type=submit]")
        expect(page.locator(".notice")).to_contain_text("报表已保存")
        header = page.locator(".report-table thead th")
        expect(header.nth(0)).to_have_text("月份")
        expect(header.nth(1)).to_have_text("业务员")
        rows = page.locator(".report-table tbody tr")
        expect(rows).to_have_count(3)  # November × three salespeople
        expect(rows.first.locator("td").nth(0)).to_have_text("2026-11")
        expect(rows.first.locator("td").nth(1)).to_have_text(names["sales_name"])
        expect(rows.first.locator("a[data-metric='funnel_lead']")).to_have_text("3")
        report_url = page.url.split("?")[0]
        at_each_size(page, "report-view-crosstab", charts_drawn(page, report_url))
        rows.first.locator("a[data-metric='funnel_lead']").click()
        expect(page.locator(".pager")).to_contain_text("共 3 条")
