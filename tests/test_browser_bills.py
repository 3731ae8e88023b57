"""The collection rate in a real browser: the risk dashboard's 回收率 card opens the bills list (还款账单) of the
period, whose totals are the figure's paid and due; the list at a desktop and at a phone width."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest

from analytics import metrics, periods
from core import clock
from core.db import unit_of_work
from lending.servicing import bills, loans
from tests.analytics_support import seed
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD
from tests.lending_flow_support import V
from tests.servicing_support import on, pay

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("SCRM_SCREENSHOT_DIR", "/tmp/analytics-shots")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
TODAY = datetime(2027, 1, 25, 2, 0, tzinfo=UTC)  # 近 90 天: 2026-10-28 … 2027-01-25, two bills of the loan due


@pytest.fixture
def world(committed):
    require_chromium()
    with unit_of_work() as session:
        s = seed(session)
        first = bills.list_bills(session, V(s.w.manager),
                                 bills.BillFilter(loan=loans.LoanFilter(customer_id=s.loan.customer_id)), limit=1)[0]
        on(first.installment.due_date)
        pay(session, s.w, s.loan, first.due_amount, day=first.installment.due_date)
        clock.freeze(TODAY)
        _, flt = periods.resolve("90d")
        risk = V(s.w.risk)
        expected = (metrics.value(session, risk, "due_amount", flt),
                    metrics.value(session, risk, "collection_rate", flt))
        paid = first.due_amount
        username = s.w.risk.username
    with live_server() as url:
        yield url, username, expected, paid


def test_the_collection_rate_card_opens_the_bills_whose_totals_make_it(world):
    from playwright.sync_api import expect

    base_url, username, (due, rate), paid = world
    assert due and rate is not None and 0 < rate < 1
    os.makedirs(SHOTS, exist_ok=True)
    with chromium_page() as page:
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/console/")
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{base_url}/console/?period=90d")
        card = page.locator(".dash-card", has=page.locator(".dash-label", has_text="回收率"))
        expect(card).to_have_count(1)
        shown = card.locator(".dash-value").inner_text()
        assert shown == metrics.display(rate, "rate")
        card.locator("a.dash-value").click()
        page.wait_for_url(re.compile(r"/console/lending/bills\?due_from=2026-10-28&due_to=2027-01-25"))
        totals = page.locator("[data-bill-totals]")
        assert int(totals.get_attribute("data-due")) == due
        assert int(totals.get_attribute("data-paid")) == paid
        assert metrics.rate(paid, due) == rate
        expect(totals).to_contain_text(f"{shown}")
        expect(page.locator("tr[data-bill]")).to_have_count(2)
        for name, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.reload()
            overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"the bills page overflows by {overflow}px at {width}px"
            page.screenshot(path=f"{SHOTS}/bills-{name}.png", full_page=True)


@pytest.fixture
def manager_world(committed):
    require_chromium()
    with unit_of_work() as session:
        s = seed(session)
        _, flt = periods.resolve("month")
        figure = metrics.value(session, V(s.w.manager), "applications", flt)
        username = s.w.manager.username
    with live_server() as url:
        yield url, username, figure


def test_the_applications_card_opens_the_applications_list_of_as_many_rows(manager_world):
    from playwright.sync_api import expect

    base_url, username, figure = manager_world
    assert figure == 3
    os.makedirs(SHOTS, exist_ok=True)
    with chromium_page() as page:
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/console/")
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{base_url}/console/?period=month")
        card = page.locator(".dash-card", has=page.locator(".dash-label", has_text="进件数"))
        card.locator("a.dash-value").click()
        page.wait_for_url(re.compile(r"/console/lending/applications\?view=list&created_from=2026-11-01"))
        expect(page.locator("tr[data-application]")).to_have_count(figure)
        for name, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.reload()
            page.screenshot(path=f"{SHOTS}/applications-list-{name}.png", full_page=True)
        page.goto(f"{base_url}/console/?period=quarter")
        page.screenshot(path=f"{SHOTS}/dashboard-manager-quarter-phone.png", full_page=True)
