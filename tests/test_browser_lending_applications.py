"""The pipeline board, an application and its printable contract in a real browser (CSS loads under the CSP)."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD, make_customer
from tests.lending_flow_support import advance_to, make_world, start

pytestmark = pytest.mark.browser


@pytest.fixture
def world(committed):
    require_chromium()
    with unit_of_work() as session:
        w = make_world(session)
        first = start(session, w)
        w.customer = make_customer(session, owner=w.sales, name="王五")
        signed = advance_to(session, w, start(session, w), "disbursement")
        ids = {"first": first.id, "signed": signed.id, "manager": w.manager.username}
    with live_server() as url:
        yield url, ids


def test_board_application_and_contract_print_render(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", ids["manager"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/lending/applications")
        expect(page.locator(".board-col")).to_have_count(5)
        expect(page.locator(".board-card")).to_have_count(2)
        assert page.locator(".board").evaluate("e => getComputedStyle(e).display") == "grid"
        page.screenshot(path="/tmp/lending_board.png", full_page=True)
        page.click(f"a[href='/console/lending/applications/{ids['signed']}']")
        expect(page.locator("h1")).to_contain_text(f"贷款申请 #{ids['signed']}")
        expect(page.locator(".steps li.current")).to_have_text("放款")
        page.screenshot(path="/tmp/lending_application.png", full_page=True)
        with page.expect_popup() as popup:
            page.click("text=打印合同摘要")
        printed = popup.value
        expect(printed.locator("h1")).to_have_text("借款合同摘要")
        expect(printed.locator(".schedule tbody tr")).to_have_count(12)
        printed.emulate_media(media="print")
        assert printed.locator(".print-actions").evaluate("e => getComputedStyle(e).display") == "none"
        printed.screenshot(path="/tmp/lending_contract.png", full_page=True)


@pytest.fixture
def sales_loop(committed):
    require_chromium()
    from crm import tags
    from tests.lending_flow_support import V

    with unit_of_work() as session:
        w = make_world(session)
        group = tags.create_group(session, V(w.manager), "意向程度")
        tags.create_tag(session, V(w.manager), group.id, "高意向")
        customer = make_customer(session, owner=w.sales, name="陈女士")
        ids = {"sales": w.sales.username, "customer": customer.id, "product": w.product.name}
    with live_server() as url:
        yield url, ids


def test_the_salesperson_tags_books_a_visit_and_applies_from_the_360_with_product_matching(sales_loop):
    from playwright.sync_api import expect

    base_url, ids = sales_loop
    with chromium_page() as page:
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", ids["sales"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/customers/{ids['customer']}")
        page.click(".tag-editor summary")
        page.locator(".tag-choice", has_text="高意向").locator("input").check()
        page.click(".tag-editor button[type=submit]")
        expect(page.locator(".notice")).to_have_text("标签已保存")
        expect(page.locator(".badge.tag")).to_have_text(["高意向"])
        from datetime import timedelta

        from core import clock

        page.fill(".visit-form input[name=scheduled_at]", f"{clock.today() + timedelta(days=3)}T15:00")
        page.click(".visit-form button[type=submit]")
        assert page.locator(".error").count() == 0, page.locator(".error").all_inner_texts()
        expect(page.locator(".notice")).to_have_text("预约已创建")
        expect(page.locator("#visits li")).to_have_count(1)
        page.click("text=发起贷款申请")
        page.fill("input[name=amount]", "5万")
        page.fill("input[name=term_months]", "12")
        choice = page.locator(".match-choice", has_text=ids["product"])
        expect(choice).to_contain_text("综合年化 12.00%")  # htmx re-matched as the amount was typed
        page.click("button.primary[type=submit]")
        expect(page.locator("h1")).to_contain_text("贷款申请 #")
