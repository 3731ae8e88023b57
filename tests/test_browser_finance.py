"""The finance center's main path in a real browser: agreement → 合同确认 → approval → deposit confirmed → 做单 →
disbursed → settlement with a discount and two payment methods → vouchers → three confirmations → 结单 → export."""

from __future__ import annotations

import os
from io import BytesIO

import pytest
from openpyxl import load_workbook

from core.db import unit_of_work
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD
from tests.finance_support import make_world

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("SCRM_SCREENSHOT_DIR", "/tmp")


@pytest.fixture
def world(committed):
    require_chromium()
    with unit_of_work() as session:
        w = make_world(session)
        ids = {"sales": w.sales.username, "officer": w.officer.username, "officer_id": w.officer.id,
               "supervisor": w.supervisor.username, "finance": w.finance.username, "customer_id": w.customer.id}
    with live_server() as url:
        yield url, ids


def _login(page, base_url: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/console/**")


def _shoot(page, name: str) -> None:
    for label, size in (("desktop", {"width": 1366, "height": 900}), ("phone", {"width": 390, "height": 844})):
        page.set_viewport_size(size)
        page.screenshot(path=f"{SHOTS}/finance_{name}_{label}.png", full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def _post_button(page, text: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=text).first.click()


def test_main_path_from_agreement_to_export(world, task_runner):
    from playwright.sync_api import expect

    base, ids = world
    with chromium_page() as page:
        # 签单 by the salesperson
        _login(page, base, ids["sales"])
        page.goto(f"{base}/console/finance/agreements/new")
        page.select_option("select[name=customer_id]", str(ids["customer_id"]))
        page.select_option("select[name=case_officer_id]", str(ids["officer_id"]))
        page.fill("input[name=loan_amount]", "200000")
        page.fill("input[name=term_months]", "36")
        page.fill("input[name=funder_annual_rate]", "6")
        page.fill("input[name=service_fee_rate]", "3")
        page.fill("input[name=deposit_amount]", "1000")
        _shoot(page, "agreement_form")
        _post_button(page, "保存签单")
        expect(page.locator(".notice")).to_contain_text("签单已录入")
        expect(page.locator(".apr")).to_contain_text("%")
        agreement_url = page.url.split("?")[0]
        # 合同确认 by finance
        _login(page, base, ids["finance"])
        page.goto(agreement_url)
        _post_button(page, "合同确认")
        expect(page.locator("h1 .badge")).to_have_text("待主管审批")
        # approval by the supervisor
        _login(page, base, ids["supervisor"])
        page.goto(agreement_url)
        _post_button(page, "主管审批通过")
        expect(page.locator("h1 .badge")).to_have_text("待收定金")
        # the case officer records the deposit, finance confirms it
        _login(page, base, ids["officer"])
        page.goto(agreement_url)
        page.fill("form[action$='/deposits'] input[name=amount]", "1000")
        page.select_option("form[action$='/deposits'] select[name=method]", "alipay")
        _post_button(page, "登记定金")
        _login(page, base, ids["finance"])
        page.goto(agreement_url)
        _post_button(page, "确认到账")
        expect(page.locator(".notice")).to_contain_text("进入做单中心")
        _shoot(page, "agreement")
        # 做单中心 shows the case to its officer
        _login(page, base, ids["officer"])
        page.goto(f"{base}/console/finance/work?mine=1")
        expect(page.locator("table.grid tbody tr")).to_have_count(1)
        _shoot(page, "work")
        # disbursed by an outside funder, recorded by finance
        _login(page, base, ids["finance"])
        page.goto(agreement_url)
        page.fill("input[name=funder_name]", "某城商行")
        page.fill("form[action$='/disbursement'] input[name=amount]", "200000")
        _post_button(page, "登记放款")
        expect(page.locator("h1 .badge")).to_have_text("待结算")
        page.click("text=结算 · 待结算")
        # the charge: 10% discount, two payment methods (6,000 − 600 − 1,000 deposit = 4,400 元)
        page.select_option("select[name=discount_kind]", "percent")
        page.fill("input[name=discount_rate]", "10")
        page.select_option("select[name=pay_method_0]", "wechat")
        page.fill("input[name=pay_amount_0]", "3000")
        page.select_option("select[name=pay_method_1]", "cash")
        page.fill("input[name=pay_amount_1]", "1400")
        page.fill("input[name=rebate_partner_0]", "渠道甲")
        page.fill("input[name=rebate_amount_0]", "500")
        _post_button(page, "保存收费")
        expect(page.locator(".notice")).to_contain_text("收费已保存")
        expect(page.locator(".summary-table .total td")).to_have_text("¥4,400.00")
        settlement_url = page.url.split("?")[0]
        _shoot(page, "settlement")
        # vouchers
        expect(page.locator("a", has_text="客户凭证")).to_have_attribute("target", "_blank")
        voucher = page.context.new_page()
        voucher.goto(base + page.locator("a", has_text="客户凭证").get_attribute("href"))
        expect(voucher.locator("h1")).to_have_text("服务费结算凭证")
        expect(voucher.locator("body")).not_to_contain_text("渠道甲")
        voucher.emulate_media(media="print")
        assert voucher.locator(".toolbar").evaluate("e => getComputedStyle(e).display") == "none"
        voucher.emulate_media(media="screen")
        _shoot(voucher, "voucher_customer")
        voucher.close()
        internal = page.context.new_page()
        internal.goto(base + page.locator("a", has_text="内部凭证").first.get_attribute("href"))
        expect(internal.locator("body")).to_contain_text("渠道甲")
        _shoot(internal, "voucher_internal")
        internal.close()
        # three confirmations
        for who, label in (("officer", "做单专员"), ("supervisor", "做单主管"), ("sales", "营销专员")):
            _login(page, base, ids[who])
            page.goto(settlement_url)
            _post_button(page, f"以{label}身份确认")
            expect(page.locator(".notice")).to_contain_text("已确认内部凭证")
        # 结单 and export
        _login(page, base, ids["finance"])
        page.goto(settlement_url)
        _post_button(page, "结单")
        expect(page.locator("h1 .badge")).to_have_text("已结算")
        page.goto(f"{base}/console/finance/settlements")
        _shoot(page, "settlements")
        page.click("text=导出 Excel")  # a background export job (导出任务): its page shows progress, then the file
        page.wait_for_url(f"{base}/console/exports/*")
        task_runner.drain()
        link = page.locator("a[data-download]")
        expect(link).to_be_visible(timeout=10_000)
        with page.expect_download() as download:
            link.click()
        rows = list(load_workbook(BytesIO(open(download.value.path(), "rb").read())).active.iter_rows(values_only=True))
        assert len(rows) == 2 and rows[1][-2] == "已结算" and rows[1][15] == 4400
        page.goto(f"{base}/console/finance/ledger?check=1")
        expect(page.locator(".check-ok")).to_contain_text("总账校验通过")
        _shoot(page, "ledger")
        page.goto(f"{base}/console/finance/deposits")
        receipt_url = base + page.locator("a", has_text="打印").first.get_attribute("href")
        _shoot(page, "deposits")
        page.goto(f"{base}/console/finance/agreements")
        _shoot(page, "agreements")
        page.goto(f"{base}/console/finance/performance")
        expect(page.locator("table.grid").first).to_contain_text("¥5,400.00")  # fees collected: 6,000 − 600
        _shoot(page, "performance")
        page.goto(f"{base}/console/finance/reimbursements")
        page.select_option("select[name=agreement_id]", index=1)
        page.fill("form[action='/console/finance/reimbursements'] input[name=amount]", "88.50")
        _post_button(page, "提交报销")
        expect(page.locator(".notice")).to_contain_text("报销已提交")
        _post_button(page, "确认")
        expect(page.locator(".notice")).to_contain_text("报销已确认入账")
        _shoot(page, "reimbursements")
        receipt = page.context.new_page()
        receipt.goto(receipt_url + "?paper=a5")
        expect(receipt.locator("h1")).to_have_text("定金结算清单")
        _shoot(receipt, "receipt")


def test_the_agreement_quote_and_the_demo_reimbursements(committed):
    """签单试算 on the form (the cost and the cap shown, nothing saved) and 做单报销 as `make run` seeds it."""
    from playwright.sync_api import expect
    from sqlalchemy import func, select

    from crm import demo as crm_demo
    from finance import demo as finance_demo
    from finance.models import Agreement

    require_chromium()
    with unit_of_work() as session:
        crm_demo.seed(session)
        finance_demo.seed(session)
        agreements_before = session.scalar(select(func.count()).select_from(Agreement))
    with live_server() as base, chromium_page() as page:
        page.goto(f"{base}/console/login")
        page.fill("input[name=username]", "sales1")
        page.fill("input[name=password]", "Xiaoshou-Demo-2026")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console/**")
        page.goto(f"{base}/console/finance/agreements/new")
        page.fill("input[name=loan_amount]", "200000")
        page.fill("input[name=term_months]", "36")
        page.fill("input[name=funder_annual_rate]", "6")
        page.fill("input[name=service_fee_rate]", "3")
        page.fill("input[name=other_name_1]", "评估费")
        page.fill("input[name=other_amount_1]", "800")
        _post_button(page, "试算综合年化成本")
        expect(page.locator(".quote-result")).to_contain_text("试算：综合年化成本")
        expect(page.locator(".quote-result")).to_contain_text("上限 24.00%")
        expect(page.locator("input[name=loan_amount]")).to_have_value("200000")
        page.locator(".quote-result").scroll_into_view_if_needed()
        _shoot(page, "agreement_quote")
        page.fill("input[name=service_fee_rate]", "30")
        _post_button(page, "试算综合年化成本")
        expect(page.locator(".error")).to_contain_text("超过上限 24.00%，不能签约")
        _shoot(page, "agreement_quote_above_cap")
        page.goto(f"{base}/console/login")
        page.context.clear_cookies()
        page.goto(f"{base}/console/login")
        page.fill("input[name=username]", "finance")
        page.fill("input[name=password]", "Caiwu-Demo-2026")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console/**")
        page.goto(f"{base}/console/finance/reimbursements")
        rows = page.locator("table.grid tbody tr")
        expect(rows.first).to_be_visible()
        assert rows.count() >= 7
        expect(page.locator("table.grid")).to_contain_text("已作废")
        expect(page.locator("table.grid")).to_contain_text("已支付")
        _shoot(page, "reimbursements_demo")
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Agreement)) == agreements_before  # quotes save nothing
