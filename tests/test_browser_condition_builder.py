"""A manager builds a risk rule with the form condition builder in a real browser (the page's own script)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from core.db import unit_of_work
from lending.risk import rules as rule_sets
from lending.risk.evaluate import dry_run
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD, make_department, make_staff
from tests.lending_product_factories import make_funder, make_product

pytestmark = pytest.mark.browser
SIZES = ((1366, 900), (390, 844))


@pytest.fixture
def site(committed):
    require_chromium()
    with unit_of_work() as session:
        make_staff(session, role="manager", department=make_department(session, "总公司"), username="boss",
                   display_name="王经理")
        product_id = make_product(session, funder=make_funder(session, "浏览器银行")).id
    with live_server() as url:
        yield url, product_id


def _log_in(page, base_url):
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _no_sideways_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_manager_builds_a_rule_with_the_form_and_it_evaluates(site):
    from playwright.sync_api import expect

    base_url, product_id = site
    with chromium_page() as page:
        hosts = []
        page.on("request", lambda request: hosts.append(urlparse(request.url).hostname))
        errors = []  # a CSP violation (inline script or style) shows up here
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.set_viewport_size({"width": 1366, "height": 900})
        _log_in(page, base_url)
        page.goto(f"{base_url}/console/lending/risk/{product_id}")
        card = page.locator(".rule-card").first
        card.locator("input[name=rule_name]").fill("大额信用贷")
        card.locator("select[name=rule_outcome]").select_option(label="转人工审核")
        card.locator("input[name=rule_reason]").fill("金额超过 20 万，人工复核")
        builder = card.locator(".cond-builder")
        first = builder.locator(".cb-row").nth(0)
        first.locator(".cb-field").select_option(label="申请金额")
        expect(first.locator(".cb-suffix")).to_have_text("元")
        first.locator(".cb-op").select_option(label="大于")
        first.locator(".cb-value").fill("20万")
        builder.locator(".cb-add").click()
        second = builder.locator(".cb-row").nth(1)
        second.locator(".cb-field").select_option(label="客户类型")
        expect(second.locator(".cb-value-box")).to_be_hidden()  # a choice field: picked from its list
        expect(second.locator(".cb-op option[value=gt]")).to_be_disabled()
        second.locator(".cb-op").select_option(label="属于")
        second.locator(".cb-choice").select_option(label=["信用贷", "经营贷"])
        builder.locator("select[name$=-join]").select_option("and")
        written = 'amount > 200000_00 and customer_type in ["credit", "business"]'
        expect(builder.locator(".cb-preview code")).to_have_text(written)  # the server's preview (htmx)
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            assert _no_sideways_scroll(page), f"sideways scroll at {width}px"
            page.screenshot(path=f"/tmp/condbuilder-risk-{width}.png", full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})
        builder.get_by_label("高级：直接编辑表达式").check()  # the expression the rows wrote, for editing
        expect(builder.locator("textarea[name=rule_expression]")).to_have_value(written)
        builder.get_by_label("条件构建器").check()
        page.click("text=保存为新版本")
        expect(page.locator(".notice")).to_contain_text("规则已保存为新版本")
        expect(page.locator(".cb-preview code").first).to_have_text(written)
        builder = page.locator(".cond-builder").first  # read back into rows
        expect(builder.locator(".cb-row").nth(0).locator(".cb-value")).to_have_value("200000")
        expect(builder.locator(".cb-row").nth(1).locator(".cb-choice")).to_be_visible()
        assert {h for h in hosts if h} == {"127.0.0.1"}
        assert errors == []

    with unit_of_work() as session:
        version = rule_sets.current_rule_version(session, product_id)
        rule = version.rules[0]
        assert rule["expression"] == 'amount > 200000_00 and customer_type in ["credit", "business"]'
        assert dry_run(version, {"amount": 25_000_000, "customer_type": "business"}).outcome == "manual_review"
        assert dry_run(version, {"amount": 25_000_000, "customer_type": "mortgage"}).outcome == "pass"
        assert dry_run(version, {"amount": 20_000_000, "customer_type": "credit"}).outcome == "pass"


def test_the_advanced_toggle_shows_the_expression(site):
    from playwright.sync_api import expect

    base_url, product_id = site
    with chromium_page() as page:
        _log_in(page, base_url)
        page.goto(f"{base_url}/console/lending/risk/{product_id}")
        builder = page.locator(".cond-builder").first
        expect(builder.locator(".cb-advanced")).to_be_hidden()
        builder.get_by_label("高级：直接编辑表达式").check()
        expect(builder.locator(".cb-builder")).to_be_hidden()
        expect(builder.locator("textarea[name=rule_expression]")).to_be_visible()


def test_the_automation_rule_form_builds_its_conditions(site):
    from playwright.sync_api import expect

    base_url, _ = site
    with chromium_page() as page:
        _log_in(page, base_url)
        page.goto(f"{base_url}/console/work/rules")
        page.fill("input[name=name]", "新客跟进")
        page.select_option("select[name=trigger]", "customer_created")
        row = page.locator(".cond-builder .cb-row").first
        row.locator(".cb-field").select_option(label="阶段")
        expect(row.locator(".cb-op option[value=gt]")).to_be_disabled()
        row.locator(".cb-op").select_option(label="等于")
        row.locator(".cb-choice").select_option(index=0)
        page.fill("input[name=title]", "联系 {name}")
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            assert _no_sideways_scroll(page), f"sideways scroll at {width}px"
            page.screenshot(path=f"/tmp/condbuilder-automation-{width}.png", full_page=True)
        page.click("text=保存规则")
        expect(page.locator("table")).to_contain_text("新客跟进")
        expect(page.locator("table")).to_contain_text("阶段等于")
