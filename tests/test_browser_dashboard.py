"""The home dashboards in a real browser: the manager's and a salesperson's render their ECharts charts from our
own static files (no request to another host), at a desktop and at a phone width, and a chart links to its list."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest

from analytics import snapshots
from core import clock
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
        s = seed(session)
        snapshots.take(session, clock.today())  # the risk dashboard's overdue trend has one day
        users = {"manager": s.w.manager.username, "sales": s.w.sales.username, "risk": s.w.risk.username,
                 "finance": s.w.finance.username}
    with live_server() as url:
        yield url, users


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/console/")


def _render(world, role: str, charts: int) -> list[str]:
    from playwright.sync_api import expect

    base_url, users = world
    host = urlparse(base_url).netloc
    foreign: list[str] = []
    os.makedirs(SHOTS, exist_ok=True)
    with chromium_page() as page:
        page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).netloc not in (host, "") else None)
        _log_in(page, base_url, users[role])
        for name, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{base_url}/console/?period=month")
            expect(page.locator("[data-chart][data-rendered='1']")).to_have_count(charts)
            if charts:
                expect(page.locator("[data-chart] canvas").first).to_be_visible()
            overflow = page.evaluate("() => { const d = document.querySelector('.dash');"
                                     " return d.scrollWidth - d.clientWidth; }")
            assert overflow <= 0, f"{role} dashboard overflows by {overflow}px at {width}px"
            page.screenshot(path=f"{SHOTS}/dashboard-{role}-{name}.png", full_page=True)
        labels = page.locator(".dash-card .dash-label").all_inner_texts()
    assert foreign == []
    return labels


def test_manager_dashboard_renders_charts_from_local_files(world):
    labels = _render(world, "manager", charts=4)  # funnel, leaderboard, leads and disbursements by source
    assert {"新增线索", "放款金额", "审批通过率", "线索放款转化率"} <= set(labels)


def test_salesperson_dashboard_renders_the_funnel(world):
    labels = _render(world, "sales", charts=1)
    assert {"私海客户", "待跟进（截至期末）", "放款金额"} <= set(labels)


def test_risk_dashboard_renders_the_buckets_and_the_snapshot_trend(world):
    labels = _render(world, "risk", charts=2)  # buckets, overdue trend (roll rates and vintages need a month)
    assert {"审批通过率", "逾期余额（本金）", "回收率（期内到期已还）"} <= set(labels)


def test_finance_dashboard_shows_the_money_figures(world):
    labels = _render(world, "finance", charts=0)  # no case settled in the seeded world: the chart says so
    assert {"服务费收入（期内放款已结算）", "应收未收（已收费待结单）", "在持定金", "已确认待付报销"} <= set(labels)


def test_a_funnel_figure_opens_the_customer_list(world):
    from playwright.sync_api import expect

    base_url, users = world
    with chromium_page() as page:
        _log_in(page, base_url, users["sales"])
        page.click("a[data-metric='funnel_contacted']")
        expect(page).to_have_url(f"{base_url}/console/customers?created_from=2026-11-01&created_to=2026-11-23"
                                 f"&funnel=contacted")
        expect(page.locator(".pager")).to_contain_text("共 2 条")


def test_the_activity_funnel_switch_and_its_drill_down(world):
    """按发生时间: the seeded steps all happened in November; a step's figure opens the list of exactly its
    customers, the list keeping the activity period in its form."""
    from playwright.sync_api import expect

    base_url, users = world
    with chromium_page() as page:
        _log_in(page, base_url, users["manager"])
        page.click("a[data-funnel-mode='activity']")
        expect(page).to_have_url(f"{base_url}/console/?period=month&funnel_mode=activity")
        expect(page.locator("a[data-funnel-mode='activity']")).to_have_class("on")
        signed = page.locator("a[data-metric='funnel_signed']")
        expect(signed).to_have_text("1")
        expect(page.locator("[data-median='funnel_signed']")).to_have_text("0.0 小时")
        signed.click()
        expect(page).to_have_url(f"{base_url}/console/customers?funnel=signed&funnel_mode=activity"
                                 f"&funnel_from=2026-11-01&funnel_to=2026-11-23")
        expect(page.locator(".pager")).to_contain_text("共 1 条")
        expect(page.locator("input[type=date][name=funnel_from]")).to_have_value("2026-11-01")


def test_the_disbursed_amount_opens_the_loan_list_with_the_same_filters(world):
    from playwright.sync_api import expect

    base_url, users = world
    with chromium_page() as page:
        _log_in(page, base_url, users["manager"])
        page.click(".dash-card[data-metric='disbursed_amount'] a")
        expect(page).to_have_url(f"{base_url}/console/lending/loans?disbursed_from=2026-11-01"
                                 f"&disbursed_to=2026-11-23")
        expect(page.locator("table.grid tbody tr a[href^='/console/lending/loans/']")).to_have_count(1)
        for name, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{SHOTS}/loans-drill-{name}.png", full_page=True)
        page.goto(f"{base_url}/console/customers?created_from=2026-11-01&created_to=2026-11-23&funnel=applied")
        expect(page.locator(".pager")).to_contain_text("共 3 条")
        expect(page.locator("select[name=funnel]")).to_have_value("applied")
        for name, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{SHOTS}/customers-drill-{name}.png", full_page=True)


@pytest.fixture
def overdue_world(committed):
    """The seeded world whose loan stood in M1 on today's snapshot (and is current again since)."""
    from sqlalchemy import update

    from lending.models import Loan

    require_chromium()
    with unit_of_work() as session:
        s = seed(session)
        session.execute(update(Loan).where(Loan.id == s.loan.id).values(bucket="M1", overdue_days=8))
        snapshots.take(session, clock.today())
        session.execute(update(Loan).where(Loan.id == s.loan.id).values(bucket="C", overdue_days=0))
        risk = s.w.risk.username
    with live_server() as url:
        yield url, risk


def test_a_point_of_the_overdue_trend_opens_the_loans_of_that_snapshot(overdue_world):
    from playwright.sync_api import expect

    from tests.lending_flow_support import AMOUNT

    base_url, risk = overdue_world
    with chromium_page() as page:
        _log_in(page, base_url, risk)
        chart = page.locator("[data-chart='overdue_trend'][data-rendered='1']")
        chart.scroll_into_view_if_needed()
        # the M1 line's point of today, where ECharts drew it
        x, y = page.evaluate("() => { const c = echarts.getInstanceByDom("
                             "document.querySelector(\"[data-chart='overdue_trend']\"));"
                             " const d = c.getOption().series[0].data[0]; return c.convertToPixel({seriesIndex: 0},"
                             " [0, d.value]); }")
        box = chart.bounding_box()
        page.mouse.click(box["x"] + x, box["y"] + y)
        expect(page).to_have_url(f"{base_url}/console/lending/loans?as_of=2026-11-23&snapshot_bucket=M1")
        expect(page.locator(".snapshot-filter .chip")).to_have_text("2026-11-23 快照：M1")
        expect(page.locator("table.grid tbody tr a[href^='/console/lending/loans/']")).to_have_count(1)
        expect(page.locator("[data-snapshot-summary]")).to_have_attribute("data-amount", str(AMOUNT))
        for name, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            page.screenshot(path=f"{SHOTS}/loans-snapshot-drill-{name}.png", full_page=True)


def test_cached_figures_say_when_they_were_computed_and_a_long_list_says_more_than(world, monkeypatch):
    """Issue 18 item 3: the manager's dashboard from the cache (数据更新于), the customer list counting up to its
    bound (the bound lowered to 5 here, the seeded world being small)."""
    from playwright.sync_api import expect

    from analytics import dashboard_cache
    from core.settings import reset_settings_cache
    from crm import customer_queries

    monkeypatch.setenv("SCRM_DASHBOARD_CACHE_SECONDS", "60")
    monkeypatch.setenv("SCRM_REDIS_URL", "")  # this process's cache: the live server runs in it
    monkeypatch.setattr(customer_queries, "LIST_COUNT_BOUND", 5)
    reset_settings_cache()
    dashboard_cache.clear_local()
    base_url, users = world
    try:
        with chromium_page() as page:
            _log_in(page, base_url, users["manager"])
            stamp = page.locator(".dash-computed")
            expect(stamp).to_contain_text("数据更新于")
            first = stamp.inner_text()
            page.reload()
            expect(stamp).to_have_text(first)  # the same computation, not a new one
            for name, (width, height) in SIZES.items():
                page.set_viewport_size({"width": width, "height": height})
                page.screenshot(path=f"{SHOTS}/dashboard-cached-{name}.png", full_page=True)
            page.goto(f"{base_url}/console/customers")
            expect(page.locator(".pager")).to_contain_text("共 5+ 条")
            expect(page.locator(".pager")).not_to_contain_text("第 1 /")  # no page count past the bound
            for name, (width, height) in SIZES.items():
                page.set_viewport_size({"width": width, "height": height})
                page.screenshot(path=f"{SHOTS}/customers-bounded-{name}.png", full_page=True)
    finally:
        dashboard_cache.clear_local()
        monkeypatch.undo()
        reset_settings_cache()


def test_the_channel_analysis_shows_the_cost_per_lead_and_opens_the_channels_leads(world):
    """渠道来源分析: a cost entered for the manual channel (手工录入, 4 leads and the loan in November) divides into
    a cost per lead and per loan; the channel's name opens the customer list of exactly its leads."""
    from playwright.sync_api import expect
    from sqlalchemy import select

    from analytics import channel_costs
    from crm.models import Staff
    from crm.scope import Viewer

    base_url, users = world
    with unit_of_work() as session:
        manager = session.scalar(select(Staff).where(Staff.username == users["manager"]))
        channel_costs.record(session, Viewer.of(manager), source="手工录入", spent_on=clock.today(), amount="2,000")
    with chromium_page() as page:
        _log_in(page, base_url, users["manager"])
        for name, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{base_url}/console/?period=month")
            row = page.locator("[data-panel=channels] tbody tr", has_text="手工录入")
            expect(row).to_contain_text("¥2,000.00")
            expect(row.locator("td").nth(2)).to_have_text("¥500.00")  # 2,000 / 4 leads
            page.locator("[data-panel=channels]").screenshot(path=f"{SHOTS}/dashboard-channels-{name}.png")
        row.locator("a").click()
        page.wait_for_url("**/console/customers?**")
        assert "source=manual" in page.url
        expect(page.locator(".pager")).to_contain_text("共 4 条")
