"""Log in and out of the console in a real browser against a real server."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD, make_department, make_staff

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/console.png"


@pytest.fixture
def base_url(committed):
    require_chromium()
    with unit_of_work() as session:
        make_staff(session, role="admin", department=make_department(session, "总公司"), username="browser",
                   display_name="浏览器测试员")
    with live_server() as url:
        yield url


def test_console_login_and_logout_in_chromium(base_url):
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(f"{base_url}/console/")
        expect(page).to_have_url(f"{base_url}/console/login?next=/console/")

        page.fill("input[name=username]", "browser")
        page.fill("input[name=password]", "wrong-password1")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_have_text("用户名或密码错误")

        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{base_url}/console/")
        expect(page.locator("h1")).to_have_text("欢迎，浏览器测试员")
        expect(page.locator(".who-name")).to_have_text("浏览器测试员")
        page.screenshot(path=SCREENSHOT, full_page=True)

        page.click("text=退出登录")
        expect(page).to_have_url(f"{base_url}/console/login")
        page.goto(f"{base_url}/console/")
        expect(page).to_have_url(f"{base_url}/console/login?next=/console/")
