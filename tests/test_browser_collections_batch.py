"""The case page without any way to see the full number (拨打 only; a manager also sets the tier by hand) and
the batch dial list made of cases, in a real browser at desktop (1366×900) and phone (390×844) widths:
Chinese, no sideways scroll, no number unmasked. Screenshots go to $TEL_SHOTS if set."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import pii
from core.db import unit_of_work
from crm.models import Customer, Staff
from postloan.models import CollectionCase
from postloan.telephony.models import TelephonyCall
from tests.factories import PASSWORD
from tests.test_browser_collector_day import SIZES, _fits, _shot, day  # noqa: F401 - the live server fixture

pytestmark = pytest.mark.browser


def _log_in(browser, url, username, size):
    width, height = SIZES[size]
    page = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
    page.goto(f"{url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    return page


def test_the_case_page_and_a_batch_of_cases_at_both_widths(day, task_runner):  # noqa: F811 - the fixture
    from playwright.sync_api import expect, sync_playwright

    from tests.browser_harness import CHROMIUM, CHROMIUM_ARGS

    url, (loan_id, username, _) = day
    with unit_of_work() as session:
        case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan_id))
        case_id = case.id
        manager = session.scalar(select(Staff.username).where(Staff.role == "manager").order_by(Staff.id))
        plain_phone = pii.open_sealed(pii.PHONE, session.get(Customer, case.customer_id).phone_enc)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size in SIZES:
                page = _log_in(browser, url, username, size)
                page.goto(f"{url}/console/collections/cases/{case_id}")
                expect(page.get_by_role("button", name="拨打")).to_be_visible()
                assert page.get_by_role("button", name="查看完整号码").count() == 0
                _shot(page, f"case-open-{size}")
                assert _fits(page), f"the case page spills sideways at {size}"
                assert plain_phone not in page.content()
                boss = _log_in(browser, url, manager, size)  # a manager also sets the tier by hand
                boss.goto(f"{url}/console/collections/cases/{case_id}")
                boss.select_option("select[name=risk_tier]", "high")
                boss.fill("form[action$='/tier'] input[name=reason]", "借款人失联")
                boss.get_by_role("button", name="调整风险等级").click()
                expect(boss.get_by_text("风险等级已调整")).to_be_visible()
                expect(boss.get_by_text("手动：借款人失联").first).to_be_visible()
                _shot(boss, f"case-manager-{size}")
                assert _fits(boss), f"the manager's case page spills sideways at {size}"
                assert plain_phone not in boss.content()
                page.goto(f"{url}/console/collections/calls")
                page.fill("input[name=name]", f"今日 M1（{size}）")
                page.fill("input[name=case_ids]", f"{case_id}，999999")
                page.get_by_role("button", name="提交名单").click()
                expect(page.get_by_text("批量外呼已提交 1 通")).to_be_visible()
                expect(page.get_by_text("案件 #999999：催收案件不存在或不在您的范围内")).to_be_visible()
                _shot(page, f"batch-{size}")
                assert _fits(page), f"the batch dial page spills sideways at {size}"
                assert plain_phone not in page.content()
        finally:
            browser.close()
    with unit_of_work() as session:
        calls = list(session.scalars(select(TelephonyCall).where(TelephonyCall.subject_id == case_id)))
        assert len(calls) == 2 and {c.subject_kind for c in calls} == {"collection_case"}
        assert all(c.batch_id is not None for c in calls)
