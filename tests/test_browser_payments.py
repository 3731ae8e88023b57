"""The payment pages and the payment simulator in a real browser at desktop (1366x900) and phone (390x844)
widths: each page renders its Chinese content without spilling sideways; a customer's payment is
succeeded from the simulator's console page and shows up as paid. Screenshots go to $PAY_SHOTS if set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.db import unit_of_work
from core.settings import reset_settings_cache
from lending.payment_purposes import PURPOSE, current_bill, request_withholding
from payments import checkout, config, orders, withholding
from payments.models import PaymentOrder
from tests.browser_harness import CHROMIUM, CHROMIUM_ARGS, live_server, require_chromium
from tests.factories import PASSWORD
from tests.servicing_support import make_loan

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
PAGES = {
    "orders": ("/console/payments", "支付订单"),
    "withholding": ("/console/payments/withholding", "第 1 期还款（代扣）"),
    "authorizations": ("/console/payments/authorizations", "6222 **** **** 3445"),
    "reconciliation": ("/console/payments/reconciliation", "下载账单并对账"),
}


@pytest.fixture
def world(committed, monkeypatch):
    require_chromium()
    with live_server() as url:
        monkeypatch.setenv("SCRM_BASE_URL", url)
        reset_settings_cache()
        config.reset()
        from payments.simulator.state import STATE

        STATE.reset()
        STATE.auto_notify = False
        with unit_of_work() as session:
            w, loan = make_loan(session)
            bill = current_bill(session, loan)
            order, _ = checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                            customer_id=loan.customer_id, amount=bill.amount,
                                            description=f"贷款 #{loan.id} 第 {bill.period} 期还款", openid="o-openid-1")
            _, other = make_loan(session)
            withholding.authorize(session, customer_id=other.customer_id, account_no="6222020200112233445",
                                  holder_name="王先生", bank_name="工商银行", scope=[PURPOSE], max_amount=500_000,
                                  signed_via="miniprogram")
            finance, order_id, out_trade_no = w.finance.username, order.id, order.out_trade_no
            other_id = other.id
        with unit_of_work() as session:
            from lending.models import Loan

            request_withholding(session, session.get(Loan, other_id), staff_id=None)
        yield url, finance, order_id, out_trade_no
        config.reset()
    reset_settings_cache()


def _shot(page, name):
    folder = os.environ.get("PAY_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_payment_pages_render_at_desktop_and_phone_widths(world, task_runner):
    from playwright.sync_api import expect, sync_playwright

    url, finance, order_id, out_trade_no = world
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size, (width, height) in SIZES.items():
                page = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
                page.goto(f"{url}/console/login")
                page.fill("input[name=username]", finance)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                for name, (path, text) in PAGES.items():
                    page.goto(url + path)
                    expect(page.get_by_text(text).first).to_be_visible()
                    _shot(page, f"{name}-{size}")
                    assert _fits(page), f"{name} spills sideways at {size}"
                page.goto(f"{url}/console/payments/orders/{order_id}")
                expect(page.get_by_text("向渠道查询结果")).to_be_visible()
                _shot(page, f"order-{size}")
                assert _fits(page), f"the order page spills sideways at {size}"
                page.goto(f"{url}/_pay_sim/")
                expect(page.get_by_text(out_trade_no)).to_be_visible()
                _shot(page, f"simulator-{size}")
                assert _fits(page), f"the simulator spills sideways at {size}"
            # the simulator's console: the customer pays; the signed notification reaches our endpoint
            page.get_by_role("button", name="支付成功").first.click()
            expect(page.get_by_text("通知投递状态：204")).to_be_visible()
            task_runner.drain()
            page.goto(f"{url}/console/payments/orders/{order_id}")
            expect(page.get_by_text("已支付").first).to_be_visible()
            _shot(page, "order-paid-phone")
        finally:
            browser.close()
    with unit_of_work() as session:
        order = orders.get(session, order_id)
        assert order.status == "succeeded" and order.applied_ref.startswith("lending_repayment:")
        assert session.get(PaymentOrder, order_id).transaction_id
