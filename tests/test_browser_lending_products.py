"""The product form's live schedule preview in a real browser (the page's own script, no CDN)."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD, make_department, make_staff
from tests.lending_product_factories import make_funder

pytestmark = pytest.mark.browser


@pytest.fixture
def base_url(committed):
    require_chromium()
    with unit_of_work() as session:
        make_staff(session, role="manager", department=make_department(session, "总公司"), username="pm",
                   display_name="产品经理")
        make_funder(session, "浏览器银行")
    with live_server() as url:
        yield url


def test_the_schedule_preview_follows_the_form(base_url):
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", "pm")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/lending/products/new")
        page.fill("input[name=min_amount]", "10000")
        page.fill("input[name=max_amount]", "100000")
        page.fill("input[name=terms_months]", "12")
        page.fill("input[name=annual_rate]", "12")
        preview = page.locator("#schedule-preview")
        expect(preview.locator(".apr")).to_have_text("12.00%")
        expect(preview.locator("table.schedule tbody tr")).to_have_count(12)
        expect(preview).to_contain_text("888.49")

        page.fill("input[name=annual_rate]", "30")
        expect(preview.locator(".error")).to_contain_text("超过上限")
        page.screenshot(path="/tmp/lending-product-preview.png", full_page=True)


def test_create_a_product_then_try_its_rules(base_url):
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", "pm")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/lending/products/new")
        page.fill("input[name=code]", "BR-1")
        page.fill("input[name=name]", "浏览器信用贷")
        page.fill("input[name=min_amount]", "10000")
        page.fill("input[name=max_amount]", "100000")
        page.fill("input[name=terms_months]", "12,24")
        page.fill("input[name=annual_rate]", "12")
        page.check("input[name=customer_types][value=credit]")
        page.click("text=创建产品")
        expect(page.locator(".notice")).to_contain_text("产品已创建")
        page.screenshot(path="/tmp/lending-product.png", full_page=True)

        page.click("text=风控规则 >> nth=-1")
        page.locator("input[name=rule_name]").first.fill("年龄")
        page.locator(".cond-builder").first.get_by_label("高级：直接编辑表达式").check()
        page.locator("textarea[name=rule_expression]").first.fill("age > 55")
        page.locator("input[name=rule_reason]").first.fill("年龄超过 55 周岁")
        page.fill("input[name=credit_limit_expression]", "min(income_monthly * 12, 200000_00)")
        page.fill("input[name=fact_age]", "60")
        page.fill("input[name=fact_income_monthly]", "8000")
        page.click("text=试算（不保存）")
        expect(page.locator(".test-result h2")).to_contain_text("拒绝")
        expect(page.locator(".test-result")).to_contain_text("¥96,000.00")
        page.screenshot(path="/tmp/lending-risk.png", full_page=True)
