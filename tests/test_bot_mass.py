"""Mass messages to a segment (群发), over real HTTP with the WeCom simulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import mass_messages
from bot.models_mass import MassMessage, MassMessageQuota, MassMessageRecipient, MassMessageSend
from core import clock
from crm import segments
from crm.scope import Viewer
from tests.factories import make_customer, make_department, make_staff


@pytest.fixture
def org(session):
    dept = make_department(session, "销售公司")
    sales1 = make_staff(session, department=dept, username="sales1", display_name="销售一", wecom_userid="sales1")
    sales2 = make_staff(session, department=dept, username="sales2", display_name="销售二", wecom_userid="sales2")
    admin = make_staff(session, role="admin", department=dept, username="boss", display_name="老板")
    session.flush()
    return {"sales1": sales1, "sales2": sales2, "admin": admin, "viewer": Viewer.of(admin)}


def contact(wecom_server, session, owner, ext, *, region="上海", name="客户"):
    """A customer who is a WeCom contact of ``owner`` (registered in the simulator, mirrored here)."""
    wecom_server.admin("contact", {"userid": owner.wecom_userid, "external_userid": ext, "name": name,
                                   "state": "", "unionid": "", "welcome": False})
    return make_customer(session, owner=owner, name=name, wecom_external_userid=ext, region=region)


@pytest.fixture
def shanghai(session, org):
    return segments.create_segment(session, None, "上海客户", {"op": "and", "rules": [
        {"field": "region", "cmp": "equals", "value": "上海"}]}, for_mass_message=True)


def draft(session, org, segment, text="本周利率优惠", **extra):
    return mass_messages.create_message(session, org["viewer"], mass_messages.MassInput(
        title="三月活动", segment_id=segment.id, text=text, **extra))


def submit(session, org, message):
    mass_messages.submit(session, org["viewer"], message.id)
    session.commit()  # the outbox sends bot.send_mass_message after commit


def fresh(session, message):
    session.expire_all()  # the tasks wrote through their own sessions
    return session.get(MassMessage, message.id)


def statuses(session, message):
    rows = session.execute(select(MassMessageRecipient.external_userid, MassMessageRecipient.status)
                           .where(MassMessageRecipient.mass_message_id == message.id)).all()
    return dict(rows)


def test_one_template_per_sender_with_their_own_customers(session, org, shanghai, wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_a1")
    contact(wecom_server, session, org["sales1"], "wm_a2")
    contact(wecom_server, session, org["sales2"], "wm_b1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    task_runner.drain()
    calls = wecom_server.calls("externalcontact/add_msg_template")
    bodies = {c["body"]["sender"]: c["body"] for c in calls}
    assert len(calls) == 2
    assert sorted(bodies["sales1"]["external_userid"]) == ["wm_a1", "wm_a2"]
    assert bodies["sales2"]["external_userid"] == ["wm_b1"]
    assert {b["chat_type"] for b in bodies.values()} == {"single"}
    assert bodies["sales1"]["text"]["content"] == "本周利率优惠"
    sends = session.scalars(select(MassMessageSend).where(MassMessageSend.mass_message_id == message.id)).all()
    assert {s.status for s in sends} == {"created"} and all(s.msgid for s in sends)
    assert fresh(session, message).status == "sent"


def test_nothing_is_delivered_before_the_staff_member_confirms(session, org, shanghai, wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    task_runner.drain()
    task_runner.submit("bot.poll_mass_messages", (message.id,), {}, None)
    task_runner.drain()
    assert statuses(session, message) == {"wm_a1": "pending"}
    assert fresh(session, message).status == "sent"


def test_statuses_after_confirm_and_poll(session, org, shanghai, wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_a1")
    contact(wecom_server, session, org["sales1"], "wm_a2")
    contact(wecom_server, session, org["sales2"], "wm_b1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    task_runner.drain()
    # wm_a2 deletes sales1 before sales1 confirms: WeCom reports status 2 (not a contact).
    wecom_server.admin("contact/remove", {"userid": "sales1", "external_userid": "wm_a2"})
    driver = wecom_server.driver()
    for send in session.scalars(select(MassMessageSend).where(MassMessageSend.sender_userid == "sales1")):
        driver.confirm_mass_message(send.msgid, "sales1")
    driver.close()
    wecom_server.configure(page_size=1)  # cursor paging of the send results
    task_runner.submit("bot.poll_mass_messages", (), {}, None)
    task_runner.drain()
    assert statuses(session, message) == {"wm_a1": "sent", "wm_a2": "not_a_contact", "wm_b1": "pending"}
    month, _ = mass_messages.month_of(clock.now())
    a2 = session.scalar(select(MassMessageRecipient).where(MassMessageRecipient.external_userid == "wm_a2"))
    assert session.get(MassMessageQuota, (a2.customer_id, month)).sent_count == 0  # undelivered: given back
    assert len(wecom_server.calls("get_groupmsg_send_result")) >= 2
    assert fresh(session, message).status == "sent"  # sales2 has not confirmed yet


def test_message_is_done_when_every_sender_confirmed(session, org, shanghai, wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    task_runner.drain()
    send = session.scalar(select(MassMessageSend))
    wecom_server.driver().confirm_mass_message(send.msgid, "sales1")
    task_runner.submit("bot.poll_mass_messages", (), {}, None)
    task_runner.drain()
    session.refresh(send)
    assert send.status == "done" and send.task_status == 2
    assert fresh(session, message).status == "done"


def test_customer_at_the_monthly_limit_is_skipped_and_recorded(session, org, shanghai, wecom_server, task_runner):
    full = contact(wecom_server, session, org["sales1"], "wm_full")
    contact(wecom_server, session, org["sales1"], "wm_ok")
    month, days = mass_messages.month_of(clock.now())
    session.add(MassMessageQuota(customer_id=full.id, month=month, sent_count=days))
    session.flush()
    message = draft(session, org, shanghai)
    p = mass_messages.preview(session, org["viewer"], message)
    assert (p.total, p.over_limit, p.to_send, p.by_sender) == (2, 1, 1, {"sales1": 1})
    submit(session, org, message)
    task_runner.drain()
    assert statuses(session, message) == {"wm_full": "skipped_limit", "wm_ok": "pending"}
    skipped = session.scalar(select(MassMessageRecipient).where(MassMessageRecipient.external_userid == "wm_full"))
    assert month in skipped.reason and str(days) in skipped.reason
    assert wecom_server.calls("add_msg_template")[0]["body"]["external_userid"] == ["wm_ok"]
    assert session.get(MassMessageQuota, (full.id, month)).sent_count == days


def test_quota_is_counted_per_month(session, org, shanghai, wecom_server, task_runner):
    customer = contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    mass_messages.submit(session, org["viewer"], message.id)
    month, _ = mass_messages.month_of(clock.now())
    assert session.get(MassMessageQuota, (customer.id, month)).sent_count == 1


def test_customers_without_wecom_are_not_a_contact(session, org, shanghai, wecom_server, task_runner):
    make_customer(session, owner=org["sales1"], name="线下客户", region="上海")
    contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    assert mass_messages.preview(session, org["viewer"], message).not_a_contact == 1
    mass_messages.submit(session, org["viewer"], message.id)
    counts = mass_messages.recipient_counts(session, message.id)
    assert counts == {"not_a_contact": 1, "pending": 1}


def test_recipients_are_the_segment_members_only(session, org, shanghai, wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_sh")
    contact(wecom_server, session, org["sales1"], "wm_bj", region="北京")
    message = draft(session, org, shanghai)
    mass_messages.submit(session, org["viewer"], message.id)
    assert set(statuses(session, message)) == {"wm_sh"}


def test_a_message_is_submitted_once(session, org, shanghai, wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    mass_messages.submit(session, org["viewer"], message.id)
    with pytest.raises(mass_messages.MassMessageAlreadySent):
        mass_messages.submit(session, org["viewer"], message.id)


def test_more_than_nine_attachments_are_refused(session, org, shanghai):
    link = {"msgtype": "link", "link": {"title": "t", "url": "https://example.com"}}
    with pytest.raises(mass_messages.ValidationFailed, match="9"):
        draft(session, org, shanghai, attachments=[link] * 10)


def test_sales_may_not_create_mass_messages(session, org, shanghai):
    with pytest.raises(mass_messages.PermissionDenied):
        mass_messages.create_message(session, Viewer.of(org["sales1"]), mass_messages.MassInput(
            title="x", segment_id=shanghai.id, text="y"))


def test_more_than_10000_recipients_of_one_sender_are_split(session, org, shanghai, monkeypatch):
    monkeypatch.setattr(mass_messages, "MAX_PER_TEMPLATE", 2)
    for i in range(5):
        make_customer(session, owner=org["sales1"], region="上海", wecom_external_userid=f"wm_{i}")
    message = draft(session, org, shanghai)
    mass_messages.submit(session, org["viewer"], message.id)
    sends = session.scalars(select(MassMessageSend).where(MassMessageSend.mass_message_id == message.id)).all()
    assert sorted(s.recipients for s in sends) == [1, 2, 2]
    assert session.scalar(select(MassMessageRecipient.id).where(MassMessageRecipient.send_id.is_(None),
                                                                MassMessageRecipient.status == "pending")) is None


def test_reminders_at_most_three_in_24_hours(session, org, shanghai, wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    task_runner.drain()
    for _ in range(3):
        assert mass_messages.remind(session, org["viewer"], message.id) == 1
    with pytest.raises(mass_messages.RemindLimitReached):
        mass_messages.remind(session, org["viewer"], message.id)
    assert len(wecom_server.calls("remind_groupmsg_send")) == 3


def test_a_refused_template_fails_its_recipients_and_gives_the_quota_back(session, org, shanghai, wecom_server,
                                                                         task_runner):
    customer = contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    wecom_server.arm(40058, path="add_msg_template")
    task_runner.drain()
    assert statuses(session, message) == {"wm_a1": "failed"}
    month, _ = mass_messages.month_of(clock.now())
    assert session.get(MassMessageQuota, (customer.id, month)).sent_count == 0
    assert fresh(session, message).status == "failed"


def _die_after_the_call(send_id):
    """What a worker SIGKILLed after WeCom created the template, before its commit, leaves behind: the send
    claimed (committed), the template in WeCom, nothing else of the attempt (rolled back)."""
    from core.db import unit_of_work

    with unit_of_work() as s:
        assert mass_messages.start_send(s, send_id)
    with pytest.raises(RuntimeError), unit_of_work() as s:
        assert mass_messages.create_template(s, send_id) == "created"
        raise RuntimeError("worker killed before the commit")


def test_a_retry_after_a_lost_answer_adopts_the_template_and_sends_nobody_twice(session, org, shanghai,
                                                                                 wecom_server, task_runner):
    contact(wecom_server, session, org["sales1"], "wm_a1")
    contact(wecom_server, session, org["sales1"], "wm_a2")
    contact(wecom_server, session, org["sales2"], "wm_b1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    first = session.scalar(select(MassMessageSend).where(MassMessageSend.sender_userid == "sales1"))
    _die_after_the_call(first.id)
    session.expire_all()
    assert session.get(MassMessageSend, first.id).status == "submitting"
    task_runner.drain()  # the task again (Celery redelivers it after the visibility timeout)
    calls = wecom_server.calls("externalcontact/add_msg_template")
    assert sorted(c["body"]["sender"] for c in calls) == ["sales1", "sales2"]  # sales1's template created once
    state = wecom_server.state()
    per_customer = [r["external_userid"] for m in state["messages"].values() for r in m["results"]]
    assert sorted(per_customer) == ["wm_a1", "wm_a2", "wm_b1"]
    session.expire_all()
    adopted = session.get(MassMessageSend, first.id)
    sales1_msgid = next(m["msgid"] for m in state["messages"].values() if m["creator"] == "sales1")
    assert (adopted.status, adopted.msgid) == ("created", sales1_msgid)
    assert statuses(session, message) == {"wm_a1": "pending", "wm_a2": "pending", "wm_b1": "pending"}
    assert fresh(session, message).status == "sent"


def test_a_claimed_send_whose_call_never_reached_wecom_is_sent_on_retry(session, org, shanghai, wecom_server,
                                                                       task_runner):
    from core.db import unit_of_work

    contact(wecom_server, session, org["sales1"], "wm_a1")
    message = draft(session, org, shanghai)
    submit(session, org, message)
    send = session.scalar(select(MassMessageSend))
    with unit_of_work() as s:  # claimed, then the worker died before calling WeCom
        assert mass_messages.start_send(s, send.id)
    task_runner.drain()
    calls = wecom_server.calls("externalcontact/add_msg_template")
    assert [c["body"]["external_userid"] for c in calls] == [["wm_a1"]]
    session.expire_all()
    assert session.get(MassMessageSend, send.id).status == "created"
    assert fresh(session, message).status == "sent"
