"""Recycle rules (掉公海): conditions with AND / OR, warning once before, protection, history, the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import clock, tasks
from crm import allocation, customers, pool_service
from crm.models import Customer, CustomerStatus, Grade, Notification, OwnerChange
from crm.pool_exceptions import InvalidPoolRule
from crm.pool_service import RecycleRuleInput
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen():
    clock.freeze(T0)


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"])


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"])


def grade_d(session):
    """Grade D (seeded by the migration; a PostgreSQL `committed` test truncates the seed away)."""
    if session.get(Grade, "D") is None:
        session.add(Grade(code="D", label="D", rank=99))
        session.flush()


def rule(session, manager, **kw):
    kw.setdefault("name", "规则")
    return pool_service.save_recycle_rule(session, Viewer.of(manager), RecycleRuleInput(**kw))


def warnings_for(session, staff_id):
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.staff_id == staff_id, Notification.kind == "recycle.warning")) or 0


def run_at(session, instant):
    clock.freeze(instant)
    return pool_service.run_recycle(session)


def test_no_followup_customer_is_warned_then_recycled(session, sales, manager):
    rule(session, manager, no_followup_days=3, warn_hours=24)
    c = make_customer(session, owner=sales)
    assert run_at(session, T0 + timedelta(days=2, hours=1)).warned == 1
    assert c.status == CustomerStatus.OWNED
    run = run_at(session, T0 + timedelta(days=3, hours=2))
    assert run.recycled == 1
    session.refresh(c)
    assert (c.status, c.owner_id, c.previous_owner_id) == (CustomerStatus.POOL, None, sales.id)
    assert c.released_at == T0 + timedelta(days=3, hours=2)


def test_warning_is_sent_once_per_customer_per_cycle(session, sales, manager):
    rule(session, manager, no_followup_days=3, warn_hours=24)
    make_customer(session, owner=sales)
    run_at(session, T0 + timedelta(days=2, hours=1))
    run_at(session, T0 + timedelta(days=2, hours=2))
    run_at(session, T0 + timedelta(days=2, hours=3))
    assert warnings_for(session, sales.id) == 1


def test_no_customer_is_recycled_before_its_owner_was_warned_long_enough(session, sales, manager):
    c = make_customer(session, owner=sales)
    clock.freeze(T0 + timedelta(days=30))
    rule(session, manager, no_followup_days=3, warn_hours=24)
    run = run_at(session, T0 + timedelta(days=30))
    assert (run.warned, run.recycled) == (1, 0)
    assert run_at(session, T0 + timedelta(days=30, hours=23)).recycled == 0
    assert run_at(session, T0 + timedelta(days=31)).recycled == 1
    session.refresh(c)
    assert c.status == CustomerStatus.POOL


def test_a_recent_followup_keeps_the_customer(session, sales, manager):
    rule(session, manager, no_followup_days=3, warn_hours=0)
    c = make_customer(session, owner=sales)
    c.last_followup_at = T0 + timedelta(days=2)
    session.flush()
    assert run_at(session, T0 + timedelta(days=4)).recycled == 0
    assert run_at(session, T0 + timedelta(days=5, hours=1)).recycled == 1


def test_and_needs_every_condition(session, sales, manager):
    grade_d(session)
    rule(session, manager, combinator="and", no_followup_days=3, grades=["D"], warn_hours=0)
    graded = make_customer(session, owner=sales, grade="D")
    other = make_customer(session, owner=sales)
    run_at(session, T0 + timedelta(days=4))
    session.refresh(graded), session.refresh(other)
    assert graded.status == CustomerStatus.POOL and other.status == CustomerStatus.OWNED


def test_or_needs_any_condition(session, sales, manager):
    rule(session, manager, combinator="or", no_followup_days=30, stages=["lost"], warn_hours=0)
    lost = make_customer(session, owner=sales)
    customers.set_stage(session, lost.id, "lost")
    fresh = make_customer(session, owner=sales)
    run_at(session, T0 + timedelta(days=4))  # past the new-lead protection
    session.refresh(lost), session.refresh(fresh)
    assert lost.status == CustomerStatus.POOL and fresh.status == CustomerStatus.OWNED


def test_not_converted_in_m_days_recycles_only_stages_before_the_converted_one(session, sales, manager):
    rule(session, manager, not_converted_days=10, converted_stage="applied", warn_hours=0)
    stuck = make_customer(session, owner=sales)
    customers.set_stage(session, stuck.id, "intent")
    converted = make_customer(session, owner=sales)
    customers.set_stage(session, converted.id, "signed")
    run_at(session, T0 + timedelta(days=11))
    session.refresh(stuck), session.refresh(converted)
    assert stuck.status == CustomerStatus.POOL and converted.status == CustomerStatus.OWNED


def test_protected_new_lead_is_not_recycled_until_protection_ends(session, sales, manager):
    rule(session, manager, no_followup_days=1, warn_hours=0)
    c = make_customer(session)
    allocation.allocate(session, [c.id], mode="manual", to_staff_id=sales.id)
    session.refresh(c)
    assert c.protected_until == T0 + timedelta(days=3)
    assert run_at(session, T0 + timedelta(days=2)).recycled == 0
    assert run_at(session, T0 + timedelta(days=3, minutes=1)).recycled == 1


def test_recycle_writes_owner_history_timeline_and_tells_the_owner(session, sales, manager, org):
    target = pool_service.create_pool(session, Viewer.of(manager), "回收池", org["branch"].id)
    rule(session, manager, no_followup_days=1, warn_hours=0, target_pool_id=target.id)
    c = make_customer(session, owner=sales)
    run_at(session, T0 + timedelta(days=4))
    change = session.scalars(select(OwnerChange).where(OwnerChange.customer_id == c.id)
                             .order_by(OwnerChange.id.desc())).first()
    assert (change.reason, change.from_owner_id, change.to_pool_id) == ("recycle", sales.id, target.id)
    assert "owner.recycle" in [e.kind for e in customers.timeline(session, c.id)]
    assert session.get(Customer, c.id).pool_id == target.id
    assert session.scalar(select(func.count()).select_from(Notification).where(
        Notification.staff_id == sales.id, Notification.kind == "recycle.done")) == 1


def test_rule_for_a_department_leaves_other_departments_alone(session, sales, manager, org):
    rule(session, manager, no_followup_days=1, warn_hours=0, department_id=org["team_b"].id)
    c = make_customer(session, owner=sales)
    run_at(session, T0 + timedelta(days=5))
    session.refresh(c)
    assert c.status == CustomerStatus.OWNED


def test_rule_needs_at_least_one_condition(session, manager):
    with pytest.raises(InvalidPoolRule, match="至少设置一个回收条件"):
        rule(session, manager)


def test_rule_refuses_an_unknown_grade(session, manager):
    with pytest.raises(InvalidPoolRule, match="未知的客户等级"):
        rule(session, manager, grades=["Z"])


def test_recycle_job_is_registered_periodic_and_runs(session, sales, manager):
    assert tasks.PERIODIC["crm.recycle_pool"] == 600
    rule(session, manager, no_followup_days=1, warn_hours=0)
    c = make_customer(session, owner=sales)
    clock.freeze(T0 + timedelta(days=4))
    assert tasks.run_task("crm.recycle_pool", (), {}) == {"warned": 1, "recycled": 1}
    session.refresh(c)
    assert c.status == CustomerStatus.POOL


def test_a_claimed_customer_gets_the_full_period_whatever_the_previous_owner_did(session, sales, manager, org):
    """No follow-up for N days counts from when the current owner got the customer: a pool customer
    whose last follow-up (by someone else) is a month old is not recycled the day after its claim."""
    rule(session, manager, no_followup_days=3, warn_hours=24)
    c = make_customer(session)
    c.last_followup_at = T0 - timedelta(days=30)
    session.flush()
    clock.freeze(T0)
    pool_service.claim(session, Viewer.of(sales), c.id)
    assert run_at(session, T0 + timedelta(hours=1)).warned == 0
    assert run_at(session, T0 + timedelta(days=1, hours=2)).recycled == 0
    session.refresh(c)
    assert c.status == CustomerStatus.OWNED
    assert run_at(session, T0 + timedelta(days=2, hours=1)).warned == 1


def test_a_customer_followed_up_after_its_warning_is_warned_again_before_recycling(session, sales, manager):
    rule(session, manager, no_followup_days=3, warn_hours=24)
    c = make_customer(session, owner=sales)
    assert run_at(session, T0 + timedelta(days=2, hours=1)).warned == 1
    clock.freeze(T0 + timedelta(days=2, hours=5))
    c.last_followup_at = clock.now()
    session.flush()
    # Three days later the customer is neglected again: the owner hears of it first, once more.
    run = run_at(session, T0 + timedelta(days=4, hours=6))
    assert (run.warned, run.recycled) == (1, 0)
    assert warnings_for(session, sales.id) == 2
    assert run_at(session, T0 + timedelta(days=5, hours=5)).recycled == 0  # the new warning is 23 h old
    assert run_at(session, T0 + timedelta(days=5, hours=6)).recycled == 1
    session.refresh(c)
    assert c.status == CustomerStatus.POOL


def test_a_new_lead_entered_by_its_salesperson_is_protected_like_an_allocated_one(session, sales, manager):
    grade_d(session)
    rule(session, manager, grades=["D"], warn_hours=0)
    c = make_customer(session, owner=sales, grade="D")
    assert c.protected_until == T0 + timedelta(days=3)  # the default pool's protection_days
    assert run_at(session, T0 + timedelta(days=2)).recycled == 0
    assert run_at(session, T0 + timedelta(days=3, minutes=1)).recycled == 1


def test_no_protection_when_the_owners_pool_protects_none(session, sales, manager):
    pool_service.update_settings(session, Viewer.of(manager), customers.default_pool(session).id,
                                 {"daily_claim_cap": 20, "cooldown_days": 7, "protection_days": 0})
    assert make_customer(session, owner=sales).protected_until is None
