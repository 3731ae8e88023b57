"""A collector's day in a real browser (issue 16 item 9): the case queue → the case → its script → 拨打
(the call-center simulator rings over HTTP; the call is answered on the simulator's console page; its
signed callback comes back) → a promise to pay → the borrower pays (the repayment applied) → the case is cured. Then the telephony pages at desktop (1366×900) and
phone (390×844) widths: Chinese, no sideways scroll, no number unmasked. Screenshots go to $TEL_SHOTS if set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from core import pii
from core.db import unit_of_work
from core.settings import reset_settings_cache
from crm.models import Customer, Staff
from lending.models import Loan
from lending.payment_purposes import current_bill
from lending.servicing import cob, repayments
from postloan import scripts
from postloan.models import CollectionCase, CollectionPromise
from postloan.telephony import config as tel_config
from postloan.telephony.models import TelephonyCall
from tests.browser_harness import CHROMIUM, CHROMIUM_ARGS, live_server, require_chromium
from tests.factories import PASSWORD, make_staff
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on
from tests.test_postloan_cases import D

pytestmark = pytest.mark.browser
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def day(committed, monkeypatch):
    require_chromium()
    with live_server() as url:
        monkeypatch.setenv("SCRM_BASE_URL", url)
        reset_settings_cache()
        tel_config.set_provider(None)
        from postloan.telephony.simulator.state import STATE as TEL

        TEL.reset()
        TEL.auto_complete = False
        with unit_of_work() as session:
            w, loan = make_loan(session)
            collector = make_staff(session, role="collector", department=w.manager.department, data_scope="own",
                                   display_name="催收小李")
            scripts.save_script(session, V(w.manager), name="M1 首次提醒", bucket="M1",
                                body="您好{name}，您的借款已逾期 {days_overdue} 天，应还 {amount_due}，请尽快还款。")
            ids = (loan.id, collector.username, w.finance.id)
        on(D)  # ten days overdue, 10:00 in Shanghai: within the calling hours
        cob.run_date(D)
        yield url, ids
        tel_config.set_provider(None)
    reset_settings_cache()


def _shot(page, name):
    folder = os.environ.get("TEL_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_collectors_day_from_queue_to_a_cured_case(day, task_runner):
    from playwright.sync_api import expect, sync_playwright

    url, (loan_id, username, finance_id) = day
    with unit_of_work() as session:
        case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan_id))
        case_id = case.id
        plain_phone = pii.open_sealed(pii.PHONE, session.get(Customer, case.customer_id).phone_enc)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900}).new_page()
            page.goto(f"{url}/console/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            # the queue → the case → its script
            page.goto(f"{url}/console/collections/cases")
            page.locator(f"a[href='/console/collections/cases/{case_id}']").first.click()
            expect(page.get_by_text("逾期 10 天，应还")).to_be_visible()
            # 拨打: the server dials; the browser sees only the masked number
            page.get_by_role("button", name="拨打").click()
            expect(page.locator("#call-status")).to_contain_text("正在")
            task_runner.drain()  # the dial task: the simulator now rings
            _shot(page, "case-calling-desktop")
            assert plain_phone not in page.content()
            # the borrower answers (on the simulator's console page); the signed callback comes back
            sim = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900}).new_page()
            sim.goto(f"{url}/_tel_sim/")
            sim.get_by_role("button", name="接听（90 秒）").first.click()
            expect(sim.get_by_text("回调投递状态：204")).to_be_visible()
            task_runner.drain()  # the callback's processing: the call finished, recorded on the case
            expect(page.locator("#call-status")).to_contain_text("通话结束：已接通，通话 90 秒", timeout=10_000)
            # a promise to pay, one click
            with unit_of_work() as session:
                amount_yuan = f"{current_bill(session, session.get(Loan, loan_id)).amount / 100:.2f}"
            page.goto(f"{url}/console/collections/cases/{case_id}")
            expect(page.get_by_text("外呼").first).to_be_visible()
            page.fill("input[name=promised_date]", D.isoformat())
            page.fill("input[name=promised_amount]", amount_yuan)
            page.get_by_role("button", name="承诺还款").click()
            expect(page.get_by_text("待兑现").first).to_be_visible()
            # the borrower pays what is overdue; finance books it (the WeChat Pay path ends in the same call)
            with unit_of_work() as session:
                loan = session.get(Loan, loan_id)
                repayments.record_repayment(session, loan_id, viewer=V(session.get(Staff, finance_id)),
                                            amount=current_bill(session, loan).amount, repayment_date=D,
                                            external_reference="BANK-SLIP-1", channel="bank_transfer")
            task_runner.drain()
            page.goto(f"{url}/console/collections/cases/{case_id}")
            expect(page.get_by_text("已还至正常").first).to_be_visible()
            expect(page.get_by_text("已兑现").first).to_be_visible()
            _shot(page, "case-cured-desktop")
            # the telephony pages at both widths
            for size, (width, height) in SIZES.items():
                p = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
                p.goto(f"{url}/console/login")
                p.fill("input[name=username]", username)
                p.fill("input[name=password]", PASSWORD)
                p.click("button[type=submit]")
                for name, path, text in (("calls", "/console/collections/calls", "勿扰名单"),
                                         ("simulator", "/_tel_sim/", "呼叫（最近 100 通）"),
                                         ("case", f"/console/collections/cases/{case_id}", "案件记录")):
                    p.goto(url + path)
                    expect(p.get_by_text(text).first).to_be_visible()
                    _shot(p, f"{name}-{size}")
                    assert _fits(p), f"{name} spills sideways at {size}"
                    assert plain_phone not in p.content()
        finally:
            browser.close()
    with unit_of_work() as session:
        case = session.get(CollectionCase, case_id)
        assert (case.status, case.close_reason) == ("closed", "cured")
        call = session.scalar(select(TelephonyCall).where(TelephonyCall.subject_id == case_id))
        assert (call.result, call.duration_seconds) == ("answered", 90)
        promise = session.scalar(select(CollectionPromise).where(CollectionPromise.case_id == case_id))
        assert promise.status == "kept"
