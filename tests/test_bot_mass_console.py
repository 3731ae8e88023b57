"""群发 / 客户群 / 企微标签同步 pages served by the bot: roles, CSRF, the flows through the forms."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from bot.models_mass import MassMessage, MassMessageRecipient
from core.settings import get_settings
from crm import auth_service, segments
from crm.models import Tag
from tests.factories import make_customer, make_staff


def login(committed, role: str, wecom_userid: str | None = None) -> tuple[httpx.Client, str, int]:
    with committed() as s:
        staff = make_staff(s, role=role, wecom_userid=wecom_userid, display_name=f"{role}员工")
        token, row = auth_service.open_session(s, staff)
        csrf, staff_id = row.csrf_token, staff.id
        s.commit()
    client = httpx.Client(timeout=20, follow_redirects=False)
    client.cookies.set(get_settings().session_cookie_name, token)
    return client, csrf, staff_id


def test_anonymous_visitors_are_sent_to_login(committed, wecom_server):
    for page in ("/wecom/mass", "/wecom/groups", "/wecom/tags"):
        response = httpx.get(wecom_server.base_url + page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/console/login"


def test_sales_may_not_open_the_pages(committed, wecom_server):
    client, _, _ = login(committed, "sales")
    for page in ("/wecom/mass", "/wecom/groups", "/wecom/tags"):
        assert client.get(wecom_server.base_url + page).status_code == 403


def test_a_form_without_the_csrf_token_is_refused(committed, wecom_server):
    client, _, _ = login(committed, "admin")
    response = client.post(wecom_server.base_url + "/wecom/tags/pull", data={})
    assert response.status_code == 403
    assert wecom_server.calls("get_corp_tag_list") == []


def test_tag_pull_button_mirrors_and_shows_the_result(committed, wecom_server):
    client, csrf, _ = login(committed, "manager")
    response = client.post(wecom_server.base_url + "/wecom/tags/pull", data={"csrf_token": csrf})
    assert response.status_code == 303 and "notice" in response.headers["location"]
    with committed() as s:
        assert s.scalar(select(Tag.name).where(Tag.wecom_tag_id == "etsimtag_ad")) == "广告投放"
    page = client.get(wecom_server.base_url + "/wecom/tags").text
    assert "广告投放" in page and "管理后台创建，只读" in page


def test_mass_message_from_draft_to_send_through_the_pages(committed, wecom_server, task_runner):
    client, csrf, _ = login(committed, "admin")  # data scope: all customers
    with committed() as s:
        owner = make_staff(s, wecom_userid="sales9", display_name="销售九")
        make_customer(s, owner=owner, region="杭州", wecom_external_userid="wm_hz1", name="周先生")
        segment = segments.create_segment(s, None, "杭州客户", {"op": "and", "rules": [
            {"field": "region", "cmp": "equals", "value": "杭州"}]})
        segment_id = segment.id
        s.commit()
    wecom_server.admin("contact", {"userid": "sales9", "external_userid": "wm_hz1", "name": "周先生", "state": "",
                                   "unionid": "", "welcome": False})
    response = client.post(wecom_server.base_url + "/wecom/mass", data={
        "csrf_token": csrf, "title": "杭州活动", "segment_id": str(segment_id), "text": "周末到店有礼"})
    assert response.status_code == 303
    detail = response.headers["location"].split("?")[0]
    page = client.get(wecom_server.base_url + detail).text
    assert "将发送" in page and "sales9：1 位客户" in page
    response = client.post(wecom_server.base_url + detail + "/send", data={"csrf_token": csrf})
    assert response.status_code == 303 and "error" not in response.headers["location"]
    task_runner.drain()
    assert wecom_server.calls("add_msg_template")[-1]["body"]["sender"] == "sales9"
    with committed() as s:
        message = s.scalar(select(MassMessage))
        assert message.status == "sent"
        assert s.scalar(select(MassMessageRecipient.status)) == "pending"
    page = client.get(wecom_server.base_url + detail).text
    assert "周先生" in page and "未确认" in page


def test_nav_links_to_the_bot_pages():
    from admin.nav import nav_for

    urls = {item.url for item in nav_for("manager")}
    assert {"/wecom/mass", "/wecom/groups", "/wecom/tags"} <= urls
    assert "/wecom/groups" not in {item.url for item in nav_for("sales")}
