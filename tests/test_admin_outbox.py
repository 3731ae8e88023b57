"""任务队列: admins see waiting and dead outbox rows with counts, and send a dead one again (console and API)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core import outbox
from core.outbox import TaskOutbox
from crm import auth_service
from tests.factories import make_org, make_staff
from tests.test_admin_support import audit_count, bearer, console_client, log_in


@pytest.fixture
def admin(session):
    org = make_org(session)
    return make_staff(session, role="admin", department=org["company"], username="root")


def _dead_row(session, task_runner, marker="x1"):
    outbox.enqueue(session, "bot.transfer_customers", 42, marker=marker)
    session.commit()
    (entry,) = task_runner.sent
    task_runner.sent.clear()
    outbox.record_failure(entry.outbox_id, "bot.transfer_customers", (42,), {"marker": marker},
                          "ExternalServiceError: 企业微信接口返回 40003", 6)
    row = session.get(TaskOutbox, entry.outbox_id)
    session.refresh(row)
    assert row.status == "dead"
    return row


def test_only_admins_open_the_task_queue(session, admin):
    manager = make_staff(session, role="manager", department=admin.department)
    c = console_client()
    log_in(c, session, manager)
    assert c.get("/console/outbox").status_code == 403
    c = console_client()
    log_in(c, session, admin)
    page = c.get("/console/outbox")
    assert page.status_code == 200 and "没有失败的任务" in page.text
    assert 'href="/console/outbox"' in page.text  # in the navigation


def test_a_dead_row_is_listed_and_retry_sends_it_again(session, admin, task_runner):
    row = _dead_row(session, task_runner)
    c = console_client()
    csrf = log_in(c, session, admin)
    page = c.get("/console/outbox").text
    assert "企微客户转接" in page and "40003" in page and f"/console/outbox/{row.id}/retry" in page
    assert re.search(r"失败（需处理）</span><strong>1</strong>", page)

    response = c.post(f"/console/outbox/{row.id}/retry", data={"csrf_token": csrf})
    assert response.status_code == 303 and "done=retried" in response.headers["location"]
    session.refresh(row)
    assert (row.status, row.attempts) == ("pending", 0) and audit_count(session, "outbox.retry") == 1

    from core import outbox_relay

    assert outbox_relay.relay_once() == 1  # the relay sends it on its next round
    assert task_runner.sent == [("bot.transfer_customers", (42,), {"marker": "x1"})]
    page = c.get("/console/outbox").text
    assert "没有失败的任务" in page


def test_retry_needs_the_csrf_token(session, admin, task_runner):
    row = _dead_row(session, task_runner)
    c = console_client()
    log_in(c, session, admin)
    assert c.post(f"/console/outbox/{row.id}/retry", data={}).status_code in (400, 403)
    session.refresh(row)
    assert row.status == "dead"


def test_retry_all_dead(session, admin, task_runner):
    _dead_row(session, task_runner, "a")
    _dead_row(session, task_runner, "b")
    c = console_client()
    csrf = log_in(c, session, admin)
    assert c.post("/console/outbox/retry-dead", data={"csrf_token": csrf}).status_code == 303
    statuses = session.scalars(select(TaskOutbox.status).where(TaskOutbox.name == "bot.transfer_customers")).all()
    assert statuses == ["pending", "pending"]


def test_staff_api_lists_counts_and_retries(session, admin, task_runner):
    row = _dead_row(session, task_runner)
    c = console_client()
    headers = bearer(auth_service.issue_api_token(session, admin.id, "运维")[0])
    counts = c.get("/api/v1/outbox/counts", headers=headers).json()
    assert counts["dead"] == 1
    (listed,) = c.get("/api/v1/outbox", params={"status": "dead"}, headers=headers).json()
    assert listed["id"] == row.id and listed["label"] == "企微客户转接" and "40003" in listed["last_error"]
    retried = c.post(f"/api/v1/outbox/{row.id}/retry", headers=headers)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert c.post("/api/v1/outbox/999999/retry", headers=headers).status_code == 404
    sales = make_staff(session, department=admin.department)
    refused = c.get("/api/v1/outbox/counts", headers=bearer(auth_service.issue_api_token(session, sales.id, "x")[0]))
    assert refused.status_code == 403
