"""Prepayment in a real browser: the loan page's quote (试算), booking it, and the schedule and its versions
updated on the page."""

from __future__ import annotations

from datetime import date

import pytest

from core.db import unit_of_work
from lending import disbursement
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD
from tests.lending_flow_support import V, advance_to, make_world, start
from tests.servicing_support import START, on, pay

pytestmark = pytest.mark.browser


@pytest.fixture
def world(committed):
    require_chromium()
    on(START)
    with unit_of_work() as session:
        w = make_world(session, penalty_rate="0.0005")
        app = advance_to(session, w, start(session, w, amount=1_200_000, term=12), "disbursement")
        loan = disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="FR-BROWSER")
        ids = {"loan": loan.id, "finance": w.finance.username}
    on(date(2026, 12, 23))
    with unit_of_work() as session:
        pay(session, w, session.merge(loan), 94_619 + 12_000)
    on(date(2027, 1, 8))
    with live_server() as url:
        yield url, ids


def test_prepayment_quote_then_pay_updates_the_schedule(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", ids["finance"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/lending/loans/{ids['loan']}")
        expect(page.locator(".schedule").first.locator("tbody tr")).to_have_count(12)
        card = page.locator("#prepayment")
        card.locator("input[name=quote_amount]").fill("5000")
        card.locator("select[name=quote_mode]").select_option("keep_installment")
        card.locator("button", has_text="试算").click()
        expect(page.locator("#prepayment .quote-total")).to_have_text("¥5,000.00")
        expect(page.locator("#prepayment")).to_contain_text("¥4,973.47")  # principal ahead
        expect(page.locator("#prepayment")).to_contain_text("¥26.53")  # its 16 days of interest
        page.screenshot(path="/tmp/prepayment_quote_1366.png", full_page=True)
        card = page.locator("#prepayment")
        card.locator("input[name=external_reference]").fill("PRE-BROWSER-1")
        card.locator("button", has_text="办理提前还款").click()
        expect(page.locator(".notice, .flash, .alert").first).to_contain_text("提前还款已入账")
        expect(page.locator(".schedule").first.locator("tbody tr")).to_have_count(7)
        expect(page.locator("body")).to_contain_text("还款计划版本")
        expect(page.locator("body")).to_contain_text("部分提前还款（月供不变，缩短期限）")
        page.screenshot(path="/tmp/prepayment_after_1366.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base_url}/console/lending/loans/{ids['loan']}?quote_date=2027-01-08#prepayment")
        expect(page.locator("#prepayment .quote-total")).to_be_visible()
        page.screenshot(path="/tmp/prepayment_390.png", full_page=True)
