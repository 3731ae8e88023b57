"""The product form's 资质要求 and the Customer 360's 产品匹配 panel in a real browser, at a desktop and a
phone width (screenshots under /tmp for a person to look at)."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from crm import qualification
from crm.scope import Viewer
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD, make_customer, make_department, make_staff
from tests.lending_product_factories import make_funder, make_product

pytestmark = pytest.mark.browser
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def world(committed):
    require_chromium()
    with unit_of_work() as session:
        manager = make_staff(session, role="manager", department=make_department(session, "总公司"), username="pm",
                             display_name="产品经理", data_scope="all")
        funder = make_funder(session, "浏览器银行")
        customer = make_customer(session, owner=manager, name="李四", demand_amount=5_000_000, demand_term_months=12)
        make_product(session, funder=funder, code="FREE", name="随借随还")
        make_product(session, funder=funder, code="SOC", name="社保贷", min_social_insurance_months=12,
                     excluded_industries=["娱乐休闲"])
        make_product(session, funder=funder, code="HOUSE", name="房主贷", property_required=True)
        qualification.update(session, Viewer.of(manager), customer.id, {"social_insurance_months": "6",
                                                                         "industry": "制造业"})
        ids = {"customer": customer.id, "funder": funder.id}
    with live_server() as url:
        yield url, ids


def _log_in(page, base_url):
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", "pm")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_the_product_form_refuses_a_bad_requirement_then_saves_and_shows_them(world):
    from playwright.sync_api import expect

    base_url, _ = world
    with chromium_page() as page:
        _log_in(page, base_url)
        page.goto(f"{base_url}/console/lending/products/new")
        page.fill("input[name=code]", "REQ-1")
        page.fill("input[name=name]", "公积金贷")
        page.fill("input[name=min_amount]", "10000")
        page.fill("input[name=max_amount]", "100000")
        page.fill("input[name=terms_months]", "12,24")
        page.fill("input[name=annual_rate]", "12")
        page.fill("input[name=min_provident_fund_months]", "6")
        page.select_option("select[name=property_required]", "1")
        page.fill("input[name=max_debt_ratio]", "五成")
        page.check("input[name=allowed_industries][value=教育]")
        page.check("input[name=excluded_industries][value=娱乐休闲]")
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.locator("legend", has_text="资质要求").scroll_into_view_if_needed()
            page.screenshot(path=f"/tmp/matching-product-form-{size}.png")
        page.click("text=创建产品")
        expect(page.locator(".error, [role=alert]").first).to_contain_text("最高负债率格式不正确")
        expect(page.locator("input[name=min_provident_fund_months]")).to_have_value("6")  # kept as typed
        expect(page.locator("input[name=allowed_industries][value=教育]")).to_be_checked()
        page.screenshot(path="/tmp/matching-product-form-error.png")
        page.fill("input[name=max_debt_ratio]", "50")
        page.click("text=创建产品")
        expect(page.locator(".notice")).to_contain_text("产品已创建")
        facts = page.locator("dl.requirements")
        expect(facts).to_contain_text("至少 6 个月")
        expect(facts).to_contain_text("须有房产")
        expect(facts).to_contain_text("不超过 50%")
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.locator("dl.requirements").scroll_into_view_if_needed()
            page.screenshot(path=f"/tmp/matching-product-page-{size}.png")


def test_the_customer_360_matching_panel_shows_the_reasons(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        _log_in(page, base_url)
        page.goto(f"{base_url}/console/customers/{ids['customer']}")
        panel = page.locator("#matching")
        expect(panel).to_contain_text("适合 1 个，需补充资料 1 个，不适合 1 个")
        expect(panel.locator(".match-ok")).to_contain_text("随借随还")
        expect(panel.locator(".match-needs")).to_contain_text("待补充：房产情况（产品要求有房产）")
        expect(panel.locator(".match-no")).to_contain_text("社保缴纳 6 个月，产品要求至少 12 个月")
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            panel.scroll_into_view_if_needed()
            panel.screenshot(path=f"/tmp/matching-customer-panel-{size}.png")
            page.screenshot(path=f"/tmp/matching-customer-page-{size}.png")
            width_of_page = page.evaluate("document.documentElement.scrollWidth")
            assert width_of_page <= width  # nothing pushes the page sideways
