"""企微模拟器 console page: admins and managers trigger WeCom events and watch the inbox."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from bot.models import WecomInbox
from core.settings import get_settings
from crm import auth_service
from tests.factories import make_staff

PAGE = "/_wecom_sim/console"


def login(committed, role: str, wecom_userid: str | None = None) -> tuple[httpx.Client, str]:
    with committed() as s:
        staff = make_staff(s, role=role, wecom_userid=wecom_userid, display_name=f"{role}员工")
        token, row = auth_service.open_session(s, staff)
        csrf = row.csrf_token
        s.commit()
    client = httpx.Client(timeout=20, follow_redirects=False)
    client.cookies.set(get_settings().session_cookie_name, token)
    return client, csrf


def test_anonymous_visitors_are_sent_to_the_login_page(committed, wecom_server):
    response = httpx.get(wecom_server.base_url + PAGE)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"


def test_salespeople_may_not_open_the_simulator(committed, wecom_server):
    client, _ = login(committed, "sales")
    response = client.get(wecom_server.base_url + PAGE)
    assert response.status_code == 403 and "管理员和经理" in response.text


def test_manager_sees_the_page_with_staff_picker(committed, wecom_server):
    client, csrf = login(committed, "manager", "zhangsan")
    response = client.get(wecom_server.base_url + PAGE)
    assert response.status_code == 200
    assert "企微模拟器" in response.text and 'value="zhangsan"' in response.text
    assert f'value="{csrf}"' in response.text
    assert "/console/static/console.css" in response.text


def test_a_form_without_the_csrf_token_is_refused(committed, wecom_server):
    client, _ = login(committed, "admin", "lisi")
    response = client.post(wecom_server.base_url + PAGE + "/event",
                           data={"event": "add_external_contact", "user_id": "lisi", "csrf_token": "forged"})
    assert response.status_code == 403
    with committed() as s:
        assert s.scalars(select(WecomInbox)).all() == []


def test_triggering_an_event_lands_it_in_the_inbox_and_the_page_shows_it(committed, wecom_server):
    client, csrf = login(committed, "admin", "wangwu")
    response = client.post(wecom_server.base_url + PAGE + "/event", data={
        "csrf_token": csrf, "event": "add_external_contact", "user_id": "wangwu", "name": "赵女士",
        "state": "ch_console"})
    assert response.status_code == 303 and "notice=" in response.headers["location"]
    with committed() as s:
        kinds = [r.kind for r in s.scalars(select(WecomInbox))]
    assert kinds == ["event:change_external_contact:add_external_contact"]
    page = client.get(wecom_server.base_url + response.headers["location"]).text
    assert "CRM 已接收" in page and "add_external_contact" in page
    assert re.search(r"wmsim[0-9a-f]{20}", page)  # the simulator's contact list shows the new customer


def test_advancing_simulated_time_from_the_page(committed, wecom_server):
    client, csrf = login(committed, "admin")
    client.post(wecom_server.base_url + PAGE + "/event", data={"csrf_token": csrf, "event": "advance", "hours": "25"})
    assert wecom_server.state()["offset"] == pytest.approx(25 * 3600)


def test_nav_shows_the_simulator_to_managers_only_while_simulated(monkeypatch):
    from admin import nav
    from core.settings import reset_settings_cache

    assert "wecom_sim" in [i.key for i in nav.nav_for("manager")]
    assert "wecom_sim" not in [i.key for i in nav.nav_for("sales")]
    monkeypatch.setenv("SCRM_WECOM_SECRET", "real")
    reset_settings_cache()
    try:
        assert "wecom_sim" not in [i.key for i in nav.nav_for("manager")]
    finally:
        monkeypatch.undo()
        reset_settings_cache()


def test_the_page_reads_as_a_chat_transcript_in_chinese_with_a_channel_code_picker(committed, wecom_server, task_runner):
    from bot.models_channel import ChannelCode
    from core import clock

    client, csrf = login(committed, "admin", "liuliu")
    with committed() as s:
        now = clock.now()
        s.add(ChannelCode(name="地推-徐汇", state="dt_xh", channel="地推", code_type=1, staff_ids=[], backup_staff_ids=[],
                          active_userids=["liuliu"], tag_ids=[], skip_verify=True, config_id="cfg-x", active=True,
                          created_at=now, updated_at=now))
        s.commit()
    page = client.get(wecom_server.base_url + PAGE).text
    assert '<option value="dt_xh">地推-徐汇（地推）</option>' in page and 'name="state" maxlength' not in page
    client.post(wecom_server.base_url + PAGE + "/event",
                data={"csrf_token": csrf, "event": "text", "user_id": "liuliu", "content": "帮助"})
    task_runner.drain()  # the callback's processing, whose reply leaves as an app message
    page = client.get(wecom_server.base_url + PAGE).text
    assert "admin员工 → 应用" in page and '<span class="sim-text">帮助</span>' in page
    assert "应用 → admin员工" in page
    assert "\\u" not in page  # request bodies show Chinese, not escapes
