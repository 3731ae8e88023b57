"""Automation rules: event rules through crm.customer_changed, time rules through crm.automation_scan,
firing once per window, and the loop guard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock
from crm import automation, customers, followups
from crm.models import AutomationFiring, Customer, WorkTask
from crm.work_exceptions import InvalidRule, WorkForbidden
from tests.factories import make_customer, make_org, make_staff
from tests.work_support import NOW, count, notifications, viewer


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["company"])


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"])


@pytest.fixture(autouse=True)
def _frozen():
    clock.freeze(NOW)


def rule(session, manager, trigger, action, conditions=(), value=None):
    return automation.create_rule(session, viewer(manager), name=f"规则-{trigger}", trigger=trigger,
                                  trigger_value=value, conditions=list(conditions), action=action)


def test_grade_a_creates_a_task_for_the_owner(session, manager, sales, task_runner):
    rule(session, manager, "grade_changed", {"type": "create_task", "title": "A 类客户 {name} 两小时内回访",
                                             "due_hours": 2},
         [{"field": "grade", "op": "eq", "value": "A"}])
    c = make_customer(session, owner=sales, name="钱七")
    customers.set_grade(session, viewer(sales), c.id, "A")
    session.commit()
    assert task_runner.drain() == ["crm.customer_changed"]
    task = session.scalar(select(WorkTask).where(WorkTask.customer_id == c.id))
    assert (task.staff_id, task.title, task.due_at) == (sales.id, "A 类客户 钱七 两小时内回访", NOW + timedelta(hours=2))
    assert "automation" in [e.kind for e in customers.timeline(session, c.id)]


def test_a_grade_not_matching_the_condition_fires_nothing(session, manager, sales, task_runner):
    rule(session, manager, "grade_changed", {"type": "create_task", "title": "x", "due_hours": 2},
         [{"field": "grade", "op": "eq", "value": "A"}])
    c = make_customer(session, owner=sales)
    customers.set_grade(session, viewer(sales), c.id, "B")
    session.commit()
    task_runner.drain()
    assert count(session, WorkTask) == 0


def test_the_same_event_twice_fires_once(session, manager, sales):
    r = rule(session, manager, "stage_changed", {"type": "notify", "target": "owner", "title": "{name} 已进件"},
             [{"field": "stage", "op": "eq", "value": "applied"}])
    c = make_customer(session, owner=sales)
    c.stage = "applied"
    session.flush()
    assert automation.handle_change(session, c.id, "stage", "visited", "applied") == [r.id]
    assert automation.handle_change(session, c.id, "stage", "visited", "applied") == []
    assert len(notifications(session, sales.id, "automation")) == 1


def test_unassigned_for_24_hours_notifies_the_supervisor_once(session, org, manager):
    supervisor = make_staff(session, role="supervisor", department=org["company"])
    r = rule(session, manager, "unassigned_for",
             {"type": "notify", "target": "supervisor", "title": "{name} 24 小时未分配"}, value=24)
    c = make_customer(session, name="孙八")  # in the default pool (no department): the rule author's department
    assert automation.scan(session) == {r.id: 0}
    clock.advance(timedelta(hours=24, minutes=1))
    automation.scan(session)
    automation.scan(session)
    mine = notifications(session, supervisor.id, "automation")
    assert [(n.title, n.customer_id) for n in mine] == [("孙八 24 小时未分配", c.id)]


def test_the_supervisor_of_the_owners_department_is_notified(session, org, manager, sales):
    team_sup = make_staff(session, role="supervisor", department=org["team_a"])
    other_sup = make_staff(session, role="supervisor", department=org["team_b"])
    rule(session, manager, "no_followup_for", {"type": "notify", "target": "supervisor", "title": "久未跟进"}, value=3)
    make_customer(session, owner=sales)
    clock.advance(timedelta(days=3, hours=1))
    automation.scan(session)
    assert len(notifications(session, team_sup.id, "automation")) == 1
    assert notifications(session, other_sup.id) == []


def test_a_new_spell_fires_again_but_a_followup_resets_the_clock(session, manager, sales):
    rule(session, manager, "no_followup_for", {"type": "notify", "target": "owner", "title": "久未跟进"}, value=3)
    c = make_customer(session, owner=sales)
    clock.advance(timedelta(days=4))
    automation.scan(session)
    followups.log_followup(session, viewer(sales), c.id, kind="call", content="回访")
    clock.advance(timedelta(days=1))
    automation.scan(session)  # last follow-up one day ago: nothing
    assert len(notifications(session, sales.id, "automation")) == 1
    clock.advance(timedelta(days=3))
    automation.scan(session)
    assert len(notifications(session, sales.id, "automation")) == 2


def test_no_followup_counts_from_when_the_current_owner_got_the_customer(session, manager, sales):
    from crm import pool_service

    rule(session, manager, "no_followup_for", {"type": "notify", "target": "owner", "title": "久未跟进"}, value=3)
    c = make_customer(session)
    c.last_followup_at = NOW - timedelta(days=30)  # by a previous owner
    session.flush()
    pool_service.claim(session, viewer(sales), c.id)
    automation.scan(session)
    assert notifications(session, sales.id, "automation") == []
    clock.advance(timedelta(days=3, hours=1))
    automation.scan(session)
    assert len(notifications(session, sales.id, "automation")) == 1


def test_the_scan_runs_as_a_periodic_task(session, manager, sales):
    from core.tasks import PERIODIC, run_task

    assert "crm.automation_scan" in PERIODIC and "crm.followup_reminders" in PERIODIC
    r = rule(session, manager, "customer_created", {"type": "create_task", "title": "新客户 {name}", "due_hours": 1})
    make_customer(session, owner=sales)
    session.commit()
    assert run_task("crm.automation_scan", (), {}) == {r.id: 1}
    assert run_task("crm.automation_scan", (), {}) == {r.id: 0}


def test_set_grade_rules_cannot_loop(session, manager, sales, task_runner):
    a_to_b = rule(session, manager, "grade_changed", {"type": "set_grade", "grade": "B"},
                  [{"field": "grade", "op": "eq", "value": "A"}])
    b_to_a = rule(session, manager, "grade_changed", {"type": "set_grade", "grade": "A"},
                  [{"field": "grade", "op": "eq", "value": "B"}])
    c = make_customer(session, owner=sales)
    customers.set_grade(session, viewer(sales), c.id, "A")
    session.commit()
    ran = task_runner.drain(limit=50)
    assert len(ran) < 50 and task_runner.sent == []
    fired = session.scalars(select(AutomationFiring.rule_id).where(AutomationFiring.customer_id == c.id)).all()
    assert sorted(fired) == sorted([a_to_b.id, b_to_a.id])
    session.expire_all()
    assert session.get(Customer, c.id).grade == "A"


def test_a_rule_setting_the_grade_it_listens_to_does_not_retrigger_itself(session, manager, sales, task_runner):
    rule(session, manager, "grade_changed", {"type": "set_grade", "grade": "C"})
    c = make_customer(session, owner=sales)
    customers.set_grade(session, viewer(sales), c.id, "A")
    session.commit()
    assert task_runner.drain(limit=50) == ["crm.customer_changed", "crm.customer_changed"]
    session.expire_all()
    assert session.get(Customer, c.id).grade == "C"


def test_only_managers_edit_rules(session, sales):
    with pytest.raises(WorkForbidden):
        automation.create_rule(session, viewer(sales), name="x", trigger="grade_changed",
                               action={"type": "set_grade", "grade": "A"})


@pytest.mark.parametrize("kwargs", [
    {"trigger": "when_it_rains", "action": {"type": "set_grade", "grade": "A"}},
    {"trigger": "unassigned_for", "action": {"type": "set_grade", "grade": "A"}},
    {"trigger": "grade_changed", "action": {"type": "set_grade", "grade": "Z"}},
    {"trigger": "grade_changed", "action": {"type": "notify", "target": "staff", "staff_id": 999999}},
    {"trigger": "grade_changed", "action": {"type": "set_grade", "grade": "A"},
     "conditions": [{"field": "stage", "op": "eq", "value": "nowhere"}]},
])
def test_bad_rules_are_refused_in_chinese(session, manager, kwargs):
    with pytest.raises(InvalidRule) as err:
        automation.create_rule(session, viewer(manager), name="坏规则", **kwargs)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.value.message)


def test_a_disabled_rule_does_not_fire(session, manager, sales):
    r = rule(session, manager, "customer_created", {"type": "create_task", "title": "新客户", "due_hours": 1})
    automation.set_active(session, viewer(manager), r.id, False)
    make_customer(session, owner=sales)
    assert automation.scan(session) == {}
