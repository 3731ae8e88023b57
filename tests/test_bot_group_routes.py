"""Group chat sync and segment-routed group joining (分层拉群), over real HTTP with the WeCom simulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import group_routes, mass_messages
from bot.models_channel import GroupChat
from bot.models_mass import MassMessageRecipient, SegmentGroupJoin
from crm import segments
from crm.models import CustomerEvent
from crm.scope import Viewer
from tests.factories import make_customer, make_department, make_staff


@pytest.fixture
def org(session):
    dept = make_department(session, "销售公司")
    sales1 = make_staff(session, department=dept, username="sales1", display_name="销售一", wecom_userid="sales1")
    admin = make_staff(session, role="admin", department=dept, username="boss", display_name="老板")
    session.flush()
    return {"sales1": sales1, "admin": admin, "viewer": Viewer.of(admin)}


@pytest.fixture
def vip(session, org):
    return segments.create_segment(session, None, "上海 VIP", {"op": "and", "rules": [
        {"field": "region", "cmp": "equals", "value": "上海"}]}, for_group_routing=True)


def new_chat(wecom_server, owner="sales1", name="上海VIP群"):
    return wecom_server.admin("chat", {"owner": owner, "name": name})["chat_id"]


def synced_chat(session, wecom_server, name="上海VIP群"):
    chat_id = new_chat(wecom_server, name=name)
    group_routes.sync_group_chats(session)
    return chat_id


def test_sync_pages_through_the_cursor_and_mirrors_every_chat(session, org, wecom_server):
    chat_ids = [new_chat(wecom_server, name=f"群{i}") for i in range(3)]
    wecom_server.configure(page_size=1)
    result = group_routes.sync_group_chats(session)
    assert (result.listed, result.refreshed, result.pages) == (3, 3, 3)
    cursors = [c["body"]["cursor"] for c in wecom_server.calls("groupchat/list")]
    assert cursors[0] == "" and all(cursors[1:])
    mirrored = dict(session.execute(select(GroupChat.chat_id, GroupChat.name)).all())
    assert mirrored == {c: f"群{i}" for i, c in enumerate(chat_ids)}
    assert session.scalar(select(GroupChat.owner_staff_id).where(GroupChat.chat_id == chat_ids[0])) == org["sales1"].id


def test_sync_marks_chats_wecom_no_longer_lists_dismissed(session, org, wecom_server):
    session.add(GroupChat(chat_id="wr_gone", name="旧群", status="active", member_count=3,
                          created_at=group_routes.clock.now(), updated_at=group_routes.clock.now()))
    session.flush()
    group_routes.sync_group_chats(session)
    assert session.scalar(select(GroupChat.status).where(GroupChat.chat_id == "wr_gone")) == "dismissed"


def test_route_creates_a_join_way_and_stores_config_id_and_state(session, org, vip, wecom_server):
    chat_id = synced_chat(session, wecom_server)
    route = group_routes.create_route(session, org["viewer"], group_routes.RouteInput(
        name="上海VIP入群", segment_id=vip.id, chat_ids=[chat_id], state="vip_sh", room_base_name="上海VIP",
        room_base_id=2))
    body = wecom_server.calls("groupchat/add_join_way")[-1]["body"]
    assert body["chat_id_list"] == [chat_id] and body["state"] == "vip_sh" and body["scene"] == 2
    assert body["auto_create_room"] == 1 and body["room_base_name"] == "上海VIP" and body["room_base_id"] == 2
    assert route.config_id in wecom_server.state()["ways"] and route.state == "vip_sh"
    assert route.qr_code and route.config_id in route.qr_code


def test_route_refuses_more_than_five_chats_and_long_state_before_wecom(session, org, vip, wecom_server):
    chat_ids = [new_chat(wecom_server, name=f"群{i}") for i in range(6)]
    group_routes.sync_group_chats(session)
    with pytest.raises(group_routes.ValidationFailed, match="5"):
        group_routes.create_route(session, org["viewer"], group_routes.RouteInput(
            name="x", segment_id=vip.id, chat_ids=chat_ids, room_base_name="x"))
    with pytest.raises(group_routes.ValidationFailed, match="30"):
        group_routes.create_route(session, org["viewer"], group_routes.RouteInput(
            name="x", segment_id=vip.id, chat_ids=chat_ids[:1], state="s" * 31, room_base_name="x"))
    assert wecom_server.calls("add_join_way") == []


def test_deleting_a_route_deletes_the_join_way(session, org, vip, wecom_server):
    chat_id = synced_chat(session, wecom_server)
    route = group_routes.create_route(session, org["viewer"], group_routes.RouteInput(
        name="r", segment_id=vip.id, chat_ids=[chat_id], auto_create_room=False))
    group_routes.delete_route(session, org["viewer"], route.id)
    assert route.config_id not in wecom_server.state()["ways"]


def test_invite_drafts_a_mass_message_with_the_qr_link_to_the_segment(session, org, vip, wecom_server):
    chat_id = synced_chat(session, wecom_server)
    route = group_routes.create_route(session, org["viewer"], group_routes.RouteInput(
        name="r", segment_id=vip.id, chat_ids=[chat_id], auto_create_room=False))
    make_customer(session, owner=org["sales1"], region="上海", wecom_external_userid="wm_a1")
    make_customer(session, owner=org["sales1"], region="北京", wecom_external_userid="wm_b1")
    message = group_routes.invite(session, org["viewer"], route.id)
    assert message.route_id == route.id and message.segment_id == vip.id
    assert message.attachments[0]["link"]["url"] == route.qr_code
    mass_messages.submit(session, org["viewer"], message.id)
    recipients = session.scalars(select(MassMessageRecipient.external_userid)
                                 .where(MassMessageRecipient.mass_message_id == message.id)).all()
    assert recipients == ["wm_a1"]


def _join_event(driver, chat_id, ext, state):
    reg = driver.admin("chat/member", {"chat_id": chat_id, "member": ext, "action": "add", "join_scene": 3})
    return driver.send(driver._event("change_external_chat", "update", reg["now"], ChatId=chat_id,
                                     UpdateDetail="add_member", JoinScene="3", MemChangeCnt="1", State=state))


def test_join_through_the_route_state_is_attributed(session, org, vip, wecom_server, task_runner):
    chat_id = synced_chat(session, wecom_server)
    route = group_routes.create_route(session, org["viewer"], group_routes.RouteInput(
        name="上海VIP入群", segment_id=vip.id, chat_ids=[chat_id], state="vip_sh", auto_create_room=False))
    inside = make_customer(session, owner=org["sales1"], region="上海", wecom_external_userid="wm_a1")
    outside = make_customer(session, owner=org["sales1"], region="北京", wecom_external_userid="wm_b1")
    session.commit()
    driver = wecom_server.driver()
    assert _join_event(driver, chat_id, "wm_a1", "vip_sh").accepted
    assert _join_event(driver, chat_id, "wm_b1", "vip_sh").accepted
    driver.close()
    task_runner.drain()
    joins = dict(session.execute(select(SegmentGroupJoin.customer_id, SegmentGroupJoin.in_segment)
                                 .where(SegmentGroupJoin.route_id == route.id)).all())
    assert joins == {inside.id: True, outside.id: False}
    kinds = session.scalars(select(CustomerEvent.kind).where(CustomerEvent.customer_id == inside.id)).all()
    assert "wecom.segment_group_join" in kinds and "wecom.group_join" in kinds


def test_join_without_a_route_state_is_not_attributed(session, org, vip, wecom_server, task_runner):
    chat_id = synced_chat(session, wecom_server)
    group_routes.create_route(session, org["viewer"], group_routes.RouteInput(
        name="r", segment_id=vip.id, chat_ids=[chat_id], state="vip_sh", auto_create_room=False))
    make_customer(session, owner=org["sales1"], region="上海", wecom_external_userid="wm_a1")
    session.commit()
    driver = wecom_server.driver()
    driver.join_group_chat(chat_id, "wm_a1")
    driver.close()
    task_runner.drain()
    assert session.scalar(select(SegmentGroupJoin.id)) is None
