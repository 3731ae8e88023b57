"""The chat sidebar's server side: the agentConfig signature, the jsapi ticket cache, WeCom OAuth into the
page, and the customer card and quick actions over real HTTP (the WeCom simulator plays WeCom)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from bot import jsapi
from bot.gateway import Gateway
from bot.models import GroupChat, GroupChatMember
from core import clock
from crm.models import FollowUp, WorkTask
from crm.scope import Viewer
from lending.models import Application
from tests.factories import make_customer, make_org, make_staff
from tests.lending_product_factories import make_product


def test_agent_config_signature_matches_the_published_js_sdk_vector():
    # The JS-SDK documentation's worked example (sha1 over the four keys in this order, values raw).
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    assert jsapi.signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value") \
        == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    # the #fragment is not part of the signed URL
    assert jsapi.signature(ticket, "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com?params=value#x") \
        == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_the_jsapi_ticket_is_fetched_once_and_shared_like_the_access_token(session, wecom_server):
    first = Gateway(sleep=lambda s: None).agent_jsapi_ticket()
    again = Gateway(sleep=lambda s: None).agent_jsapi_ticket()  # another process would find it in the cache
    assert first == again and first.startswith("simticket")
    assert len(wecom_server.calls("ticket/get")) == 1
    assert wecom_server.calls("ticket/get")[0]["query"]["type"] == "agent_config"
    wecom_server.advance(seconds=7200 - 60)  # inside the refresh margin: a new one is fetched
    clock_shift = timedelta(seconds=7200 - 60)
    with clock.frozen(clock.now() + clock_shift):
        assert Gateway(sleep=lambda s: None).agent_jsapi_ticket() != first
    assert len(wecom_server.calls("ticket/get")) == 2


@pytest.fixture
def world(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"], data_scope="own", wecom_userid="sb_sales")
    other = make_staff(session, department=org["team_a"], data_scope="own", wecom_userid="sb_other")
    mine = make_customer(session, owner=sales, name="王小二", phone="13900001111", wecom_external_userid="wm_sb_mine")
    theirs = make_customer(session, owner=other, name="赵六", wecom_external_userid="wm_sb_theirs")
    product = make_product(session, name="信用贷测试")
    from crm import tags

    group = tags.create_group(session, None, "意向")
    tag = tags.create_tag(session, None, group.id, "高意向")
    session.flush()
    return {"sales": sales, "other": other, "mine": mine, "theirs": theirs, "product": product, "tag": tag}


def _login(wecom_server, userid: str) -> tuple[httpx.Client, str]:
    """Open the sidebar as WeCom would: OAuth through the simulator, then the page with its API token."""
    http = httpx.Client(base_url=wecom_server.base_url, timeout=10, follow_redirects=False)
    first = http.get("/wecom/sidebar/")
    assert first.status_code == 302
    assert first.headers["location"].startswith("/_wecom_sim/connect/oauth2/authorize?")
    assert "scope=snsapi_base" in first.headers["location"] and "agentid=" in first.headers["location"]
    http.cookies.set("wecom_sim_userid", userid, path="/_wecom_sim")
    back = http.get(first.headers["location"].split("#")[0])
    assert back.status_code == 302 and "code=" in back.headers["location"]
    logged = http.get(back.headers["location"].replace(wecom_server.base_url, ""))
    assert logged.status_code == 303 and "scrm_sidebar" in logged.headers.get("set-cookie", "")
    page = http.get("/wecom/sidebar/")
    assert page.status_code == 200
    assert "x-frame-options" not in page.headers and "frame-ancestors 'self' https://*.work.weixin.qq.com" in \
        page.headers["content-security-policy"]
    token = re.search(r'data-token="([^"]+)"', page.text).group(1)
    http.headers["X-Sidebar-Token"] = token
    return http, page.text


def test_oauth_opens_the_page_for_the_member_and_a_forged_code_is_refused(session, wecom_server, world):
    http, page = _login(wecom_server, "sb_sales")
    assert world["sales"].display_name in page
    stranger = httpx.Client(base_url=wecom_server.base_url, timeout=10)
    assert stranger.get("/wecom/sidebar/?code=oc-forged").status_code == 403


def test_a_wecom_user_without_a_staff_record_is_refused(session, wecom_server, world):
    http = httpx.Client(base_url=wecom_server.base_url, timeout=10, follow_redirects=True)
    http.cookies.set("wecom_sim_userid", "nobody", path="/_wecom_sim")
    response = http.get("/wecom/sidebar/")
    assert response.status_code == 403 and "尚未绑定" in response.text


def test_the_api_needs_the_page_token(session, wecom_server, world):
    http = httpx.Client(base_url=wecom_server.base_url, timeout=10)
    response = http.get("/wecom/sidebar/api/contact/wm_sb_mine")
    assert response.status_code == 401 and response.json()["code"] == "sidebar_session_expired"


def test_agent_config_is_signed_with_the_ticket_and_the_simulated_client_accepts_it(session, wecom_server, world):
    http, _ = _login(wecom_server, "sb_sales")
    url = wecom_server.base_url + "/wecom/sidebar/"
    config = http.get("/wecom/sidebar/api/agent-config", params={"url": url}).json()
    assert config["corpId"] and config["agentId"]
    check = httpx.post(wecom_server.sim_url + "/_admin/jsapi/verify", json={**config, "url": url}).json()
    assert check["errcode"] == 0
    tampered = httpx.post(wecom_server.sim_url + "/_admin/jsapi/verify",
                          json={**config, "url": url + "?other=1"}).json()
    assert tampered["errcode"] == 40093
    refused = http.get("/wecom/sidebar/api/agent-config", params={"url": "https://evil.example/wecom/sidebar/"})
    assert refused.status_code == 422


def test_the_card_shows_the_own_customer_and_hides_another_salespersons(session, wecom_server, world):
    http, _ = _login(wecom_server, "sb_sales")
    card = http.get("/wecom/sidebar/api/contact/wm_sb_mine").json()
    assert card["name"] == "王小二" and card["phone_masked"] == "139****1111" and card["mine"] is True
    assert "13900001111" not in str(card)
    assert card["owner"] == world["sales"].display_name and card["stage"] == "新线索"
    hidden = http.get("/wecom/sidebar/api/contact/wm_sb_theirs")
    assert hidden.status_code == 404 and hidden.json()["code"] == "sidebar_contact_not_customer"
    assert http.get(f"/wecom/sidebar/api/customers/{world['theirs'].id}").status_code == 404


def test_quick_actions_tag_follow_up_reminder_and_application(session, wecom_server, world):
    http, _ = _login(wecom_server, "sb_sales")
    cid = world["mine"].id
    card = http.post(f"/wecom/sidebar/api/customers/{cid}/tags", json={"tag_id": world["tag"].id}).json()
    assert [t["name"] for t in card["tags"]] == ["高意向"]
    card = http.post(f"/wecom/sidebar/api/customers/{cid}/followups", json={"content": "微信沟通了额度"}).json()
    assert card["followups"][0]["content"] == "微信沟通了额度" and card["followups"][0]["kind"] == "微信"
    assert session.scalar(select(FollowUp).where(FollowUp.customer_id == cid)).staff_id == world["sales"].id
    due = (clock.now() + timedelta(days=1)).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%dT%H:%M")
    reminder = http.post(f"/wecom/sidebar/api/customers/{cid}/reminders", json={"title": "回访资料", "due_at": due})
    assert reminder.status_code == 201
    task = session.scalar(select(WorkTask).where(WorkTask.customer_id == cid))
    assert task.title == "回访资料" and task.staff_id == world["sales"].id
    past = http.post(f"/wecom/sidebar/api/customers/{cid}/reminders", json={"title": "x", "due_at": "2020-01-01T09:00"})
    assert past.status_code == 422 and "晚于现在" in past.json()["message"]
    version_terms = http.get("/wecom/sidebar/api/choices").json()["products"][0]["terms"]
    started = http.post(f"/wecom/sidebar/api/customers/{cid}/applications", json={
        "product_id": world["product"].id, "amount": "50000", "term_months": version_terms[0],
        "idempotency_key": "sb-test-1"})
    assert started.status_code == 201, started.text
    app = session.get(Application, started.json()["id"])
    assert (app.channel, app.requested_amount, app.created_by_staff_id) == ("wecom", 5_000_000, world["sales"].id)
    assert started.json()["card"]["applications"][0]["product"] == "信用贷测试"
    again = http.post(f"/wecom/sidebar/api/customers/{cid}/applications", json={
        "product_id": world["product"].id, "amount": "50000", "term_months": version_terms[0],
        "idempotency_key": "sb-test-1"})
    assert again.json()["id"] == app.id  # a double tap starts nothing new
    bad = http.post(f"/wecom/sidebar/api/customers/{cid}/applications", json={
        "product_id": world["product"].id, "amount": "abc", "term_months": 12})
    assert bad.status_code == 422 and "金额" in bad.json()["message"]


def test_tagging_another_salespersons_customer_is_refused_and_changes_nothing(session, wecom_server, world):
    http, _ = _login(wecom_server, "sb_sales")
    response = http.post(f"/wecom/sidebar/api/customers/{world['theirs'].id}/tags", json={"tag_id": world["tag"].id})
    assert response.status_code == 404
    from crm import tags

    assert tags.tags_of(session, world["theirs"].id) == []


def test_share_messages_for_a_product_card_and_the_mini_program(session, wecom_server, world):
    http, _ = _login(wecom_server, "sb_sales")
    cid, pid = world["mine"].id, world["product"].id
    news = http.post(f"/wecom/sidebar/api/customers/{cid}/share", json={"kind": "news", "product_id": pid}).json()
    assert news["msgtype"] == "news" and news["news"]["title"] == "信用贷测试"
    product_page = httpx.get(news["news"]["link"])
    assert product_page.status_code == 200 and "信用贷测试" in product_page.text
    mp = http.post(f"/wecom/sidebar/api/customers/{cid}/share", json={"kind": "miniprogram", "product_id": pid}).json()
    assert mp["msgtype"] == "miniprogram" and f"product={pid}" in mp["miniprogram"]["page"]
    assert f"staff={world['sales'].id}" in mp["miniprogram"]["page"]


def test_a_group_lists_the_customers_the_viewer_may_see(session, wecom_server, world):
    now = clock.now()
    session.add(GroupChat(chat_id="wr_sb_group", name="贷款咨询群", owner_userid="sb_sales",
                          owner_staff_id=world["sales"].id, created_at=now, updated_at=now))
    session.flush()
    for ext, customer in (("wm_sb_mine", world["mine"]), ("wm_sb_theirs", world["theirs"])):
        session.add(GroupChatMember(chat_id="wr_sb_group", member_id=ext, member_type=2, customer_id=customer.id,
                                    joined_at=now))
    session.flush()
    http, _ = _login(wecom_server, "sb_sales")
    group = http.get("/wecom/sidebar/api/chat/wr_sb_group").json()
    assert group["chat"]["name"] == "贷款咨询群" and group["external_members"] == 2
    assert [c["name"] for c in group["customers"]] == ["王小二"]
    assert http.get("/wecom/sidebar/api/chat/wr_unknown").status_code == 404


def test_viewer_scope_is_the_domains(session, world):
    # The card is built by the same scope rule the console uses (crm.customers.can_view).
    from bot import sidebar

    with pytest.raises(sidebar.ContactNotCustomer):
        sidebar.contact_card(session, Viewer.of(world["sales"]), "wm_sb_theirs")


def test_the_card_shows_product_matching_with_the_reasons(session, wecom_server, world):
    world["mine"].demand_amount, world["mine"].demand_term_months = 2_000_000, 12
    make_product(session, name="有房贷", property_required=True)
    session.flush()
    http, _ = _login(wecom_server, "sb_sales")
    matching = http.get("/wecom/sidebar/api/contact/wm_sb_mine").json()["matching"]
    rows = {r["name"]: r for r in matching["rows"]}
    assert matching["note"] == "需求 ¥20,000.00 · 12 个月"
    assert rows["信用贷测试"]["state"] == "ok" and "综合年化" in rows["信用贷测试"]["detail"]
    assert rows["有房贷"] == {"state": "needs", "label": "需补充资料", "name": "有房贷",
                             "detail": "待补充：房产情况（产品要求有房产）"}
