"""Lead allocation: every strategy, caps, rules by source and pool, blacklist, history, notifications."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from core.db import unit_of_work
from crm import allocation, customers, pool_service
from crm.allocation import AllocationRuleInput
from crm.models import AllocationCursor, Customer, CustomerStatus, Notification, OwnerChange
from crm.pool_exceptions import InvalidPoolRule
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"])


def team(session, org, n=3, **extra):
    return [make_staff(session, department=org["team_a"], **extra) for _ in range(n)]


def leads(session, n, **fields):
    return [make_customer(session, **fields).id for _ in range(n)]


def add_rule(session, manager, **kw):
    kw.setdefault("name", "规则")
    return allocation.save_rule(session, Viewer.of(manager), AllocationRuleInput(**kw))


def test_round_robin_deals_in_turn(session, org, manager):
    a, b, c = team(session, org)
    add_rule(session, manager, mode="round_robin", source_pattern="douyin*", member_ids=[a.id, b.id, c.id])
    ids = leads(session, 6, source="douyin_ad")
    result = allocation.allocate(session, ids)
    assert [result[i] for i in ids] == [a.id, b.id, c.id, a.id, b.id, c.id]


def test_round_robin_continues_where_the_last_batch_stopped(session, org, manager):
    a, b, c = team(session, org)
    rule = add_rule(session, manager, mode="round_robin", source_pattern="douyin", member_ids=[a.id, b.id, c.id])
    first = allocation.allocate(session, leads(session, 2, source="douyin"))
    second = allocation.allocate(session, leads(session, 2, source="douyin"))
    assert list(first.values()) == [a.id, b.id] and list(second.values()) == [c.id, a.id]
    assert session.get(AllocationCursor, f"rule:{rule.id}").last_staff_id == a.id


def test_round_robin_skips_someone_at_capacity(session, org, manager):
    a = make_staff(session, department=org["team_a"], capacity=0)
    b = make_staff(session, department=org["team_a"])
    add_rule(session, manager, mode="round_robin", source_pattern="x", member_ids=[a.id, b.id])
    result = allocation.allocate(session, leads(session, 2, source="x"))
    assert set(result.values()) == {b.id}


def test_nobody_with_room_leaves_the_lead_in_the_pool(session, org, manager):
    a = make_staff(session, department=org["team_a"], capacity=1)
    add_rule(session, manager, mode="round_robin", source_pattern="x", member_ids=[a.id])
    ids = leads(session, 2, source="x")
    result = allocation.allocate(session, ids)
    assert result == {ids[0]: a.id, ids[1]: None}
    assert session.get(Customer, ids[1]).status == CustomerStatus.POOL


def test_by_region_gives_each_lead_to_staff_of_its_region(session, org, manager):
    sh = make_staff(session, department=org["team_a"], region="上海")
    bj = make_staff(session, department=org["team_a"], region="北京")
    add_rule(session, manager, mode="region", source_pattern="*", member_ids=[sh.id, bj.id])
    s1, b1, none = (make_customer(session, region="上海").id, make_customer(session, region="北京").id,
                    make_customer(session, region="广州").id)
    result = allocation.allocate(session, [s1, b1, none])
    assert result == {s1: sh.id, b1: bj.id, none: None}


def test_by_customer_type_uses_staff_skills(session, org, manager):
    car, house = team(session, org, 2)
    allocation.set_skills(session, Viewer.of(manager), car.id, ["car"])
    allocation.set_skills(session, Viewer.of(manager), house.id, ["mortgage"])
    add_rule(session, manager, mode="customer_type", source_pattern="*", member_ids=[car.id, house.id])
    c1 = make_customer(session, customer_type="car").id
    m1 = make_customer(session, customer_type="mortgage").id
    x1 = make_customer(session, customer_type="business").id
    assert allocation.allocate(session, [c1, m1, x1]) == {c1: car.id, m1: house.id, x1: None}


def test_weighted_fills_the_least_loaded_relative_to_level(session, org, manager):
    senior = make_staff(session, department=org["team_a"], level=3)
    junior = make_staff(session, department=org["team_a"], level=1)
    add_rule(session, manager, mode="weighted", source_pattern="*", member_ids=[senior.id, junior.id])
    result = allocation.allocate(session, leads(session, 8))
    assert Counter(result.values()) == {senior.id: 6, junior.id: 2}


def test_weighted_counts_existing_private_customers(session, org, manager):
    busy = make_staff(session, department=org["team_a"])
    idle = make_staff(session, department=org["team_a"])
    for _ in range(3):
        make_customer(session, owner=busy)
    add_rule(session, manager, mode="weighted", source_pattern="*", member_ids=[busy.id, idle.id])
    result = allocation.allocate(session, leads(session, 3))
    assert Counter(result.values()) == {idle.id: 3}


def test_weighted_honours_capacity(session, org, manager):
    senior = make_staff(session, department=org["team_a"], level=5, capacity=2)
    junior = make_staff(session, department=org["team_a"], level=1)
    add_rule(session, manager, mode="weighted", source_pattern="*", member_ids=[senior.id, junior.id])
    result = allocation.allocate(session, leads(session, 5))
    assert Counter(result.values()) == {senior.id: 2, junior.id: 3}


def test_manual_gives_everything_to_the_named_person(session, org):
    a, _ = team(session, org, 2)
    ids = leads(session, 3)
    assert set(allocation.allocate(session, ids, mode="manual", to_staff_id=a.id).values()) == {a.id}


def test_manual_without_a_person_is_refused(session, org):
    ids = leads(session, 1)
    with pytest.raises(Exception, match="需要选择员工"):
        allocation.allocate(session, ids, mode="manual")


def test_rule_by_pool_applies_to_leads_of_that_pool(session, org, manager):
    a, b = team(session, org, 2)
    pool = pool_service.create_pool(session, Viewer.of(manager), "车贷公海", org["branch"].id)
    add_rule(session, manager, mode="manual", pool_id=pool.id, target_staff_id=b.id)
    add_rule(session, manager, mode="manual", source_pattern="*", target_staff_id=a.id, priority=200)
    in_pool = customers.intake(session, customers.CustomerInput(name="x", phone="13900000001"), channel="import",
                               pool_id=pool.id).customer.id
    elsewhere = leads(session, 1)[0]
    assert allocation.allocate(session, [in_pool, elsewhere]) == {in_pool: b.id, elsewhere: a.id}


def test_source_argument_overrides_the_customers_source(session, org, manager):
    a, _ = team(session, org, 2)
    add_rule(session, manager, mode="manual", source_pattern="fair_2026", target_staff_id=a.id)
    ids = leads(session, 2, source="import")
    assert set(allocation.allocate(session, ids, source="fair_2026").values()) == {a.id}


def test_no_rule_and_no_mode_leaves_leads_in_the_pool(session, org):
    team(session, org, 2)
    ids = leads(session, 2)
    assert allocation.allocate(session, ids) == dict.fromkeys(ids)


def test_mode_without_rule_uses_the_active_sales_of_the_pool(session, org):
    a, b = team(session, org, 2)
    result = allocation.allocate(session, leads(session, 4), mode="round_robin")
    assert set(result.values()) <= {s.id for s in (a, b)} | {None} and None not in result.values()


def test_inactive_rule_is_ignored(session, org, manager):
    a, _ = team(session, org, 2)
    add_rule(session, manager, mode="manual", source_pattern="*", target_staff_id=a.id, active=False)
    ids = leads(session, 1)
    assert allocation.allocate(session, ids) == {ids[0]: None}


def test_blacklisted_customer_is_never_allocated(session, org, manager):
    a, _ = team(session, org, 2)
    bad, good = leads(session, 2)
    customers.blacklist(session, Viewer.of(manager), bad, "骗贷")
    result = allocation.allocate(session, [bad, good], mode="manual", to_staff_id=a.id)
    assert result == {bad: None, good: a.id}
    assert session.get(Customer, bad).status == CustomerStatus.BLACKLIST


def test_assignment_writes_history_and_timeline(session, org):
    a, _ = team(session, org, 2)
    ids = leads(session, 2)
    allocation.allocate(session, ids, mode="manual", to_staff_id=a.id, actor_staff_id=a.id)
    reasons = session.scalars(select(OwnerChange.reason).where(OwnerChange.customer_id.in_(ids),
                                                               OwnerChange.reason == "assign")).all()
    assert reasons == ["assign", "assign"]
    assert "owner.assign" in [e.kind for e in customers.timeline(session, ids[0])]


def test_one_notification_per_owner_per_batch(session, org, manager):
    a, b = team(session, org, 2)
    add_rule(session, manager, mode="round_robin", source_pattern="*", member_ids=[a.id, b.id])
    allocation.allocate(session, leads(session, 6))
    rows = session.execute(select(Notification.staff_id, func.count()).where(Notification.kind == "lead.assigned")
                           .group_by(Notification.staff_id)).all()
    assert dict(rows) == {a.id: 1, b.id: 1}


def test_rule_validation_needs_source_or_pool(session, manager):
    with pytest.raises(InvalidPoolRule, match="来源匹配或选择公海"):
        add_rule(session, manager, mode="round_robin")


def test_salesperson_cannot_edit_rules(session, org):
    sales = make_staff(session, department=org["team_a"])
    with pytest.raises(Exception, match="只有经理"):
        allocation.save_rule(session, Viewer.of(sales), AllocationRuleInput(name="x", mode="round_robin",
                                                                            source_pattern="*"))


def test_concurrent_allocations_never_assign_a_customer_twice(committed):
    with unit_of_work() as s:
        org = make_org(s)
        manager = make_staff(s, role="manager", department=org["branch"])
        staff = [make_staff(s, department=org["team_a"]) for _ in range(3)]
        add_rule(s, manager, mode="round_robin", source_pattern="*", member_ids=[m.id for m in staff])
        ids = [make_customer(s).id for _ in range(9)]
    barrier = threading.Barrier(2)
    results: list[dict] = []
    errors: list[Exception] = []

    def run():
        barrier.wait()
        try:
            with unit_of_work() as s:
                results.append(allocation.allocate(s, ids))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    winners = [cid for r in results for cid, owner in r.items() if owner is not None]
    assert sorted(winners) == sorted(ids)  # each customer won exactly once across both batches
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(OwnerChange).where(OwnerChange.reason == "assign")) == 9
        loads = Counter(s.scalars(select(Customer.owner_id).where(Customer.id.in_(ids))))
        assert sorted(loads.values()) == [3, 3, 3]
