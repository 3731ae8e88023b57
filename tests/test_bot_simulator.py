"""The WeCom simulator enforces WeCom's rules, so our code is forced to handle them."""

from __future__ import annotations

import pytest

from bot.gateway import Gateway
from bot.token_cache import DbTokenCache
from bot.wecom_errors import WecomApiError


@pytest.fixture
def g(session, wecom_server) -> Gateway:
    return Gateway(sleep=lambda s: None, cache=DbTokenCache())


@pytest.fixture
def driver(wecom_server):
    d = wecom_server.driver()
    yield d
    d.close()


def customers(driver, user_id: str, n: int) -> list[str]:
    return [driver.add_external_contact(user_id, name=f"客户{i}").external_userid for i in range(n)]


# --- tokens ---------------------------------------------------------------------------------------
def test_calls_without_or_with_unknown_tokens_are_refused(wecom_server):
    import httpx

    url = wecom_server.sim_url + "/cgi-bin/externalcontact/get_corp_tag_list"
    assert httpx.post(url, json={}).json()["errcode"] == 41001
    assert httpx.post(url + "?access_token=forged", json={}).json()["errcode"] == 40014


def test_gettoken_issues_7200_second_tokens(wecom_server):
    import httpx

    from bot import config

    answer = httpx.get(wecom_server.sim_url + "/cgi-bin/gettoken",
                       params={"corpid": config.corp_id(), "corpsecret": "s"}).json()
    assert answer["errcode"] == 0 and answer["expires_in"] == 7200
    wecom_server.advance(seconds=7201)
    url = wecom_server.sim_url + "/cgi-bin/externalcontact/get_corp_tag_list?access_token=" + answer["access_token"]
    assert httpx.post(url, json={}).json()["errcode"] == 42001


# --- transfers --------------------------------------------------------------------------------------
def test_transfer_of_more_than_100_customers_in_one_call_is_refused(g, driver, wecom_server):
    with pytest.raises(WecomApiError) as info:
        g.transfer_customer("sales1", "sales2", [f"wm{i}" for i in range(101)])
    assert info.value.errcode == 40058
    assert wecom_server.state()["transfers"] == []


def test_in_service_transfer_waits_24_hours_then_the_takeover_member_follows(g, driver, wecom_server):
    ext = customers(driver, "sales1", 1)[0]
    started = g.transfer_customer("sales1", "sales2", [ext], transfer_success_msg="您好，我是新的顾问")
    assert started["customer"] == [{"external_userid": ext, "errcode": 0}]
    assert g.transfer_result("sales1", "sales2")["customer"][0]["status"] == 2
    wecom_server.advance(hours=23)
    assert g.transfer_result("sales1", "sales2")["customer"][0]["status"] == 2
    wecom_server.advance(hours=1, seconds=1)
    assert g.transfer_result("sales1", "sales2")["customer"][0]["status"] == 1
    follow = [f["userid"] for f in g.get_external_contact(ext)["follow_user"]]
    assert follow == ["sales2"]


def test_customer_can_be_transferred_at_most_twice_in_90_days(g, driver, wecom_server):
    ext = customers(driver, "a", 1)[0]
    assert g.transfer_customer("a", "b", [ext])["customer"][0]["errcode"] == 0
    wecom_server.advance(hours=25)
    assert g.transfer_customer("b", "c", [ext])["customer"][0]["errcode"] == 0
    wecom_server.advance(hours=25)
    assert g.transfer_customer("c", "a", [ext])["customer"][0]["errcode"] == 40128
    wecom_server.advance(days=89)
    assert g.transfer_customer("c", "a", [ext])["customer"][0]["errcode"] == 0


def test_a_customer_in_transfer_cannot_be_transferred_again(g, driver, wecom_server):
    ext = customers(driver, "a", 1)[0]
    g.transfer_customer("a", "b", [ext])
    assert g.transfer_customer("a", "c", [ext])["customer"][0]["errcode"] == 40129


def test_transfer_of_a_non_contact_fails_per_customer(g, driver, wecom_server):
    ext = customers(driver, "a", 1)[0]
    result = g.transfer_customer("a", "b", [ext, "wm_stranger"])
    assert [c["errcode"] for c in result["customer"]] == [0, 84061]


@pytest.mark.parametrize(("outcome", "status"), [("refuse", 3), ("limit", 4)])
def test_refused_or_limited_transfers_report_their_status(g, driver, wecom_server, outcome, status):
    ext = customers(driver, "a", 1)[0]
    wecom_server.transfer_outcome(ext, outcome)
    g.transfer_customer("a", "b", [ext])
    wecom_server.advance(hours=30)
    assert g.transfer_result("a", "b")["customer"][0]["status"] == status
    assert [f["userid"] for f in g.get_external_contact(ext)["follow_user"]] == ["a"]


def test_transfer_results_are_cursor_paged(g, driver, wecom_server):
    exts = customers(driver, "a", 5)
    g.transfer_customer("a", "b", exts)
    wecom_server.configure(page_size=2)
    seen, cursor, pages = [], "", 0
    while True:
        answer = g.transfer_result("a", "b", cursor)
        seen += [c["external_userid"] for c in answer["customer"]]
        pages += 1
        cursor = answer["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(exts) and pages == 3


def test_resigned_transfer_needs_a_departed_member_and_lists_unassigned(g, driver, wecom_server):
    exts = customers(driver, "leaver", 2)
    with pytest.raises(WecomApiError):
        g.resigned_transfer_customer("leaver", "heir", exts)
    assert driver.staff_left("leaver").accepted
    assert sorted(i["external_userid"] for i in g.get_unassigned_list()["info"]) == sorted(exts)
    assert [c["errcode"] for c in g.resigned_transfer_customer("leaver", "heir", exts)["customer"]] == [0, 0]
    assert g.get_unassigned_list()["info"] == []
    wecom_server.advance(hours=24, seconds=1)
    assert {c["status"] for c in g.resigned_transfer_result("leaver", "heir")["customer"]} == {1}


# --- welcome messages --------------------------------------------------------------------------------
def test_welcome_code_works_once_within_20_seconds(g, driver, wecom_server):
    code = driver.add_external_contact("sales1", name="客户乙", state="ch_1").welcome_code
    assert code
    assert g.send_welcome_msg(code, text="您好，我是您的专属顾问")["errcode"] == 0
    with pytest.raises(WecomApiError) as info:
        g.send_welcome_msg(code, text="再发一次")
    assert info.value.errcode == 41051


def test_welcome_code_expires_after_20_seconds(g, driver, wecom_server):
    code = driver.add_external_contact("sales1").welcome_code
    wecom_server.advance(seconds=21)
    with pytest.raises(WecomApiError) as info:
        g.send_welcome_msg(code, text="您好")
    assert info.value.errcode == 41051 and "20 秒" in info.value.message


# --- channel codes and group join codes ----------------------------------------------------------------
def test_contact_way_state_is_at_most_30_characters(g, wecom_server):
    with pytest.raises(WecomApiError):
        g.add_contact_way(type=1, scene=2, users=["sales1"], state="x" * 31)
    created = g.add_contact_way(type=1, scene=2, users=["sales1"], state="x" * 30)
    assert created["config_id"] and created["qr_code"]
    assert g.update_contact_way(created["config_id"], state="ch_2")["errcode"] == 0
    assert g.del_contact_way(created["config_id"])["errcode"] == 0
    with pytest.raises(WecomApiError):
        g.del_contact_way(created["config_id"])


def test_contact_ways_and_join_ways_share_one_quota(g, driver, wecom_server):
    chat_id = driver.create_group_chat("sales1").chat_id
    wecom_server.configure(way_quota=2)
    g.add_contact_way(type=1, scene=2, users=["sales1"])
    g.add_join_way([chat_id], state="grp")
    with pytest.raises(WecomApiError):
        g.add_contact_way(type=1, scene=2, users=["sales1"])


def test_join_way_takes_at_most_5_chats(g, driver, wecom_server):
    chats = [driver.create_group_chat("sales1", f"群{i}").chat_id for i in range(6)]
    with pytest.raises(WecomApiError):
        g.add_join_way(chats)
    config_id = g.add_join_way(chats[:5], state="g5")["config_id"]
    assert g.get_join_way(config_id)["join_way"]["chat_id_list"] == chats[:5]
    assert g.del_join_way(config_id)["errcode"] == 0


# --- group chats -------------------------------------------------------------------------------------------
def test_groupchat_list_filters_by_status_and_pages_with_a_cursor(g, driver, wecom_server):
    mine = [driver.create_group_chat("stay", f"群{i}").chat_id for i in range(3)]
    orphan = driver.create_group_chat("leaver", "离职员工的群").chat_id
    driver.staff_left("leaver")
    assert [c["chat_id"] for c in g.groupchat_list(status_filter=1)["group_chat_list"]] == [orphan]
    first = g.groupchat_list(limit=2)
    second = g.groupchat_list(limit=2, cursor=first["next_cursor"])
    assert [c["chat_id"] for c in first["group_chat_list"] + second["group_chat_list"]] == mine + [orphan]
    assert second["next_cursor"] == ""
    with pytest.raises(WecomApiError):
        g.groupchat_list(limit=1001)


def test_group_chat_transfers_follow_the_resigned_rule(g, driver, wecom_server):
    active = driver.create_group_chat("stay").chat_id
    orphan = driver.create_group_chat("leaver").chat_id
    driver.staff_left("leaver")
    failed = g.groupchat_transfer([active, orphan], "heir")["failed_chat_list"]
    assert [(f["chat_id"], f["errcode"]) for f in failed] == [(active, 90500)]
    assert g.groupchat_get(orphan)["group_chat"]["owner"] == "heir"
    assert [c["status"] for c in g.groupchat_list(owner_userids=["heir"])["group_chat_list"]] == [3]
    assert g.groupchat_onjob_transfer([active], "heir")["failed_chat_list"] == []
    with pytest.raises(WecomApiError):
        g.groupchat_onjob_transfer([f"wr{i}" for i in range(101)], "heir")


def test_joining_and_leaving_a_chat_changes_its_members(g, driver, wecom_server):
    chat_id = driver.create_group_chat("sales1").chat_id
    ext = customers(driver, "sales1", 1)[0]
    assert driver.join_group_chat(chat_id, ext).extra["member_count"] == 2
    members = g.groupchat_get(chat_id, need_name=True)["group_chat"]["member_list"]
    assert [(m["userid"], m["type"]) for m in members] == [("sales1", 1), (ext, 2)]
    driver.leave_group_chat(chat_id, ext)
    assert len(g.groupchat_get(chat_id)["group_chat"]["member_list"]) == 1


# --- tags -----------------------------------------------------------------------------------------------
def test_app_may_edit_and_delete_only_its_own_tags(g, wecom_server):
    created = g.add_corp_tag(["高意向", "已面签"], group_name="意向")["tag_group"]
    mine = created["tag"][0]["id"]
    assert g.edit_corp_tag(mine, name="高意向客户")["errcode"] == 0
    with pytest.raises(WecomApiError) as info:
        g.edit_corp_tag("etsimtag_ad", name="改名")
    assert info.value.errcode == 60011
    with pytest.raises(WecomApiError):
        g.del_corp_tag(tag_ids=["etsimtag_ad"])
    assert g.del_corp_tag(tag_ids=[mine])["errcode"] == 0
    names = [t["name"] for grp in g.get_corp_tag_list()["tag_group"] for t in grp["tag"]]
    assert "高意向客户" not in names and "已面签" in names and "广告投放" in names


def test_corp_tags_are_capped(g, wecom_server):
    wecom_server.configure(tag_cap=4)  # two seeded console tags + two more
    g.add_corp_tag(["甲", "乙"], group_name="测试")
    with pytest.raises(WecomApiError):
        g.add_corp_tag(["丙"], group_name="测试")


def test_duplicate_tag_name_in_a_group_is_refused(g, wecom_server):
    g.add_corp_tag(["甲"], group_name="测试")
    with pytest.raises(WecomApiError) as info:
        g.add_corp_tag(["甲"], group_name="测试")
    assert info.value.errcode == 40071


def test_mark_tag_needs_something_to_add_or_remove(g, driver, wecom_server):
    ext = customers(driver, "sales1", 1)[0]
    with pytest.raises(WecomApiError) as info:
        g.mark_tag("sales1", ext)
    assert info.value.errcode == 40058
    g.mark_tag("sales1", ext, add_tag=["etsimtag_ad", "etsimtag_ref"])
    g.mark_tag("sales1", ext, remove_tag=["etsimtag_ad"])
    tags = g.get_external_contact(ext)["follow_user"][0]["tags"]
    assert [t["tag_id"] for t in tags] == ["etsimtag_ref"]


def test_console_tag_events_change_the_simulated_tag_list(g, driver, wecom_server):
    created = driver.tag_event("create", name="后台新标签")
    assert created.accepted and created.fields["TagType"] == "tag"
    names = [t["name"] for grp in g.get_corp_tag_list()["tag_group"] for t in grp["tag"]]
    assert "后台新标签" in names
    driver.tag_event("delete", tag_id=created.fields["Id"])
    names = [t["name"] for grp in g.get_corp_tag_list()["tag_group"] for t in grp["tag"]]
    assert "后台新标签" not in names


# --- mass messages -----------------------------------------------------------------------------------------
def test_mass_message_is_sent_only_after_the_staff_member_confirms(g, driver, wecom_server):
    exts = customers(driver, "sales1", 2)
    created = g.add_msg_template("single", text="本周利率优惠", external_userids=exts + ["wm_stranger"],
                                 sender="sales1")
    assert created["fail_list"] == ["wm_stranger"]
    msgid = created["msgid"]
    assert {t["status"] for t in g.get_groupmsg_task(msgid)["task_list"]} == {0}
    driver.confirm_mass_message(msgid, "sales1")
    assert {t["status"] for t in g.get_groupmsg_task(msgid)["task_list"]} == {2}
    assert {r["status"] for r in g.get_groupmsg_send_result(msgid, "sales1")["send_list"]} == {1}
    now = int(wecom_server.now())
    listed = g.get_groupmsg_list_v2("single", now - 3600, now + 60)["group_msg_list"]
    assert [m["msgid"] for m in listed] == [msgid]


def test_a_customer_receives_at_most_days_in_month_mass_messages(g, driver, wecom_server):
    import calendar
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(wecom_server.now(), UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    if local.day == calendar.monthrange(local.year, local.month)[1] and local.hour == 23:
        wecom_server.advance(hours=2)  # keep every send inside one month
    ext = customers(driver, "sales1", 1)[0]
    local = datetime.fromtimestamp(wecom_server.now(), UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    days = calendar.monthrange(local.year, local.month)[1]
    statuses = []
    for i in range(days + 1):
        msgid = g.add_msg_template("single", text=f"第{i}条", external_userids=[ext], sender="sales1")["msgid"]
        driver.confirm_mass_message(msgid, "sales1")
        statuses.append(g.get_groupmsg_send_result(msgid, "sales1")["send_list"][0]["status"])
    assert statuses == [1] * days + [3]


def test_group_mass_message_takes_at_most_2000_chats(g, wecom_server):
    with pytest.raises(WecomApiError):
        g.add_msg_template("group", text="hi", chat_ids=[f"wr{i}" for i in range(2001)], sender="sales1")
    with pytest.raises(WecomApiError):
        g.add_msg_template("broadcast", text="hi", sender="sales1")


def test_reminders_are_limited_to_three_a_day(g, driver, wecom_server):
    ext = customers(driver, "sales1", 1)[0]
    msgid = g.add_msg_template("single", text="hi", external_userids=[ext], sender="sales1")["msgid"]
    for _ in range(3):
        g.remind_groupmsg_send(msgid)
    with pytest.raises(WecomApiError):
        g.remind_groupmsg_send(msgid)
    wecom_server.advance(hours=24, seconds=1)
    assert g.remind_groupmsg_send(msgid)["errcode"] == 0


# --- customers ----------------------------------------------------------------------------------------------
def test_externalcontact_get_agrees_with_the_driver(g, driver, wecom_server):
    ext = driver.add_external_contact("sales1", name="王先生", state="ch_9", unionid="union1").external_userid
    info = g.get_external_contact(ext)
    assert info["external_contact"]["name"] == "王先生"
    assert [(f["userid"], f["state"]) for f in info["follow_user"]] == [("sales1", "ch_9")]
    assert g.unionid_to_external_userid("union1", "openid1")["external_userid"] == ext
    g.remark("sales1", ext, remark="王总", description="首套房")
    assert g.get_external_contact(ext)["follow_user"][0]["remark"] == "王总"
    driver.customer_deletes_staff("sales1", ext)
    with pytest.raises(WecomApiError) as info:
        g.get_external_contact(ext)
    assert info.value.errcode == 84061


def test_every_request_is_recorded_for_inspection(g, wecom_server):
    g.add_contact_way(type=1, scene=2, users=["sales1"], state="ch_x")
    sent = wecom_server.calls("externalcontact/add_contact_way")
    assert len(sent) == 1
    assert sent[0]["body"]["state"] == "ch_x" and sent[0]["body"]["user"] == ["sales1"]
    assert sent[0]["query"]["access_token"].endswith("…")  # tokens are shortened in the log


def test_reset_forgets_everything(g, driver, wecom_server):
    customers(driver, "sales1", 1)
    wecom_server.advance(hours=5)
    wecom_server.reset()
    state = wecom_server.state()
    assert state["contacts"] == {} and state["offset"] == 0 and wecom_server.requests() == []
