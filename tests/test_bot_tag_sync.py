"""Corp tags both ways and bot.mark_tags, over real HTTP with the WeCom simulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import tag_sync
from bot.models_mass import WecomTagOrigin
from crm import tags
from crm.models import CustomerEvent, Tag, TagGroup
from crm.scope import Viewer
from tests.factories import make_customer, make_department, make_staff


@pytest.fixture
def org(session):
    dept = make_department(session, "销售公司")
    sales1 = make_staff(session, department=dept, username="sales1", display_name="销售一", wecom_userid="sales1")
    admin = make_staff(session, role="admin", department=dept, username="boss", display_name="老板")
    session.flush()
    return {"sales1": sales1, "admin": admin, "viewer": Viewer.of(admin)}


def test_pull_mirrors_the_corp_tags(session, org, wecom_server):
    result = tag_sync.pull(session, org["viewer"])
    group = session.scalar(select(TagGroup).where(TagGroup.wecom_group_id == "etsimconsole"))
    assert group is not None and group.name == "客户来源（管理后台创建）"
    mirrored = dict(session.execute(select(Tag.wecom_tag_id, Tag.name).where(Tag.group_id == group.id)).all())
    assert mirrored == {"etsimtag_ad": "广告投放", "etsimtag_ref": "老客转介"}
    assert result.created == 3
    assert tag_sync.recent_syncs(session)[0].after["created"] == 3


def test_pull_renames_and_retires(session, org, wecom_server):
    tag_sync.pull(session, org["viewer"])
    driver = wecom_server.driver()
    driver.admin("tag", {"change_type": "update", "id": "etsimtag_ad", "name": "信息流广告"})
    driver.admin("tag", {"change_type": "delete", "id": "etsimtag_ref"})
    driver.close()
    result = tag_sync.pull(session, org["viewer"])
    assert (result.renamed, result.retired) == (1, 1)
    assert session.scalar(select(Tag.name).where(Tag.wecom_tag_id == "etsimtag_ad")) == "信息流广告"
    assert session.scalar(select(Tag.deleted_at).where(Tag.wecom_tag_id == "etsimtag_ref")) is not None


def test_our_new_tag_is_created_in_wecom(session, org, wecom_server):
    tag = tag_sync.create_wecom_tag(session, org["viewer"], "高意向", group_name="意向")
    call = wecom_server.calls("externalcontact/add_corp_tag")[-1]["body"]
    assert call["group_name"] == "意向" and call["tag"][0]["name"] == "高意向"
    assert tag.wecom_tag_id and tag.group.wecom_group_id
    wecom_group = wecom_server.state()["tag_groups"][tag.group.wecom_group_id]
    assert [t["id"] for t in wecom_group["tag"]] == [tag.wecom_tag_id]
    assert session.get(WecomTagOrigin, tag.wecom_tag_id).kind == "tag"


def test_a_second_tag_goes_into_the_existing_wecom_group(session, org, wecom_server):
    first = tag_sync.create_wecom_tag(session, org["viewer"], "高意向", group_name="意向")
    tag_sync.create_wecom_tag(session, org["viewer"], "低意向", group_id=first.group_id)
    assert wecom_server.calls("externalcontact/add_corp_tag")[-1]["body"]["group_id"] == first.group.wecom_group_id


def test_push_refused_beyond_the_3000_cap(session, org, wecom_server, monkeypatch):
    monkeypatch.setattr(tag_sync, "MAX_CORP_TAGS", 2)  # the simulator already holds 2 console tags
    group = tags.create_group(session, None, "意向")
    tag = tags.create_tag(session, None, group.id, "高意向")
    with pytest.raises(tag_sync.TagCapReached, match="上限"):
        tag_sync.push_tags(session, org["viewer"], [tag.id])
    assert wecom_server.calls("externalcontact/add_corp_tag") == []


def test_deleting_a_tag_not_created_by_us_is_refused_locally(session, org, wecom_server):
    tag_sync.pull(session, org["viewer"])
    tag = session.scalar(select(Tag).where(Tag.wecom_tag_id == "etsimtag_ad"))
    with pytest.raises(tag_sync.TagNotOurs):
        tag_sync.delete_in_wecom(session, org["viewer"], tag.id)
    assert wecom_server.calls("del_corp_tag") == []


def test_deleting_our_tag_deletes_it_in_wecom(session, org, wecom_server):
    tag = tag_sync.create_wecom_tag(session, org["viewer"], "高意向", group_name="意向")
    tag_sync.delete_in_wecom(session, org["viewer"], tag.id)
    assert wecom_server.calls("del_corp_tag")[-1]["body"]["tag_id"] == [tag.wecom_tag_id]
    assert tag.deleted_at is not None


def test_tagging_marks_the_tag_in_wecom_with_the_owners_userid(session, org, wecom_server, task_runner):
    wecom_server.admin("contact", {"userid": "sales1", "external_userid": "wm_a1", "name": "王先生", "state": "",
                                   "unionid": "", "welcome": False})
    customer = make_customer(session, owner=org["sales1"], wecom_external_userid="wm_a1")
    mirrored = tag_sync.create_wecom_tag(session, org["viewer"], "高意向", group_name="意向")
    local = tags.create_tag(session, None, mirrored.group_id, "仅本地")
    tags.tag_customer(session, org["viewer"], customer.id, [mirrored.id, local.id])
    session.commit()
    task_runner.drain()
    call = wecom_server.calls("externalcontact/mark_tag")[-1]
    assert call["body"] == {"userid": "sales1", "external_userid": "wm_a1", "add_tag": [mirrored.wecom_tag_id]}
    assert call["errcode"] == 0
    assert wecom_server.state()["contacts"]["wm_a1"]["follow"]["sales1"]["tags"] == [mirrored.wecom_tag_id]
    session.expire_all()
    kinds = session.scalars(select(CustomerEvent.kind).where(CustomerEvent.customer_id == customer.id)).all()
    assert "wecom.mark_tag" in kinds


def test_untagging_removes_the_tag_in_wecom(session, org, wecom_server, task_runner):
    wecom_server.admin("contact", {"userid": "sales1", "external_userid": "wm_a1", "name": "王先生", "state": "",
                                   "unionid": "", "welcome": False})
    customer = make_customer(session, owner=org["sales1"], wecom_external_userid="wm_a1")
    mirrored = tag_sync.create_wecom_tag(session, org["viewer"], "高意向", group_name="意向")
    tags.tag_customer(session, org["viewer"], customer.id, [mirrored.id])
    tags.untag_customer(session, org["viewer"], customer.id, [mirrored.id])
    session.commit()
    task_runner.drain()
    bodies = [c["body"] for c in wecom_server.calls("externalcontact/mark_tag")]
    assert bodies[-1] == {"userid": "sales1", "external_userid": "wm_a1", "remove_tag": [mirrored.wecom_tag_id]}


def test_only_local_tags_call_nothing(session, org, wecom_server):
    customer = make_customer(session, owner=org["sales1"], wecom_external_userid="wm_a1")
    group = tags.create_group(session, None, "本地")
    local = tags.create_tag(session, None, group.id, "仅本地")
    result = tag_sync.mark_tags(session, customer.id, [local.id], [])
    assert result.status == "skipped" and wecom_server.calls("mark_tag") == []


def test_a_customer_no_longer_a_contact_is_recorded_as_failed(session, org, wecom_server):
    customer = make_customer(session, owner=org["sales1"], wecom_external_userid="wm_gone")
    tag = tag_sync.create_wecom_tag(session, org["viewer"], "高意向", group_name="意向")
    result = tag_sync.mark_tags(session, customer.id, [tag.id], [])
    assert result.status == "failed" and result.userid == "sales1"
    assert wecom_server.calls("mark_tag")[-1]["errcode"] == 84061
    event = session.scalar(select(CustomerEvent).where(CustomerEvent.customer_id == customer.id,
                                                       CustomerEvent.kind == "wecom.mark_tag_failed"))
    assert event is not None and "失败" in event.summary
