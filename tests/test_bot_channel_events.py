"""WeCom customer-contact events through channel codes, over real HTTP with the simulator: the
driver sends signed callbacks to /wecom/callback, the inbox task runs the handlers, the handlers
call the simulated WeCom API."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot import channel_codes
from bot.models import WecomInbox
from bot.models_channel import ChannelAdd, ChannelAttribution, WecomRelation
from crm import customers, tags
from crm.models import Collision, Customer, CustomerEvent, CustomerTag, Notification
from crm.scope import Viewer
from tests.factories import make_department, make_staff


@pytest.fixture
def org(session):
    dept = make_department(session, "销售公司")
    sup = make_staff(session, role="supervisor", department=dept, username="sup1", display_name="主管甲",
                     wecom_userid="sup1")
    sales1 = make_staff(session, department=dept, username="sales1", display_name="销售一", wecom_userid="sales1")
    sales2 = make_staff(session, department=dept, username="sales2", display_name="销售二", wecom_userid="sales2")
    backup = make_staff(session, department=dept, username="backup1", display_name="备用", wecom_userid="backup1")
    admin = make_staff(session, role="admin", department=dept, username="boss", display_name="老板")
    session.flush()
    return {"sup": sup, "sales1": sales1, "sales2": sales2, "backup": backup, "admin": admin,
            "viewer": Viewer.of(admin)}


@pytest.fixture
def driver(wecom_server):
    d = wecom_server.driver()
    yield d
    d.close()


@pytest.fixture
def tag(session, org):
    group = tags.create_group(session, None, "意向")
    return tags.create_tag(session, None, group.id, "抖音来客")


def make_code(session, org, *, tag_ids=(), daily_cap=None, staff=("sales1",), backups=(), **extra):
    data = channel_codes.ChannelInput(
        name="抖音投放", channel="抖音", state=extra.pop("state", "dy_march"), campaign="三月活动",
        staff_ids=[org[s].id for s in staff], backup_staff_ids=[org[s].id for s in backups],
        referrer_ref=extra.pop("referrer_ref", "REF-42"), welcome_text=extra.pop("welcome_text", "您好，我是您的专属顾问"),
        tag_ids=list(tag_ids), daily_cap=daily_cap)
    return channel_codes.create_code(session, org["viewer"], data)


def customer_of(session, ext):
    return session.scalar(select(Customer).where(Customer.wecom_external_userid == ext))


def events(session, customer_id, kind=None):
    stmt = select(CustomerEvent).where(CustomerEvent.customer_id == customer_id)
    if kind:
        stmt = stmt.where(CustomerEvent.kind == kind)
    return session.scalars(stmt.order_by(CustomerEvent.id)).all()


# --- channel codes in WeCom -------------------------------------------------------------------------

def test_creating_a_code_calls_add_contact_way_and_stores_config_id(session, org, wecom_server):
    code = make_code(session, org, staff=("sales1", "sales2"))
    call = wecom_server.calls("externalcontact/add_contact_way")[-1]
    assert call["body"]["type"] == 2 and call["body"]["scene"] == 2 and call["body"]["state"] == "dy_march"
    assert call["body"]["user"] == ["sales1", "sales2"]
    assert code.config_id in wecom_server.state()["ways"]
    assert code.qr_code and code.config_id in code.qr_code


def test_single_staff_code_is_type_1(session, org, wecom_server):
    make_code(session, org)
    assert wecom_server.calls("externalcontact/add_contact_way")[-1]["body"]["type"] == 1


def test_state_longer_than_30_or_taken_is_refused_before_wecom(session, org, wecom_server):
    with pytest.raises(channel_codes.ValidationFailed):
        make_code(session, org, state="x" * 31)
    make_code(session, org)
    with pytest.raises(channel_codes.ChannelStateTaken):
        make_code(session, org)
    assert len(wecom_server.calls("externalcontact/add_contact_way")) == 1


def test_staff_without_wecom_account_is_refused(session, org):
    with pytest.raises(channel_codes.ValidationFailed, match="企业微信"):
        channel_codes.create_code(session, org["viewer"], channel_codes.ChannelInput(
            name="x", channel="y", staff_ids=[org["admin"].id]))


def test_sales_may_not_manage_codes(session, org):
    with pytest.raises(channel_codes.PermissionDenied):
        channel_codes.create_code(session, Viewer.of(org["sales1"]), channel_codes.ChannelInput(
            name="x", channel="y", staff_ids=[org["sales1"].id]))


def test_update_and_delete_go_through_config_id(session, org, wecom_server):
    code = make_code(session, org)
    data = channel_codes.ChannelInput(name="抖音投放2", channel="抖音", state="dy_april", staff_ids=[org["sales2"].id])
    channel_codes.update_code(session, org["viewer"], code.id, data)
    update = wecom_server.calls("externalcontact/update_contact_way")[-1]["body"]
    assert update["config_id"] == code.config_id and update["user"] == ["sales2"] and update["state"] == "dy_april"
    channel_codes.delete_code(session, org["viewer"], code.id)
    assert wecom_server.calls("externalcontact/del_contact_way")[-1]["body"]["config_id"] == code.config_id
    assert code.config_id not in wecom_server.state()["ways"]
    assert channel_codes.list_codes(session) == []


# --- add_external_contact ---------------------------------------------------------------------------

def test_add_through_a_code_creates_an_owned_attributed_tagged_customer(session, org, driver, wecom_server,
                                                                         task_runner, tag):
    code = make_code(session, org, tag_ids=[tag.id])
    result = driver.add_external_contact("sales1", name="王先生", state="dy_march")
    assert result.accepted
    task_runner.drain()
    customer = customer_of(session, result.external_userid)
    assert customer.name == "王先生" and customer.source == "抖音" and customer.owner_id == org["sales1"].id
    assert "三月活动" in customer.source_detail
    attribution = session.scalar(select(ChannelAttribution).where(ChannelAttribution.customer_id == customer.id))
    assert attribution.channel_code_id == code.id and attribution.referrer_ref == "REF-42"
    assert attribution.new_customer
    assert session.get(CustomerTag, (customer.id, tag.id)) is not None
    assert [e.kind for e in events(session, customer.id, "wecom.add")] == ["wecom.add"]
    relation = session.scalar(select(WecomRelation).where(WecomRelation.external_userid == result.external_userid))
    assert relation.status == "active" and relation.staff_id == org["sales1"].id


def test_welcome_message_is_sent_first_within_the_window_and_once(session, org, driver, wecom_server, task_runner):
    make_code(session, org)
    result = driver.add_external_contact("sales1", state="dy_march")
    task_runner.drain()
    sends = wecom_server.calls("externalcontact/send_welcome_msg")
    assert [(s["body"]["welcome_code"], s["errcode"]) for s in sends] == [(result.welcome_code, 0)]
    assert sends[0]["body"]["text"]["content"] == "您好，我是您的专属顾问"
    first_get = wecom_server.calls("externalcontact/get")[0]
    assert sends[0]["seq"] < first_get["seq"]
    assert wecom_server.state()["welcome_codes"][result.welcome_code]["used"]


def test_a_redelivered_add_creates_nothing_twice(session, org, driver, wecom_server, task_runner):
    make_code(session, org)
    result = driver.add_external_contact("sales1", state="dy_march")
    task_runner.drain()
    assert driver.send(result.fields).accepted
    task_runner.drain()
    assert session.scalar(select(func.count()).select_from(Customer)
                          .where(Customer.wecom_external_userid == result.external_userid)) == 1
    assert session.scalar(select(func.count()).select_from(ChannelAdd)) == 1
    assert len(wecom_server.calls("externalcontact/send_welcome_msg")) == 1


def test_expired_welcome_code_is_logged_not_retried(session, org, driver, wecom_server, task_runner):
    make_code(session, org)
    result = driver.add_external_contact("sales1", state="dy_march")
    wecom_server.advance(seconds=25)
    task_runner.drain()
    sends = wecom_server.calls("externalcontact/send_welcome_msg")
    assert [s["errcode"] for s in sends] == [41051]
    customer = customer_of(session, result.external_userid)
    assert customer is not None  # the CRM work still happened
    assert [e.kind for e in events(session, customer.id, "wecom.welcome")] == ["wecom.welcome"]
    assert session.scalar(select(WecomInbox.status)) == "done"


def test_merge_with_the_mini_program_customer_by_unionid(session, org, driver, task_runner):
    make_code(session, org)
    existing = customers.intake(session, customers.CustomerInput(name="李四", wechat_unionid="union-li",
                                                                 source="miniprogram"), channel="miniprogram",
                                owner_id=org["sales1"].id).customer
    result = driver.add_external_contact("sales1", name="李四微信", state="dy_march", unionid="union-li")
    task_runner.drain()
    session.refresh(existing)
    assert existing.wecom_external_userid == result.external_userid
    assert session.scalar(select(func.count()).select_from(Customer)) == 1
    attribution = session.scalar(select(ChannelAttribution).where(ChannelAttribution.customer_id == existing.id))
    assert attribution is not None and not attribution.new_customer
    assert session.scalar(select(func.count()).select_from(Collision)) == 0


def test_collision_when_another_salesperson_owns_the_customer(session, org, driver, task_runner):
    make_code(session, org)
    customers.intake(session, customers.CustomerInput(name="赵五", wechat_unionid="union-zhao"),
                     channel="manual", owner_id=org["sales2"].id)
    driver.add_external_contact("sales1", state="dy_march", unionid="union-zhao")
    task_runner.drain()
    collision = session.scalar(select(Collision))
    assert collision.owner_id == org["sales2"].id and collision.claimant_id == org["sales1"].id
    assert collision.channel == "wecom"
    customer = session.get(Customer, collision.customer_id)
    assert customer.owner_id == org["sales2"].id


def test_unknown_staff_sends_the_new_customer_to_the_pool(session, org, driver, task_runner):
    result = driver.add_external_contact("stranger", name="路人")
    task_runner.drain()
    customer = customer_of(session, result.external_userid)
    assert customer.status == "pool" and customer.source == "wecom"


def test_daily_cap_swaps_in_the_backup_staff(session, org, driver, wecom_server, task_runner):
    code = make_code(session, org, daily_cap=2, backups=("backup",))
    for _ in range(2):
        driver.add_external_contact("sales1", state="dy_march")
        task_runner.drain()
    updates = wecom_server.calls("externalcontact/update_contact_way")
    assert [u["body"]["user"] for u in updates] == [["backup1"]]
    session.refresh(code)
    assert code.active_userids == ["backup1"] and code.swapped_on is not None
    assert wecom_server.state()["ways"][code.config_id]["user"] == ["backup1"]


def test_cap_is_not_reached_by_one_person_re_adding(session, org, driver, wecom_server, task_runner):
    make_code(session, org, daily_cap=2, backups=("backup",))
    first = driver.add_external_contact("sales1", state="dy_march")
    task_runner.drain()
    driver.add_external_contact("sales1", first.external_userid, state="dy_march")
    task_runner.drain()
    assert wecom_server.calls("externalcontact/update_contact_way") == []


def test_a_new_day_restores_the_primary_staff(session, org, driver, wecom_server, task_runner):
    from datetime import timedelta

    from core import clock

    code = make_code(session, org, daily_cap=1, backups=("backup",))
    driver.add_external_contact("sales1", state="dy_march")
    task_runner.drain()
    session.refresh(code)
    assert code.active_userids == ["backup1"]
    clock.freeze(clock.now() + timedelta(days=1))
    assert channel_codes.restore_swapped(session) == 1
    assert code.active_userids == ["sales1"] and code.swapped_on is None
    assert wecom_server.calls("externalcontact/update_contact_way")[-1]["body"]["user"] == ["sales1"]


def test_code_statistics(session, org, driver, task_runner):
    code = make_code(session, org, staff=("sales1", "sales2"))
    a = driver.add_external_contact("sales1", state="dy_march")
    b = driver.add_external_contact("sales2", state="dy_march")
    c = driver.add_external_contact("sales1", state="dy_march")
    task_runner.drain()
    driver.customer_deletes_staff("sales1", a.external_userid)
    driver.staff_deletes_customer("sales2", b.external_userid)
    task_runner.drain()
    customers.set_stage(session, customer_of(session, b.external_userid).id, "applied")
    customers.set_stage(session, customer_of(session, c.external_userid).id, "disbursed")
    s = channel_codes.stats(session, [code.id])[code.id]
    assert (s.adds, s.adds_today, s.deleted_by_customer, s.deleted_by_staff) == (3, 3, 1, 1)
    assert (s.customers, s.applied, s.disbursed) == (3, 2, 1)


def test_a_customer_who_applied_stays_counted_after_a_rejection(session, org, driver, task_runner):
    from lending import applications
    from lending.models import Application
    from tests.lending_product_factories import make_product

    code = make_code(session, org)
    added = driver.add_external_contact("sales1", state="dy_march")
    task_runner.drain()
    customer = customer_of(session, added.external_userid)
    assert channel_codes.stats(session, [code.id])[code.id].applied == 0
    product = make_product(session)
    app = applications.start_application(session, customer.id, product.current_version_id, 5_000_000, 12,
                                         viewer=None)
    assert isinstance(app, Application)
    customers.set_stage(session, customer.id, "lost")  # e.g. rejected, then given up
    s = channel_codes.stats(session, [code.id])[code.id]
    assert (s.customers, s.applied, s.disbursed) == (1, 1, 0)


# --- deletions ---------------------------------------------------------------------------------------

def test_customer_deleting_the_salesperson_flags_and_notifies_owner_and_supervisor(session, org, driver,
                                                                                   task_runner):
    result = driver.add_external_contact("sales1", name="钱六")
    task_runner.drain()
    driver.customer_deletes_staff("sales1", result.external_userid)
    task_runner.drain()
    customer = customer_of(session, result.external_userid)
    relation = session.scalar(select(WecomRelation).where(WecomRelation.external_userid == result.external_userid))
    assert relation.status == "deleted_by_customer"
    from bot.handlers.contacts import customers_who_deleted_staff

    assert customers_who_deleted_staff(session, org["sales1"].id) == [customer.id]
    told = set(session.scalars(select(Notification.staff_id).where(Notification.kind == "wecom.customer_deleted")))
    assert told == {org["sales1"].id, org["sup"].id}
    assert customer.owner_id == org["sales1"].id  # the setting is off by default


def test_customer_deleting_the_salesperson_releases_to_pool_when_configured(session, org, driver, task_runner,
                                                                            monkeypatch):
    from core.settings import reset_settings_cache

    result = driver.add_external_contact("sales1")
    task_runner.drain()
    monkeypatch.setenv("SCRM_WECOM_RELEASE_ON_CUSTOMER_DELETE", "true")
    reset_settings_cache()
    try:
        driver.customer_deletes_staff("sales1", result.external_userid)
        task_runner.drain()
    finally:
        monkeypatch.delenv("SCRM_WECOM_RELEASE_ON_CUSTOMER_DELETE")
        reset_settings_cache()
    customer = customer_of(session, result.external_userid)
    session.refresh(customer)
    assert customer.status == "pool" and customer.previous_owner_id == org["sales1"].id
    assert [e.summary for e in events(session, customer.id, "owner.release")][0].endswith("客户删除了销售")


def test_delete_by_transfer_is_not_flagged(session, org, driver, task_runner):
    result = driver.add_external_contact("sales1")
    task_runner.drain()
    driver.staff_deletes_customer("sales1", result.external_userid, source="DELETE_BY_TRANSFER")
    task_runner.drain()
    relation = session.scalar(select(WecomRelation).where(WecomRelation.external_userid == result.external_userid))
    assert relation.status == "transferred"
    customer = customer_of(session, result.external_userid)
    assert events(session, customer.id, "wecom.staff_deleted") == []


def test_half_add_records_a_pending_relation(session, org, driver, task_runner):
    result = driver.add_half_external_contact("sales1")
    task_runner.drain()
    relation = session.scalar(select(WecomRelation).where(WecomRelation.external_userid == result.external_userid))
    assert relation.status == "pending"
    assert customer_of(session, result.external_userid) is None


def test_edit_refreshes_the_remark(session, org, driver, task_runner):
    result = driver.add_external_contact("sales1", name="孙七")
    task_runner.drain()
    driver.edit_external_contact("sales1", result.external_userid, remark="孙总-房抵")
    task_runner.drain()
    relation = session.scalar(select(WecomRelation).where(WecomRelation.external_userid == result.external_userid))
    assert relation.remark == "孙总-房抵"
    assert len(events(session, customer_of(session, result.external_userid).id, "wecom.edit")) == 1

