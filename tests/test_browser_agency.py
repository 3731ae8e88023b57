"""The outsourcing pages in a real browser at desktop (1366×900) and phone (390×844) widths: the manager's
委外管理 and the agency portal (login, case list, case). Chinese, no sideways scroll, no number unmasked.
Screenshots go to $TEL_SHOTS if set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from core import pii
from core.db import unit_of_work
from crm.models import Customer
from lending.servicing import cob
from postloan.agency import service
from postloan.models import CollectionCase
from tests.browser_harness import CHROMIUM, CHROMIUM_ARGS, live_server, require_chromium
from tests.factories import PASSWORD as STAFF_PASSWORD
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on
from tests.test_postloan_cases import D

pytestmark = pytest.mark.browser
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
PASSWORD = "Waibao-Portal-2026"


def _shot(page, name):
    folder = os.environ.get("TEL_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_outsourcing_pages_at_desktop_and_phone_widths(committed):
    from playwright.sync_api import expect, sync_playwright

    require_chromium()
    with unit_of_work() as session:
        w, loan = make_loan(session)
        make_staff(session, role="collector", department=w.manager.department, data_scope="own")
        manager = w.manager.username
    on(D)
    cob.run_date(D)
    with unit_of_work() as session:
        case = session.scalar(select(CollectionCase))
        agency = service.create_agency(session, V(w.manager), name="华信催收",
                                       commission_rate=service.parse_rate("15"))
        service.create_user(session, V(w.manager), agency_id=agency.id, username="huaxin01", display_name="周经理",
                            password=PASSWORD)
        service.assign(session, V(w.manager), case_id=case.id, agency_id=agency.id)
        case_id = case.id
        phone = pii.open_sealed(pii.PHONE, session.get(Customer, case.customer_id).phone_enc)
    with live_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size, (width, height) in SIZES.items():
                staff = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
                staff.goto(f"{url}/console/login")
                staff.fill("input[name=username]", manager)
                staff.fill("input[name=password]", STAFF_PASSWORD)
                staff.click("button[type=submit]")
                staff.goto(f"{url}/console/collections/agencies")
                expect(staff.get_by_role("cell", name="15.00%").first).to_be_visible()
                _shot(staff, f"agencies-{size}")
                assert _fits(staff), f"委外管理 spills sideways at {size}"
                portal = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
                portal.goto(f"{url}/agency/login")
                _shot(portal, f"agency-login-{size}")
                portal.fill("input[name=username]", "huaxin01")
                portal.fill("input[name=password]", PASSWORD)
                portal.get_by_role("button", name="登录").click()
                expect(portal.get_by_text(f"案件 #{case_id}")).to_be_visible()
                _shot(portal, f"agency-cases-{size}")
                assert _fits(portal) and phone not in portal.content()
                portal.get_by_text(f"案件 #{case_id}").click()
                portal.fill("input[name=note]", "已电话联系，客户称周五还款")
                portal.get_by_role("button", name="保存").click()
                expect(portal.get_by_text("催收记录已保存")).to_be_visible()
                _shot(portal, f"agency-case-{size}")
                assert _fits(portal) and phone not in portal.content()
        finally:
            browser.close()
