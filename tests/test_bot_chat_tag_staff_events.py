"""Group chat, corp tag, address-book and transfer_fail events, over real HTTP with the simulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.gateway import get_gateway
from bot.models_channel import GroupChat, GroupChatMember
from core import clock
from crm.models import CaseStatus, Customer, CustomerEvent, HandoverCase, HandoverItem, Tag, TagGroup, WeComTransfer
from tests.factories import make_department, make_staff


@pytest.fixture
def org(session):
    dept = make_department(session, "销售公司")
    sales1 = make_staff(session, department=dept, username="sales1", display_name="销售一", wecom_userid="sales1")
    sales2 = make_staff(session, department=dept, username="sales2", display_name="销售二", wecom_userid="sales2")
    session.flush()
    return {"sales1": sales1, "sales2": sales2}


@pytest.fixture
def driver(wecom_server):
    d = wecom_server.driver()
    yield d
    d.close()


def customer_of(session, ext):
    return session.scalar(select(Customer).where(Customer.wecom_external_userid == ext))


def kinds(session, customer_id):
    return [e.kind for e in session.scalars(select(CustomerEvent).where(CustomerEvent.customer_id == customer_id)
                                            .order_by(CustomerEvent.id))]


# --- group chats ------------------------------------------------------------------------------------

def test_group_create_join_leave_dismiss_are_mirrored(session, org, driver, task_runner):
    ext = driver.add_external_contact("sales1", name="群客户").external_userid
    chat_id = driver.create_group_chat("sales1", "贷款交流群").chat_id
    task_runner.drain()
    chat = session.scalar(select(GroupChat).where(GroupChat.chat_id == chat_id))
    assert (chat.name, chat.owner_staff_id, chat.member_count, chat.status) == ("贷款交流群", org["sales1"].id, 1,
                                                                                "active")
    driver.join_group_chat(chat_id, ext)
    task_runner.drain()
    member = session.scalar(select(GroupChatMember).where(GroupChatMember.member_id == ext))
    customer = customer_of(session, ext)
    session.refresh(chat)
    assert member.member_type == 2 and member.customer_id == customer.id and member.left_at is None
    assert member.join_scene == 3 and chat.member_count == 2
    assert "wecom.group_join" in kinds(session, customer.id)
    driver.leave_group_chat(chat_id, ext)
    task_runner.drain()
    session.refresh(member)
    session.refresh(chat)
    assert member.left_at is not None and chat.member_count == 1
    assert "wecom.group_leave" in kinds(session, customer.id)
    driver.send(driver._event("change_external_chat", "dismiss", clock.now().timestamp(), ChatId=chat_id))
    task_runner.drain()
    session.refresh(chat)
    assert chat.status == "dismissed" and chat.member_count == 0
    assert session.scalar(select(GroupChatMember).where(GroupChatMember.chat_id == chat_id,
                                                        GroupChatMember.left_at.is_(None))) is None


def test_rejoining_a_group_reopens_the_membership(session, org, driver, task_runner):
    ext = driver.add_external_contact("sales1").external_userid
    chat_id = driver.create_group_chat("sales1").chat_id
    driver.join_group_chat(chat_id, ext)
    driver.leave_group_chat(chat_id, ext)
    driver.join_group_chat(chat_id, ext)
    task_runner.drain()
    rows = session.scalars(select(GroupChatMember).where(GroupChatMember.member_id == ext)).all()
    assert len(rows) == 1 and rows[0].left_at is None


# --- corp tags --------------------------------------------------------------------------------------

def live_wecom_tags(session):
    return {t.wecom_tag_id: t.name for t in session.scalars(select(Tag).where(Tag.wecom_tag_id.is_not(None),
                                                                                Tag.deleted_at.is_(None)))}


def test_tag_events_mirror_create_update_delete(session, org, driver, task_runner):
    created = driver.tag_event("create", name="高意向")
    task_runner.drain()
    tag_id = created.fields["Id"]
    mirrored = live_wecom_tags(session)
    assert mirrored[tag_id] == "高意向" and mirrored["etsimtag_ad"] == "广告投放"
    group = session.scalar(select(TagGroup).where(TagGroup.wecom_group_id == "etsimconsole"))
    assert group is not None and group.deleted_at is None
    driver.tag_event("update", tag_id=tag_id, name="高意向客户")
    task_runner.drain()
    assert live_wecom_tags(session)[tag_id] == "高意向客户"
    driver.tag_event("delete", tag_id=tag_id)
    task_runner.drain()
    assert tag_id not in live_wecom_tags(session)
    assert session.scalar(select(Tag.deleted_at).where(Tag.wecom_tag_id == tag_id)) is not None


def test_a_same_named_local_tag_is_adopted_not_duplicated(session, org, driver, task_runner):
    from crm import tags

    group = tags.create_group(session, None, "客户来源（管理后台创建）")
    local = tags.create_tag(session, None, group.id, "广告投放")
    driver.tag_event("shuffle")
    task_runner.drain()
    session.refresh(local)
    assert local.wecom_tag_id == "etsimtag_ad"
    assert session.scalar(select(TagGroup.wecom_group_id).where(TagGroup.id == group.id)) == "etsimconsole"


# --- staff left --------------------------------------------------------------------------------------

def test_delete_user_opens_the_handover_case_once(session, org, driver, task_runner):
    ext = driver.add_external_contact("sales1").external_userid
    task_runner.drain()
    driver.staff_left("sales1")
    task_runner.drain()
    driver.send(driver._event("change_contact", "delete_user", clock.now().timestamp() + 1, UserID="sales1"))
    task_runner.drain()
    cases = session.scalars(select(HandoverCase).where(HandoverCase.from_staff_id == org["sales1"].id)).all()
    assert [(c.status, c.source) for c in cases] == [(CaseStatus.OPEN, "wecom")]
    items = session.scalars(select(HandoverItem.customer_id).where(HandoverItem.case_id == cases[0].id)).all()
    assert items == [customer_of(session, ext).id]
    session.refresh(org["sales1"])
    assert org["sales1"].status == "departed"


# --- transfer_fail -----------------------------------------------------------------------------------

def test_transfer_fail_settles_our_pending_transfer(session, org, driver, wecom_server, task_runner):
    ext = driver.add_external_contact("sales1").external_userid
    task_runner.drain()
    customer = customer_of(session, ext)
    wecom_server.transfer_outcome(ext, "refuse")
    get_gateway().transfer_customer("sales1", "sales2", [ext])
    now = clock.now()
    transfer = WeComTransfer(customer_id=customer.id, external_userid=ext, handover_userid="sales1",
                             takeover_userid="sales2", kind="in_service", status="waiting", requested_at=now,
                             updated_at=now)
    session.add(transfer)
    session.flush()
    driver.transfer_fail("sales2", ext, "customer_refused")
    task_runner.drain()
    session.refresh(transfer)
    assert transfer.status == "refused"
    assert "wecom.transfer.refused" in kinds(session, customer.id)


def test_transfer_fail_without_a_pending_transfer_is_recorded(session, org, driver, task_runner):
    ext = driver.add_external_contact("sales1").external_userid
    task_runner.drain()
    driver.transfer_fail("sales2", ext, "customer_limit_exceed")
    task_runner.drain()
    assert "wecom.transfer_fail" in kinds(session, customer_of(session, ext).id)
