"""The import page in a real browser: the formats and the row cap are shown, a spreadsheet bomb
uploaded through the form is refused there with the Chinese reason, at desktop and phone widths."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD, make_org, make_staff
from tests.import_support import xlsx_bomb

pytestmark = pytest.mark.browser


@pytest.fixture
def site(committed, tmp_path, monkeypatch):
    require_chromium()
    from core.settings import reset_settings_cache

    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    with unit_of_work() as session:
        org = make_org(session)
        manager = make_staff(session, role="manager", department=org["company"], display_name="经理")
        username = manager.username
    with live_server() as url:
        yield url, username
    reset_settings_cache()


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)])
def test_import_page_shows_the_cap_and_refuses_a_bomb(site, tmp_path, width, height):
    from playwright.sync_api import expect

    base_url, username = site
    bomb = xlsx_bomb(tmp_path / "名单.xlsx")
    with chromium_page() as page:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/imports")
        expect(page.locator("p.muted").first).to_contain_text("单次最多 200,000 行数据")
        page.screenshot(path=f"/tmp/seca_imports_{width}.png", full_page=True)
        page.set_input_files("input[name=file]", str(bomb))
        page.click("form.filters button[type=submit]")
        alert = page.locator("[role=alert]")
        expect(alert).to_contain_text("解压后过大")
        expect(alert).to_contain_text("拆分")
        page.screenshot(path=f"/tmp/seca_imports_refused_{width}.png", full_page=True)
        # the page's own content fits the screen (the shared top navigation is another matter)
        for box in (alert.bounding_box(), page.locator("p.muted").first.bounding_box()):
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
