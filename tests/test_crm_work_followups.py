"""Follow-ups, work tasks, co-handlers, reminders and the handover hooks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.audit import AuditLog
from crm import customers, followups
from crm.exceptions import CustomerNotFound
from crm.models import CustomerCollaborator, FollowUp, ReminderSent, WorkTask
from crm.work_exceptions import CollaboratorExists, CustomerNotWorkable, WorkForbidden, WorkValidation
from tests.factories import make_customer, make_org, make_staff
from tests.work_support import NOW, count, notifications, viewer


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"])


def test_logging_a_followup_moves_the_dates_stage_and_timeline(session, sales):
    clock.freeze(NOW)
    c = make_customer(session, owner=sales)
    nxt = NOW + timedelta(days=2)
    f = followups.log_followup(session, viewer(sales), c.id, kind="call", content="聊了额度", outcome="接通",
                               next_followup_at=nxt)
    assert (c.last_followup_at, c.next_followup_at, c.stage) == (NOW, nxt, "contacted")
    kinds = [e.kind for e in customers.timeline(session, c.id)]
    assert "followup" in kinds and "stage" in kinds
    assert session.scalar(select(AuditLog.id).where(AuditLog.action == "followup.create",
                                                    AuditLog.entity_id == str(c.id))) is not None
    assert f.staff_id == sales.id


def test_an_unreached_customer_keeps_the_new_stage(session, sales):
    c = make_customer(session, owner=sales)
    followups.log_followup(session, viewer(sales), c.id, kind="call", content="没人接", outcome="未接通")
    assert c.stage == "new"


def test_interest_moves_the_stage_to_intent(session, sales):
    c = make_customer(session, owner=sales)
    followups.log_followup(session, viewer(sales), c.id, kind="wechat", content="想贷 20 万", outcome="有意向")
    assert c.stage == "intent"


def test_a_followup_without_content_is_refused_and_writes_nothing(session, sales):
    c = make_customer(session, owner=sales)
    with pytest.raises(WorkValidation):
        followups.log_followup(session, viewer(sales), c.id, kind="call", content="  ")
    assert count(session, FollowUp) == 0


def test_a_next_followup_in_the_past_is_refused(session, sales):
    clock.freeze(NOW)
    c = make_customer(session, owner=sales)
    with pytest.raises(WorkValidation):
        followups.log_followup(session, viewer(sales), c.id, kind="call", content="x",
                               next_followup_at=NOW - timedelta(hours=1))


def test_another_salespersons_customer_is_not_found(session, org, sales):
    other = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=other)
    with pytest.raises(CustomerNotFound):
        followups.log_followup(session, viewer(sales), c.id, kind="call", content="越权")


def test_a_supervisor_in_scope_may_log_a_followup(session, org, sales):
    supervisor = make_staff(session, role="supervisor", department=org["branch"])
    c = make_customer(session, owner=sales)
    followups.log_followup(session, viewer(supervisor), c.id, kind="note", content="主管备注")
    assert count(session, FollowUp) == 1


def test_a_pool_customer_must_be_claimed_before_a_followup(session, sales):
    c = make_customer(session)
    with pytest.raises(CustomerNotWorkable):
        followups.log_followup(session, viewer(sales), c.id, kind="call", content="公海")


def test_a_collaborator_may_log_a_followup_and_sees_the_customer(session, org, sales):
    helper = make_staff(session, department=org["team_b"])
    c = make_customer(session, owner=sales)
    followups.add_collaborator(session, viewer(sales), c.id, helper.id)
    assert customers.get_customer(session, viewer(helper), c.id).id == c.id
    followups.log_followup(session, viewer(helper), c.id, kind="call", content="协作跟进")
    assert "collaborator" in [e.kind for e in customers.timeline(session, c.id)]


def test_adding_the_same_collaborator_twice_is_a_conflict(session, org, sales):
    helper = make_staff(session, department=org["team_b"])
    c = make_customer(session, owner=sales)
    followups.add_collaborator(session, viewer(sales), c.id, helper.id)
    with pytest.raises(CollaboratorExists):
        followups.add_collaborator(session, viewer(sales), c.id, helper.id)
    assert count(session, CustomerCollaborator) == 1


def test_a_collaborator_may_not_add_others(session, org, sales):
    helper = make_staff(session, department=org["team_b"])
    third = make_staff(session, department=org["team_b"])
    c = make_customer(session, owner=sales)
    followups.add_collaborator(session, viewer(sales), c.id, helper.id)
    with pytest.raises(WorkForbidden):
        followups.add_collaborator(session, viewer(helper), c.id, third.id)


def test_removing_a_collaborator_hides_the_customer_again(session, org, sales):
    helper = make_staff(session, department=org["team_b"])
    c = make_customer(session, owner=sales)
    followups.add_collaborator(session, viewer(sales), c.id, helper.id)
    assert followups.remove_collaborator(session, viewer(sales), c.id, helper.id)
    with pytest.raises(CustomerNotFound):
        customers.get_customer(session, viewer(helper), c.id)
    assert session.scalar(select(AuditLog.id).where(AuditLog.action == "customer.collaborator.remove"))


def test_closing_a_task_twice_changes_it_once(session, sales):
    t = followups.create_task(session, viewer(sales), title="回电")
    followups.close_task(session, viewer(sales), t.id, "done")
    followups.close_task(session, viewer(sales), t.id, "cancelled")
    assert t.status == "done"
    assert count(session, AuditLog, AuditLog.action.like("task.%"), AuditLog.entity_id == str(t.id)) == 2


def _at_shanghai(day: date, hour: int) -> datetime:
    return clock.start_of_business_day(day) + timedelta(hours=hour)


def test_reminders_split_due_today_and_overdue_by_shanghai_date(session, sales):
    # 2026-03-10 00:30 in Shanghai is still 2026-03-09 in UTC.
    clock.freeze(datetime(2026, 3, 9, 16, 30, tzinfo=UTC))
    today = clock.today()
    assert today == date(2026, 3, 10)
    a = make_customer(session, owner=sales, name="今天")
    b = make_customer(session, owner=sales, name="昨天")
    c = make_customer(session, owner=sales, name="明天")
    a.next_followup_at = _at_shanghai(today, 9)
    b.next_followup_at = _at_shanghai(today, -1)  # 23:00 on the 9th, Shanghai
    c.next_followup_at = _at_shanghai(today, 24)
    t = followups.create_task(session, viewer(sales), title="准备材料", due_at=_at_shanghai(today, 23))
    session.flush()
    r = followups.reminders_for(session, viewer(sales), today)
    assert [(i.kind, i.item_id) for i in r.due_today] == [("followup", a.id), ("task", t.id)]
    assert [i.item_id for i in r.overdue] == [b.id]


def test_reminders_are_personal(session, org, sales):
    clock.freeze(NOW)
    other = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=other)
    c.next_followup_at = NOW + timedelta(hours=1)
    session.flush()
    r = followups.reminders_for(session, viewer(sales), clock.today())
    assert r.due_today == [] and r.overdue == []


def test_the_reminder_job_notifies_once_per_item_per_day(session, sales):
    clock.freeze(NOW)
    c = make_customer(session, owner=sales)
    c.next_followup_at = NOW + timedelta(minutes=10)
    session.flush()
    assert followups.send_due_reminders(session) == 1
    assert followups.send_due_reminders(session) == 0
    clock.advance(timedelta(hours=3))
    assert followups.send_due_reminders(session) == 0
    assert len(notifications(session, sales.id, "reminder")) == 1
    clock.advance(timedelta(days=1))  # still not done the next day: reminded again, once
    assert followups.send_due_reminders(session) == 1
    assert count(session, ReminderSent) == 2


def test_the_reminder_job_waits_until_the_item_is_near(session, sales):
    clock.freeze(NOW)
    c = make_customer(session, owner=sales)
    c.next_followup_at = NOW + timedelta(hours=5)
    session.flush()
    assert followups.send_due_reminders(session) == 0


def test_the_reminder_task_runs_through_the_task_runner(session, sales, task_runner):
    from core.tasks import run_task

    clock.freeze(NOW)
    followups.create_task(session, viewer(sales), title="签合同", due_at=NOW - timedelta(hours=1))
    session.commit()
    assert run_task("crm.followup_reminders", (), {}) == 1
    assert run_task("crm.followup_reminders", (), {}) == 0


def test_open_items_and_reassignment_for_the_handover(session, org, sales):
    successor = make_staff(session, department=org["team_a"])
    c1 = make_customer(session, owner=sales)
    c2 = make_customer(session, owner=sales)
    t1 = followups.create_task(session, viewer(sales), title="一", customer_id=c1.id)
    t2 = followups.create_task(session, viewer(sales), title="二", customer_id=c2.id)
    followups.create_task(session, viewer(sales), title="无客户")
    assert {i.id for i in followups.open_items_for(session, sales.id)} >= {t1.id, t2.id}
    result = followups.reassign_items(session, sales.id, {c1.id: successor.id})
    assert result.moved == 1
    assert session.get(WorkTask, t1.id).staff_id == successor.id
    assert session.get(WorkTask, t2.id).staff_id == sales.id
