"""The simulator's driver: its callbacks are accepted by /wecom/callback and land in the inbox once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot import inbox
from bot.models import WecomInbox


@pytest.fixture
def driver(wecom_server):
    d = wecom_server.driver()
    yield d
    d.close()


def rows(session):
    return session.scalars(select(WecomInbox).order_by(WecomInbox.id)).all()


def test_add_external_contact_lands_in_the_inbox_once_and_goes_urgent(session, driver, task_runner):
    result = driver.add_external_contact("sales1", name="王先生", state="ch_7")
    assert result.accepted
    stored = rows(session)
    assert [r.kind for r in stored] == ["event:change_external_contact:add_external_contact"]
    fields = inbox.payload(stored[0])
    assert fields["UserID"] == "sales1" and fields["State"] == "ch_7"
    assert fields["ExternalUserID"] == result.external_userid and fields["WelcomeCode"] == result.welcome_code
    assert [name for name, _, _ in task_runner.sent] == [inbox.PROCESS_URGENT_TASK]


def test_a_redelivered_driver_event_is_stored_once(session, driver, task_runner):
    result = driver.add_external_contact("sales1")
    again = driver.send(result.fields)  # WeCom re-delivers: fresh nonce and signature, same event
    assert again.accepted
    assert session.scalar(select(func.count()).select_from(WecomInbox)) == 1
    assert len(task_runner.sent) == 1


def test_driver_events_are_processed_exactly_once(session, driver, task_runner):
    driver.add_external_contact("sales1")
    task_runner.drain()
    task_runner.drain()
    assert [r.status for r in rows(session)] == ["done"]


def test_every_driver_event_reaches_the_inbox_with_its_kind(session, driver, wecom_server):
    ext = driver.add_external_contact("s1", name="甲").external_userid
    driver.add_half_external_contact("s2", name="乙")
    driver.edit_external_contact("s1", ext, remark="甲总")
    chat_id = driver.create_group_chat("s1", "客户群").chat_id
    driver.join_group_chat(chat_id, ext)
    driver.leave_group_chat(chat_id, ext)
    driver.tag_event("create", name="新标签")
    driver.tag_event("shuffle")
    driver.transfer_fail("s3", ext, "customer_limit_exceed")
    driver.text_message("s1", "查 13812345678")
    driver.customer_deletes_staff("s1", ext)
    ext2 = driver.add_external_contact("s2").external_userid
    driver.staff_deletes_customer("s2", ext2)
    driver.staff_left("s2")
    kinds = [r.kind for r in rows(session)]
    assert kinds == [
        "event:change_external_contact:add_external_contact",
        "event:change_external_contact:add_half_external_contact",
        "event:change_external_contact:edit_external_contact",
        "event:change_external_chat:create",
        "event:change_external_chat:update",
        "event:change_external_chat:update",
        "event:change_external_tag:create",
        "event:change_external_tag:shuffle",
        "event:change_external_contact:transfer_fail",
        "text",
        "event:change_external_contact:del_follow_user",
        "event:change_external_contact:add_external_contact",
        "event:change_external_contact:del_external_contact",
        "event:change_contact:delete_user",
    ]
    by_kind = {r.kind: inbox.payload(r) for r in rows(session)}
    assert by_kind["event:change_external_contact:transfer_fail"]["FailReason"] == "customer_limit_exceed"
    assert by_kind["text"]["Content"] == "查 13812345678"
    assert "13812345678" not in "".join(r.summary for r in rows(session))
    state = wecom_server.state()
    assert state["contacts"][ext]["follow"] == {} and "s2" in state["departed"]


def test_simulator_is_mounted_only_without_real_credentials(session, monkeypatch):
    from core.settings import reset_settings_cache
    from core.web import create_app

    assert TestClient(create_app(start_tasks=False)).get("/_wecom_sim/console").status_code in (200, 303)
    monkeypatch.setenv("SCRM_WECOM_SECRET", "real-secret")
    monkeypatch.setenv("SCRM_WECOM_CORP_ID", "ww_real")
    monkeypatch.setenv("SCRM_WECOM_API_BASE", "")
    reset_settings_cache()
    try:
        assert TestClient(create_app(start_tasks=False)).get("/_wecom_sim/console").status_code == 404
    finally:
        monkeypatch.undo()
        reset_settings_cache()
