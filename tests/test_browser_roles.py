"""设置 → 角色权限 in a real browser: an admin builds a custom role from a copied preset, gives it to a new staff
member on the staff form, and that person logs in to a menu of exactly what the role allows (and is refused the
rest). The role editor, 公司设置 and the admin's home with the onboarding checklist at 1366×900 and 390×844: no
sideways scroll, no request to another host. Screenshots go to $ROLES_SHOTS if set."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from core.db import unit_of_work
from crm.models import CustomRole, Staff
from tests.browser_harness import CHROMIUM, CHROMIUM_ARGS, live_server, require_chromium
from tests.factories import PASSWORD, make_org, make_staff

pytestmark = pytest.mark.browser
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
NEW_PASSWORD = "Dianxiao-Browser-2026!"


@pytest.fixture
def site(committed):
    require_chromium()
    with unit_of_work() as session:
        org = make_org(session)
        make_staff(session, role="admin", department=org["company"], username="boss", display_name="王总")
        make_staff(session, role="sales", department=org["team_a"], display_name="王小明")
        team_id = org["team_a"].id
    with live_server() as url:
        yield url, team_id


def _shot(page, name):
    folder = os.environ.get("ROLES_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def _log_in(page, url, username, password):
    page.goto(f"{url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console/")


def test_admin_builds_a_custom_role_and_its_holder_sees_only_what_it_allows(site):
    from playwright.sync_api import expect, sync_playwright

    url, team_id = site
    host = urlparse(url).netloc
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).netloc not in (host, "") and
                    not r.url.startswith("data:") else None)
            _log_in(page, url, "boss", PASSWORD)
            expect(page.locator("#onboarding")).to_be_visible()

            page.goto(f"{url}/console/settings/roles")
            page.click("text=复制为自定义角色 >> nth=3")  # 销售 (the fourth preset)
            form = page.locator("form.role-form")
            expect(form.locator("input[name=name]")).to_have_value("销售（自定义）")
            form.locator("input[name=name]").fill("电销专员")
            form.locator("input[name=description]").fill("只做电话邀约和导入名单")
            form.locator("input[value='customers.import']").check()
            form.locator("input[value='finance.cases']").uncheck()
            form.locator("input[name=data_scope][value='own']").check()
            form.locator("button[type=submit]").click()
            expect(page.locator(".notice")).to_have_text("角色已创建")
            expect(page.locator("table.grid").first).to_contain_text("电销专员")

            with unit_of_work() as session:
                role = session.scalar(select(CustomRole).where(CustomRole.name == "电销专员"))
                key = role.key
                assert "customers.import" in role.permissions and "finance.cases" not in role.permissions

            page.goto(f"{url}/console/staff/new")
            page.fill("input[name=username]", "liu01")
            page.fill("input[name=display_name]", "电销小刘")
            page.select_option("select[name=role]", key)
            page.select_option("select[name=department_id]", str(team_id))
            page.fill("input[name=password]", NEW_PASSWORD)
            page.locator("form:has(input[name=username]) button[type=submit]").click()
            expect(page.locator("dd").first).to_be_visible()
            expect(page.locator("main")).to_contain_text("电销专员")
            page.click("text=退出登录")

            _log_in(page, url, "liu01", NEW_PASSWORD)
            menu = page.locator("#sidenav")
            expect(menu.locator("a[href='/console/imports']")).to_have_count(1)
            expect(menu.locator("a[href='/console/tags']")).to_have_count(1)
            for hidden in ("/console/staff", "/console/audit", "/console/settings/roles", "/console/finance/agreements"):
                expect(menu.locator(f"a[href='{hidden}']")).to_have_count(0)
            expect(page.locator(".dash-who")).to_contain_text("电销专员")
            assert page.goto(f"{url}/console/imports").status == 200
            refused = page.goto(f"{url}/console/staff/new")
            assert refused.status == 403
            expect(page.locator("main")).to_contain_text("电销专员")
            _shot(page, "custom-role-refused-desktop")
        finally:
            browser.close()
    with unit_of_work() as session:
        assert session.scalar(select(Staff.role).where(Staff.username == "liu01")) == key
    assert foreign == []


@pytest.mark.parametrize("size", list(SIZES))
def test_role_editor_company_page_and_checklist_fit_the_screen(site, size):
    from playwright.sync_api import expect, sync_playwright

    url, _ = site
    width, height = SIZES[size]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height}).new_page()
            _log_in(page, url, "boss", PASSWORD)
            expect(page.locator("#onboarding")).to_contain_text("建立部门")
            assert _fits(page), "home scrolls sideways"
            _shot(page, f"home-onboarding-{size}")
            for path, name, heading in (("/console/settings/roles", "roles", "角色权限"),
                                        ("/console/settings/company", "company", "公司设置")):
                page.goto(url + path)
                expect(page.locator("h1")).to_have_text(heading)
                assert _fits(page), f"{path} scrolls sideways at {size}"
                _shot(page, f"{name}-{size}")
        finally:
            browser.close()
