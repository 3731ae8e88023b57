"""bot.push_notifications: crm notifications pushed to each staff member's WeCom, exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from bot import notifications
from core import clock, tasks
from crm import notify, org_service
from crm.models import Notification
from tests.factories import make_department, make_staff

PHONE = "13912345678"


@pytest.fixture
def staff(session):
    dept = make_department(session)
    return {"alice": make_staff(session, department=dept, wecom_userid="alice"),
            "bob": make_staff(session, department=dept, wecom_userid="bob"),
            "offline": make_staff(session, department=dept)}


def messages(wecom_server, userid):
    return [m for m in wecom_server.state()["app_messages"] if m["touser"] == [userid]]


def pushed_at(session, ids):
    session.expire_all()
    return {n.id: n.pushed_at for n in session.scalars(select(Notification).where(Notification.id.in_(ids)))}


def ids_of(session, staff_id):
    return list(session.scalars(select(Notification.id).where(Notification.staff_id == staff_id)
                                .order_by(Notification.id)))


def test_the_push_task_is_registered_so_crm_enqueues_it(session, staff, task_runner):
    assert tasks.is_registered(notifications.PUSH_TASK)
    with session.begin_nested():
        notify.notify(session, staff["alice"].id, "lead.assigned", "新线索：张三")
    session.commit()
    assert [name for name, _, _ in task_runner.sent] == [notifications.PUSH_TASK]


def test_one_notification_is_pushed_as_a_textcard_and_marked(session, staff, wecom_server, task_runner):
    notify.notify(session, staff["alice"].id, "lead.assigned", "新线索：张三", f"手机 {PHONE}，请尽快联系",
                  customer_id=None)
    notifications.push_pending()
    [message] = messages(wecom_server, "alice")
    assert message["msgtype"] == "textcard"
    assert message["content"]["title"] == "【新线索】新线索：张三"
    assert "139****5678" in message["content"]["description"] and PHONE not in str(message)
    assert all(v is not None for v in pushed_at(session, ids_of(session, staff["alice"].id)).values())


def test_several_notifications_are_batched_into_one_text_per_person(session, staff, wecom_server):
    for i in range(3):
        notify.notify(session, [staff["alice"].id, staff["bob"].id], "reminder", f"跟进提醒{i}")
    notifications.push_pending()
    for userid in ("alice", "bob"):
        [message] = messages(wecom_server, userid)
        assert message["msgtype"] == "text"
        text = message["content"]["content"]
        assert "您有 3 条新通知" in text and all(f"【跟进提醒】跟进提醒{i}" in text for i in range(3))


def test_staff_without_wecom_keep_notifications_in_the_console_only(session, staff, wecom_server):
    notify.notify(session, staff["offline"].id, "collision", "撞单提醒")
    assert notifications.push_pending() == 0
    assert wecom_server.calls("message/send") == []
    assert list(pushed_at(session, ids_of(session, staff["offline"].id)).values()) == [None]


def test_departed_staff_are_not_pushed_to(session, staff, wecom_server):
    org_service.mark_departed(session, staff["bob"].id)
    notify.notify(session, staff["bob"].id, "handover", "客户交接")
    notifications.push_pending()
    assert messages(wecom_server, "bob") == []


def test_old_unpushed_rows_are_not_pushed(session, staff, wecom_server):
    session.execute(insert(Notification).values(staff_id=staff["alice"].id, kind="reminder", title="旧提醒", body="",
                                                created_at=clock.now() - notifications.MAX_AGE - timedelta(hours=1)))
    notifications.push_pending()
    assert messages(wecom_server, "alice") == []


def test_a_pushed_notification_is_not_pushed_again(session, staff, wecom_server):
    notify.notify(session, staff["alice"].id, "reminder", "跟进提醒")
    notifications.push_pending()
    notifications.push_pending()
    assert len(messages(wecom_server, "alice")) == 1


def test_a_failed_send_keeps_the_rows_for_the_sweep(session, staff, wecom_server, task_runner):
    notify.notify(session, staff["alice"].id, "recycle.warning", "回收预警")
    wecom_server.arm(40058, times=1, path="message/send")
    notifications.push_pending()
    assert list(pushed_at(session, ids_of(session, staff["alice"].id)).values()) == [None]
    tasks.run_task(notifications.SWEEP_TASK, (), {})
    assert len(messages(wecom_server, "alice")) == 1
    assert all(pushed_at(session, ids_of(session, staff["alice"].id)).values())


def test_one_persons_failure_does_not_hold_back_the_others(session, staff, wecom_server):
    notify.notify(session, [staff["alice"].id, staff["bob"].id], "reminder", "跟进提醒")
    wecom_server.arm(40058, times=1, path="message/send")  # the first send (alice's) fails
    notifications.push_pending()
    assert len(messages(wecom_server, "bob")) == 1
    state = pushed_at(session, ids_of(session, staff["alice"].id) + ids_of(session, staff["bob"].id))
    assert sorted(v is None for v in state.values()) == [False, True]


def test_two_concurrent_workers_push_every_notification_exactly_once(committed, wecom_server, monkeypatch):
    monkeypatch.setattr(notifications, "BATCH", 3)  # many small batches: the workers interleave
    with committed() as s:
        dept = make_department(s)
        people = [make_staff(s, department=dept, wecom_userid=f"w{i}") for i in range(6)]
        for p in people:
            for j in range(4):
                notify.notify(s, p.id, "lead.assigned", f"线索-{p.id}-{j}")
        s.commit()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            notifications.push_pending()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    text = "\n".join(str(m["content"]) for m in wecom_server.state()["app_messages"])
    for p in people:
        for j in range(4):
            assert text.count(f"线索-{p.id}-{j}") == 1
    with committed() as s:
        assert s.scalar(select(Notification.id).where(Notification.pushed_at.is_(None))) is None
