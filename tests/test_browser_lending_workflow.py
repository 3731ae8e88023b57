"""The workflow designer in a real browser: a conditional transition (流转条件, typed in yuan) and a CC (抄送)
saved as a new version, shown back in words; the page fits a phone without sideways scrolling."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from lending.workflow import definitions
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD
from tests.lending_flow_support import make_world

pytestmark = pytest.mark.browser


@pytest.fixture
def world(committed):
    require_chromium()
    with unit_of_work() as session:
        w = make_world(session)
        definitions.ensure_active(session)
        manager = w.manager.username
    with live_server() as url:
        yield url, manager


def test_the_designer_saves_a_conditional_transition(world):
    from playwright.sync_api import expect

    base_url, manager = world
    with chromium_page() as page:
        hosts: set[str] = set()
        page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", manager)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/lending/workflow")
        expect(page.locator("h1")).to_contain_text("审批流程配置")
        page.select_option("select[name=rfrom_0]", label="初审")
        page.select_option("select[name=rop_0]", label="大于")
        page.fill("input[name=ramount_0]", "20万")
        page.select_option("select[name=rto_0]", label="复审")
        page.select_option("select[name=rfrom_1]", label="初审")
        page.select_option("select[name=rto_1]", label="签约")
        page.fill("input[name=cc_1]", "经理")
        page.fill("input[name=note]", "大额复审")
        page.click("button:has-text('保存为新版本')")
        expect(page.locator(".notice").first).to_contain_text("流程已保存为新版本")
        preview = page.locator(".flow-preview")
        expect(preview).to_contain_text("申请金额大于 ¥200,000.00 → 复审")
        expect(preview).to_contain_text("其余情况 → 签约")
        expect(preview).to_contain_text("抄送：经理")
        expect(page.locator("select[name=rop_0]")).to_have_value("gt")
        expect(page.locator("input[name=ramount_0]")).to_have_value("200,000.00")
        page.screenshot(path="/tmp/workflow_designer_1366.png", full_page=True)
        # a condition that loops back is refused on the page, nothing saved
        page.select_option("select[name=rfrom_2]", label="复审")
        page.select_option("select[name=rto_2]", label="进件")
        page.click("button:has-text('保存为新版本')")
        expect(page.locator("body")).to_contain_text("无限循环")
        page.screenshot(path="/tmp/workflow_designer_error_1366.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base_url}/console/lending/workflow")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path="/tmp/workflow_designer_390.png", full_page=True)
        assert hosts == {base_url.split("/")[2]}
    with unit_of_work() as session:
        active = definitions.active_definition(session)
        assert active.version == 2 and active.note == "大额复审"
        first = next(n for n in definitions.nodes_of(session, active.id) if n.code == "first_review")
        assert first.routes[0] == {"to": "second_review", "amount_op": "gt", "amount_fen": 20_000_000,
                                   "product_id": None}
        assert first.cc_roles == ["manager"]
