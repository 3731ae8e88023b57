"""Chat commands over real HTTP: the simulator's driver sends a signed, encrypted text message to
/wecom/callback; the inbox task runs the command as the sender; the reply is an app message the
simulator records (message/send)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.commands import replies
from bot.commands.parser import parse_when
from core import clock
from crm import customers, org_service, tags
from crm.models import CustomerStatus, CustomerTag, FollowUp
from crm.scope import Viewer
from tests.factories import make_customer, make_department, make_staff

PHONE = "13912345678"


@pytest.fixture
def org(session):
    company = make_department(session, "总公司", "company")
    team_a = make_department(session, "一组", "team", company)
    team_b = make_department(session, "二组", "team", company)
    alice = make_staff(session, department=team_a, display_name="李销售", wecom_userid="alice", data_scope="own")
    bob = make_staff(session, department=team_b, display_name="王销售", wecom_userid="bob", data_scope="own")
    boss = make_staff(session, role="manager", department=company, display_name="赵经理", wecom_userid="boss",
                      data_scope="all")
    return {"alice": alice, "bob": bob, "boss": boss}


@pytest.fixture
def chat(wecom_server, task_runner):
    driver = wecom_server.driver()

    def say(userid: str, text: str) -> str:
        before = len(wecom_server.state()["app_messages"])
        result = driver.text_message(userid, text)
        assert result.accepted, result.response
        task_runner.drain()
        new = [m for m in wecom_server.state()["app_messages"][before:] if m["touser"] == [userid]]
        assert new, "no reply was sent"
        reply = new[0]
        assert reply["msgtype"] == "text"
        return reply["content"]["content"]

    yield say
    driver.close()


def test_help_lists_every_command_with_examples(session, org, chat):
    reply = chat("alice", "帮助")
    for word in ("查", "跟进", "标签", "去标签", "领取", "提醒", "进件"):
        assert f"· {word} " in reply
    assert "明天10点" in reply


def test_unknown_command_answers_with_the_help(session, org, chat):
    reply = chat("alice", "你好呀")
    assert "没有「你好呀」这个指令" in reply and "· 跟进 " in reply


def test_unknown_sender_is_politely_refused(session, org, chat):
    assert chat("stranger", "查 张三") == replies.UNKNOWN_SENDER


def test_departed_sender_is_refused(session, org, chat):
    org_service.mark_departed(session, org["bob"].id)
    assert chat("bob", "查 张三") == replies.DEPARTED_SENDER


def test_reply_goes_to_the_sender_from_the_configured_app(session, org, wecom_server, chat):
    chat("alice", "帮助")
    message = wecom_server.calls("message/send")[-1]
    assert message["body"]["touser"] == "alice" and message["body"]["msgtype"] == "text"


# --- 查 ------------------------------------------------------------------------------------------

def test_lookup_by_phone_shows_the_masked_phone_only(session, org, chat):
    customer = make_customer(session, name="张三", phone=PHONE, owner=org["alice"])
    reply = chat("alice", f"查 {PHONE}")
    assert f"#{customer.id} 张三 139****5678" in reply
    assert PHONE not in reply
    assert "负责人 李销售" in reply


def test_lookup_by_initials_and_by_name(session, org, chat):
    make_customer(session, name="张三丰", owner=org["alice"])
    assert "张三丰" in chat("alice", "查 zsf")
    assert "张三丰" in chat("alice", "查 zhangsanfeng")
    assert "张三丰" in chat("alice", "查三丰")


def test_lookup_with_several_matches_is_a_numbered_list(session, org, chat):
    first = make_customer(session, name="张伟", owner=org["alice"])
    second = make_customer(session, name="张伟强", owner=org["alice"])
    reply = chat("alice", "查 张伟")
    assert "找到 2 位客户" in reply
    assert re.search(rf"1\. #{second.id} 张伟强", reply) and re.search(rf"2\. #{first.id} 张伟", reply)


def test_a_salesperson_cannot_look_up_another_ones_customer(session, org, chat):
    make_customer(session, name="王五", phone=PHONE, owner=org["bob"])
    reply = chat("alice", f"查 {PHONE}")
    assert "没有找到" in reply and "王五" not in reply
    assert "王五" in chat("boss", f"查 {PHONE}")  # the manager's scope covers everyone


def test_lookup_by_id_outside_the_scope_finds_nothing(session, org, chat):
    other = make_customer(session, name="王五", owner=org["bob"])
    assert "没有找到" in chat("alice", f"查 #{other.id}")


# --- 跟进 ----------------------------------------------------------------------------------------

def test_followup_is_logged_with_the_next_followup_time(session, org, chat):
    customer = make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", "跟进 张三 电话沟通，有意向 下次 明天10点")
    assert "已记录对 张三" in reply
    followup = session.scalar(select(FollowUp).where(FollowUp.customer_id == customer.id))
    assert followup.staff_id == org["alice"].id and followup.content == "电话沟通，有意向"
    assert followup.kind == "call" and followup.outcome == "有意向"
    expected = parse_when("明天10点")
    assert clock.ensure_aware(followup.next_followup_at) == expected
    session.refresh(customer)
    assert customer.stage == "intent"


def test_followup_with_an_unparseable_time_writes_nothing(session, org, chat):
    customer = make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", "跟进 张三 聊了聊 下次 找个时间")
    assert "无法识别时间「找个时间」" in reply
    assert session.scalar(select(FollowUp).where(FollowUp.customer_id == customer.id)) is None


def test_followup_on_an_ambiguous_name_asks_to_pick_by_number(session, org, chat):
    a = make_customer(session, name="张伟", owner=org["alice"])
    make_customer(session, name="张伟强", owner=org["alice"])
    reply = chat("alice", "跟进 张伟 电话沟通")
    assert "匹配到多位客户" in reply and f"#{a.id}" in reply
    assert session.scalar(select(FollowUp)) is None
    assert "已记录" in chat("alice", f"跟进 #{a.id} 电话沟通")


def test_followup_on_someone_elses_customer_is_refused(session, org, chat):
    other = make_customer(session, name="王五", owner=org["bob"])
    assert "没有找到" in chat("alice", f"跟进 #{other.id} 试试")
    assert session.scalar(select(FollowUp)) is None


def test_followup_without_content_explains_the_format(session, org, chat):
    make_customer(session, name="张三", owner=org["alice"])
    assert "格式：跟进 <客户> <内容>" in chat("alice", "跟进 张三")


# --- 标签 / 去标签 --------------------------------------------------------------------------------

@pytest.fixture
def library(session):
    group = tags.create_group(session, None, "意向")
    return {"hot": tags.create_tag(session, None, group.id, "高意向"),
            "house": tags.create_tag(session, None, group.id, "有房")}


def _tag_ids(session, customer_id):
    return set(session.scalars(select(CustomerTag.tag_id).where(CustomerTag.customer_id == customer_id)))


def test_tag_and_untag_a_customer(session, org, library, chat):
    customer = make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", "标签 张三 高意向，有房")
    assert "已为 张三" in reply and "添加标签：高意向、有房" in reply
    assert _tag_ids(session, customer.id) == {library["hot"].id, library["house"].id}
    reply = chat("alice", "去标签 张三 有房")
    assert "移除标签：有房" in reply
    assert _tag_ids(session, customer.id) == {library["hot"].id}


def test_unknown_tag_is_refused_and_nothing_is_tagged(session, org, library, chat):
    customer = make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", "标签 张三 高意向,不存在的标签")
    assert "标签库中没有：不存在的标签" in reply
    assert _tag_ids(session, customer.id) == set()


def test_tagging_someone_elses_customer_is_refused(session, org, library, chat):
    other = make_customer(session, name="王五", owner=org["bob"])
    assert "没有找到" in chat("alice", f"标签 #{other.id} 高意向")
    assert _tag_ids(session, other.id) == set()


# --- 领取 ----------------------------------------------------------------------------------------

def test_claim_from_the_public_pool(session, org, chat):
    customer = make_customer(session, name="孙七", phone=PHONE)
    assert customer.status == CustomerStatus.POOL
    reply = chat("alice", f"领取 {PHONE}")
    assert "领取成功：孙七" in reply and PHONE not in reply
    session.refresh(customer)
    assert customer.status == CustomerStatus.OWNED and customer.owner_id == org["alice"].id


def test_claim_of_a_blacklisted_customer_is_refused_with_crms_message(session, org, chat):
    customer = make_customer(session, name="孙七")
    customers.blacklist(session, Viewer.of(org["boss"]), customer.id, "骗贷")
    reply = chat("alice", f"领取 #{customer.id}")
    assert "该客户已被列入黑名单，不能领取" in reply
    session.refresh(customer)
    assert customer.owner_id is None


def test_claim_of_an_owned_customer_is_refused(session, org, chat):
    customer = make_customer(session, name="王五", owner=org["bob"])
    reply = chat("alice", f"领取 #{customer.id}")
    assert reply.startswith("抱歉，指令没有执行成功")
    session.refresh(customer)
    assert customer.owner_id == org["bob"].id


def test_claim_by_a_name_not_in_the_pool_finds_nothing(session, org, chat):
    make_customer(session, name="王五", owner=org["bob"])
    assert "公海中没有找到「王五」" in chat("alice", "领取 王五")


# --- 提醒 / 今日 ----------------------------------------------------------------------------------

def test_reminders_list_today_and_overdue(session, org, chat):
    due = make_customer(session, name="今日客户", phone=PHONE, owner=org["alice"])
    late = make_customer(session, name="逾期客户", owner=org["alice"])
    today_end = clock.start_of_business_day(clock.today() + timedelta(days=1))
    due.next_followup_at = today_end - timedelta(minutes=1)
    late.next_followup_at = clock.start_of_business_day(clock.today()) - timedelta(days=2)
    session.flush()
    reply = chat("alice", "今日")
    assert "【逾期 1 项】" in reply and "逾期客户" in reply
    assert "【今日到期 1 项】" in reply and "今日客户" in reply
    assert PHONE not in reply


def test_reminders_when_nothing_is_due(session, org, chat):
    assert "没有到期的跟进和待办" in chat("bob", "提醒")


# --- 进件 ----------------------------------------------------------------------------------------

@pytest.fixture
def product(session):
    from tests.lending_product_factories import make_product

    return make_product(session, name="信用贷", code="XYD")


def test_apply_starts_an_application_through_lending(session, org, product, chat):
    from lending.models import Application

    customer = make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", "进件 张三 信用贷 5万 12期")
    app = session.scalar(select(Application).where(Application.customer_id == customer.id))
    assert app is not None and app.channel == "wecom" and app.created_by_staff_id == org["alice"].id
    assert (app.requested_amount, app.term_months) == (5_000_000, 12)
    assert f"发起「信用贷」申请 #{app.id}：50000.00 元 / 12 个月" in reply


def test_apply_outside_the_products_range_is_refused_by_lending(session, org, product, chat):
    from lending.models import Application

    make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", "进件 张三 信用贷 1元 12期")
    assert reply.startswith("抱歉，指令没有执行成功")
    assert session.scalar(select(Application)) is None


def test_apply_without_amount_and_term_explains_the_format_and_products(session, org, product, chat):
    make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", "进件 张三")
    assert "格式：进件 <客户> <产品> <金额> <期限>" in reply and "可申请的产品：信用贷" in reply


def test_apply_for_someone_elses_customer_finds_nothing(session, org, product, chat):
    make_customer(session, name="王五", owner=org["bob"])
    assert "没有找到" in chat("alice", "进件 王五 信用贷 5万 12期")


# --- the reply path -------------------------------------------------------------------------------

def test_a_typed_phone_is_masked_in_the_reply(session, org, chat):
    make_customer(session, name="张三", owner=org["alice"])
    reply = chat("alice", f"跟进 张三 客户新号码 {PHONE}")
    assert "已记录" in reply
    assert PHONE not in reply


def test_a_redelivered_command_runs_and_answers_once(session, org, wecom_server, task_runner):
    make_customer(session, name="张三", owner=org["alice"])
    driver = wecom_server.driver()
    try:
        first = driver.text_message("alice", "跟进 张三 电话沟通")
        task_runner.drain()
        again = driver.send(first.fields)  # WeCom re-delivers the same MsgId
        task_runner.drain()
    finally:
        driver.close()
    assert again.accepted
    assert len(session.scalars(select(FollowUp)).all()) == 1
    assert len([m for m in wecom_server.state()["app_messages"] if m["touser"] == ["alice"]]) == 1



def test_a_reply_leaves_only_after_the_outer_commit(session, monkeypatch):
    from core.db import unit_of_work

    sent = []
    monkeypatch.setattr(replies, "send", sent.append)
    with unit_of_work() as s:
        with s.begin_nested():
            replies.queue(s, "alice", f"号码 {PHONE}")
        assert sent == []  # a savepoint's release is not the commit
    assert [(r.touser, r.content) for r in sent] == [("alice", "号码 139****5678")]


def test_a_rolled_back_reply_is_never_sent(session, monkeypatch):
    from core.db import unit_of_work

    sent = []
    monkeypatch.setattr(replies, "send", sent.append)
    with pytest.raises(RuntimeError), unit_of_work() as s:
        replies.queue(s, "alice", "已记录")
        raise RuntimeError("boom")
    assert sent == []
