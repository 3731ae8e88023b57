"""In a real browser: changing one's password (修改密码), the staff form's reset options, and the API docs
rendering from our own files with no request leaving the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.db import unit_of_work
from tests.browser_harness import CHROMIUM, CHROMIUM_ARGS, live_server, require_chromium
from tests.factories import PASSWORD, make_department, make_staff

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("SCRM_SCREENSHOT_DIR", "/tmp"))
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def base_url(committed):
    require_chromium()
    with unit_of_work() as session:
        company = make_department(session, "总公司")
        make_staff(session, role="admin", department=company, username="pwadmin", display_name="密码管理员")
        make_staff(session, role="sales", department=company, username="pwsales", display_name="销售小李")
    with live_server() as url:
        yield url


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/console/")


def test_changing_my_password_in_the_browser_logs_out_my_other_browser(base_url, browser):
    from playwright.sync_api import expect

    other = browser.new_context(locale="zh-CN").new_page()
    _login(other, base_url, "pwsales")
    for name, (width, height) in SIZES.items():
        page = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
        _login(page, base_url, "pwsales", PASSWORD if name == "desktop" else "Brand-New-Pass-61")
        if name == "phone":  # the menu (with the name linking to 修改密码 in its footer) is behind 菜单 on a phone
            page.click("button.menu-button")
        page.click("a.who-link")
        expect(page.locator("h1")).to_have_text("修改密码")
        page.fill("input[name=current_password]", PASSWORD if name == "desktop" else "Brand-New-Pass-61")
        page.fill("input[name=password]", "woaini1314520")
        page.fill("input[name=password_again]", "woaini1314520")
        page.click("button.primary")
        expect(page.locator(".error, [role=alert]").first).to_contain_text("太常见")
        page.screenshot(path=str(SHOTS / f"secb_password_error_{name}.png"), full_page=True)
        if name == "desktop":
            page.fill("input[name=current_password]", PASSWORD)
            page.fill("input[name=password]", "Brand-New-Pass-61")
            page.fill("input[name=password_again]", "Brand-New-Pass-61")
            page.check("input[name=revoke_tokens]")
            page.click("button.primary")
            expect(page.locator("[role=status]")).to_contain_text("其他设备上的登录已全部退出")
            page.screenshot(path=str(SHOTS / f"secb_password_done_{name}.png"), full_page=True)
            other.goto(f"{base_url}/console/")
            expect(other).to_have_url(f"{base_url}/console/login?next=/console/")


def test_the_staff_form_offers_to_revoke_tokens_with_a_reset(base_url, browser):
    from playwright.sync_api import expect

    for name, (width, height) in SIZES.items():
        page = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
        _login(page, base_url, "pwadmin")
        page.goto(f"{base_url}/console/staff")
        page.click("text=销售小李")
        page.click("text=编辑")
        expect(page.locator("input[name=revoke_tokens]")).to_be_visible()
        page.screenshot(path=str(SHOTS / f"secb_staff_form_{name}.png"), full_page=True)


def test_api_docs_render_from_our_own_files_with_nothing_fetched_from_outside(base_url, browser):
    from playwright.sync_api import expect

    page = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900}).new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for docs in ("/api/docs", "/mp/docs"):
        page.goto(f"{base_url}{docs}")
        # the bundle is 1.7 MB of JavaScript: on a loaded machine it takes a while; what is tested is where it came from
        expect(page.locator(".swagger-ui .info .title")).to_be_visible(timeout=90_000)
        expect(page.locator(".opblock").first).to_be_visible()
        page.screenshot(path=str(SHOTS / f"secb_docs{docs.replace('/', '_')}.png"))
    outside = [url for url in requested if not url.startswith(base_url) and not url.startswith("data:")]
    assert outside == []
