"""任务队列 in a real browser: a dead task is listed and sent again with one click."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import outbox, tasks
from core.db import unit_of_work
from core.outbox import TaskOutbox
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD, make_department, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture
def base_url(committed):
    require_chromium()
    with unit_of_work() as session:
        make_staff(session, role="admin", department=make_department(session, "总公司"), username="opsadmin",
                   display_name="运维管理员")
    runner = tasks.ManualRunner()  # the sends after commit are "lost": rows stay pending
    tasks.set_runner(runner)
    with unit_of_work() as session:
        outbox.enqueue(session, "bot.transfer_customers", 7)
        outbox.enqueue(session, "lending.loan_disbursed", 12)
        outbox.enqueue(session, "bot.push_notifications", countdown=60)
    ids = [entry.outbox_id for entry in runner.sent]
    outbox.record_failure(ids[0], "bot.transfer_customers", (7,), {},
                          "ExternalServiceError: 企业微信接口返回 40003 invalid userid " + "x" * 300, 6)
    outbox.record_failure(ids[1], "lending.loan_disbursed", (12,), {}, "OperationalError: server closed", 6)
    with live_server() as url:
        yield url


def test_dead_task_is_sent_again_from_the_console(base_url, committed):
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", "opsadmin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/console/outbox")
        expect(page.locator("h1")).to_have_text("任务队列")
        expect(page.locator("tbody tr")).to_have_count(2)
        page.set_viewport_size({"width": 1366, "height": 900})
        page.screenshot(path="/tmp/outbox-1366.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path="/tmp/outbox-390.png", full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})

        page.locator("tbody tr", has_text="放款事件").get_by_role("button", name="重新发送").click()
        expect(page.locator(".notice")).to_contain_text("已重新发送")
        expect(page.locator("tbody tr")).to_have_count(2)  # the pending tab: the retried row and the scheduled one
        page.screenshot(path="/tmp/outbox-pending-1366.png", full_page=True)
    with committed() as s:
        statuses = dict(s.execute(select(TaskOutbox.name, TaskOutbox.status)).all())
    assert statuses == {"bot.transfer_customers": "dead", "lending.loan_disbursed": "pending",
                        "bot.push_notifications": "pending"}
