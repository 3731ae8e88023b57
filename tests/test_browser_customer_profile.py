"""资质 and custom fields in a real browser: a manager defines a field, the customer 360 fills and reveals the
qualification, and the chat sidebar (inside the simulator's WeCom client) edits both, refusing bad input in
Chinese. Screenshots at 1366×900 and 390×844; nothing wider than the screen."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from crm import custom_fields
from crm.scope import Viewer
from tests.browser_harness import chromium_page, require_chromium
from tests.factories import PASSWORD, make_customer, make_org, make_staff

pytestmark = pytest.mark.browser
SIZES = {"1366": (1366, 900), "390": (390, 844)}


@pytest.fixture
def world(committed, wecom_server):
    require_chromium()
    with unit_of_work() as session:
        org = make_org(session)
        manager = make_staff(session, role="manager", department=org["company"], data_scope="all")
        sales = make_staff(session, department=org["team_a"], data_scope="own", wecom_userid="bp_sales",
                           display_name="王小明")
        customer = make_customer(session, owner=sales, name="周资质", phone="13900003333", customer_type="credit",
                                 wecom_external_userid="wm_bp_q")
        custom_fields.create_field(session, Viewer.of(manager), {
            "key": "work_years", "label": "工作年限", "field_type": "number", "required": True, "show_in_list": True})
        ids = {"manager": manager.username, "customer": customer.id}
    wecom_server.admin("contact", {"userid": "bp_sales", "external_userid": "wm_bp_q", "name": "周资质"})
    return wecom_server.base_url, ids


def _login(page, base_url, username):
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _fits(page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0


def test_console_defines_a_field_and_fills_and_reveals_the_qualification(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        _login(page, base_url, ids["manager"])
        page.goto(f"{base_url}/console/settings/custom-fields")
        form = page.locator("form.custom-field-form").last
        form.locator("input[name=key]").fill("house_area")
        form.locator("input[name=label]").fill("房产区域")
        form.locator("select[name=field_type]").select_option("choice")
        form.locator("button[type=submit]").click()
        expect(page.locator(".error, [role=alert]").first).to_contain_text("单选字段请至少填写一个选项")
        form = page.locator("form.custom-field-form").last
        form.locator("textarea[name=options]").fill("城区，郊区")
        form.locator("button[type=submit]").click()
        expect(page.locator("table.grid")).to_contain_text("城区、郊区")
        for size, (w, h) in SIZES.items():
            page.set_viewport_size({"width": w, "height": h})
            page.screenshot(path=f"/tmp/profile_fields_{size}.png", full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})

        page.goto(f"{base_url}/console/customers/{ids['customer']}")
        card = page.locator("#qualification")
        card.locator("summary", has_text="填写资质").click()
        card.locator("select[name=employment_type]").select_option("employee")
        card.locator("input[name=income_monthly_amount]").fill("一万五")  # Chinese numerals are not a number (1.5万 is)
        card.locator("button", has_text="保存资质").click()
        expect(page.locator("[role=alert]").first).to_contain_text("月收入格式不正确")
        card = page.locator("#qualification")
        card.locator("input[name=income_monthly_amount]").fill("15000")
        card.locator("input[name=employer]").fill("杭州某某科技有限公司")
        card.locator("input[name=social_insurance_months]").fill("36")
        card.locator("button", has_text="保存资质").click()
        expect(page.locator("[role=status]").first).to_contain_text("资质已保存")
        expect(page.locator("#qualification")).to_contain_text("1**** 元")
        expect(page.locator("#qualification")).not_to_contain_text("杭州某某")
        page.locator("#qualification button", has_text="查看资质明细").click()
        expect(page.locator(".revealed-qualification")).to_contain_text("杭州某某科技有限公司")

        fields = page.locator("#custom-fields")
        fields.locator("summary", has_text="填写自定义字段").click()
        fields.locator("input[name=cf_work_years]").fill("")
        fields.locator("button", has_text="保存自定义字段").click()
        expect(page.locator("[role=alert]").first).to_contain_text("「工作年限」为必填项")
        page.locator("#custom-fields input[name=cf_work_years]").fill("6")
        page.locator("#custom-fields button", has_text="保存自定义字段").click()
        expect(page.locator("#custom-fields dl")).to_contain_text("6")
        for size, (w, h) in SIZES.items():
            page.set_viewport_size({"width": w, "height": h})
            page.locator("#qualification details").evaluate("d => d.open = true")
            _fits(page)
            page.screenshot(path=f"/tmp/profile_360_{size}.png", full_page=True)

        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{base_url}/console/customers?cf_field=custom.work_years&cf_cmp=gte&cf_value=5")
        expect(page.locator("table.grid tbody tr")).to_have_count(1)
        expect(page.locator("table.grid thead")).to_contain_text("工作年限")
        for size, (w, h) in SIZES.items():
            page.set_viewport_size({"width": w, "height": h})
            page.screenshot(path=f"/tmp/profile_list_{size}.png", full_page=True)


def test_the_sidebar_edits_the_qualification_and_custom_fields(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        _login(page, base_url, ids["manager"])
        page.goto(f"{base_url}/_wecom_sim/sidebar?userid=bp_sales&external_userid=wm_bp_q")
        bar = page.frame_locator("#sim-sidebar")
        expect(bar.locator("#c-name")).to_have_text("周资质")
        expect(bar.locator("#c-qualification")).to_contain_text("未填写")

        bar.locator("summary", has_text="填写资质").click()
        bar.locator("#f-qualification select[name=property_status]").select_option("mortgage")
        bar.locator("#f-qualification input[name=provident_fund_months]").fill("-3")
        bar.locator("#f-qualification button").click()
        expect(bar.locator("#error")).to_contain_text("公积金缴纳月数必须是 0 或正整数")
        bar.locator("#f-qualification input[name=provident_fund_months]").fill("24")
        bar.locator("#f-qualification input[name=income_monthly_amount]").fill("9000")
        bar.locator("#f-qualification button").click()
        expect(bar.locator("#c-qualification")).to_contain_text("按揭房")
        expect(bar.locator("#c-qualification")).to_contain_text("9*** 元")

        bar.locator("summary", has_text="填写自定义字段").click()
        bar.locator("#f-fields input[name=work_years]").fill("三年")
        bar.locator("#f-fields button").click()
        expect(bar.locator("#error")).to_contain_text("「工作年限」必须是数字")
        bar.locator("#f-fields input[name=work_years]").fill("3")
        bar.locator("#f-fields button").click()
        expect(bar.locator("#c-fields")).to_contain_text("工作年限")
        page.screenshot(path="/tmp/profile_sidebar_1366.png", full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        expect(bar.locator("#c-name")).to_have_text("周资质")
        bar.locator("summary", has_text="填写资质").click()
        assert bar.locator("body").evaluate("b => b.scrollWidth - b.clientWidth") <= 0
        page.screenshot(path="/tmp/profile_sidebar_390.png", full_page=True)
