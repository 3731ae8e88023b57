"""Public pool (公海): claim, caps, cooldown, blacklist, release, move, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from core.db import unit_of_work
from crm import customers, pool_service
from crm.exceptions import CustomerBlacklisted, CustomerNotFound, PoolNotFound
from crm.models import ClaimCounter, Customer, CustomerStatus, OwnerChange
from crm.pool_exceptions import (
    ClaimCooldown,
    ClaimLost,
    DailyClaimCapReached,
    NotOwner,
    PrivateCapacityReached,
)
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen():
    clock.freeze(NOW)


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"], display_name="销售甲")


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"], display_name="经理")


def V(staff) -> Viewer:  # noqa: N802
    return Viewer.of(staff)


def set_cap(session, pool_id, **values):
    admin = make_staff(session, role="admin", data_scope="all")
    current = pool_service.settings_for(session, pool_id)
    merged = {"daily_claim_cap": current.daily_claim_cap, "cooldown_days": current.cooldown_days,
              "protection_days": current.protection_days, "check_private_cap": current.check_private_cap}
    merged.update(values)
    pool_service.update_settings(session, V(admin), pool_id, merged)


def owner_changes(session, customer_id):
    return [c.reason for c in session.scalars(select(OwnerChange).where(OwnerChange.customer_id == customer_id)
                                              .order_by(OwnerChange.id))]


def test_claim_moves_a_pool_customer_to_the_claimer(session, sales):
    c = make_customer(session)
    pool_service.claim(session, V(sales), c.id)
    assert (c.status, c.owner_id, c.pool_id) == (CustomerStatus.OWNED, sales.id, None)
    assert c.assigned_at == NOW


def test_claim_writes_owner_history_and_timeline(session, sales):
    c = make_customer(session)
    pool_service.claim(session, V(sales), c.id)
    assert owner_changes(session, c.id) == ["create", "claim"]
    assert "owner.claim" in [e.kind for e in customers.timeline(session, c.id)]


def test_second_claim_of_same_customer_loses(session, sales, org):
    other = make_staff(session, department=org["team_a"])
    c = make_customer(session)
    pool_service.claim(session, V(sales), c.id)
    with pytest.raises(ClaimLost):
        pool_service.claim(session, V(other), c.id)
    assert c.owner_id == sales.id


def test_claim_beyond_the_daily_cap_is_refused_and_changes_nothing(session, sales):
    first, second = make_customer(session), make_customer(session)
    set_cap(session, first.pool_id, daily_claim_cap=1)
    pool_service.claim(session, V(sales), first.id)
    with pytest.raises(DailyClaimCapReached, match="今日领取已达上限（1 个）"):
        pool_service.claim(session, V(sales), second.id)
    session.refresh(second)
    assert second.status == CustomerStatus.POOL and second.owner_id is None
    assert pool_service.claims_today(session, sales.id) == 1


def test_daily_cap_resets_on_the_next_business_day(session, sales):
    first, second = make_customer(session), make_customer(session)
    set_cap(session, first.pool_id, daily_claim_cap=1)
    pool_service.claim(session, V(sales), first.id)
    clock.advance(timedelta(days=1))
    pool_service.claim(session, V(sales), second.id)
    assert second.owner_id == sales.id


def test_claim_beyond_private_capacity_is_refused_and_changes_nothing(session, org):
    small = make_staff(session, department=org["team_a"], capacity=1)
    make_customer(session, owner=small)
    c = make_customer(session)
    with pytest.raises(PrivateCapacityReached, match="私海客户数已达上限（1 个）"):
        pool_service.claim(session, V(small), c.id)
    session.refresh(c)
    assert c.status == CustomerStatus.POOL
    assert session.scalar(select(func.count()).select_from(ClaimCounter)) == 0
    assert owner_changes(session, c.id) == ["create"]


def test_private_capacity_check_can_be_switched_off_per_pool(session, org):
    small = make_staff(session, department=org["team_a"], capacity=0)
    c = make_customer(session)
    set_cap(session, c.pool_id, check_private_cap=False)
    pool_service.claim(session, V(small), c.id)
    assert c.owner_id == small.id


def test_previous_owner_cannot_reclaim_during_cooldown(session, sales):
    c = make_customer(session, owner=sales)
    pool_service.release(session, V(sales), c.id, "客户暂无需求")
    clock.advance(timedelta(days=6))
    with pytest.raises(ClaimCooldown, match="之后才能再次领取"):
        pool_service.claim(session, V(sales), c.id)
    assert c.status == CustomerStatus.POOL


def test_previous_owner_may_reclaim_after_cooldown(session, sales):
    c = make_customer(session, owner=sales)
    pool_service.release(session, V(sales), c.id, "客户暂无需求")
    clock.advance(timedelta(days=7, seconds=1))
    pool_service.claim(session, V(sales), c.id)
    assert c.owner_id == sales.id


def test_cooldown_does_not_stop_someone_else(session, sales, org):
    other = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    pool_service.release(session, V(sales), c.id, "换人跟进")
    pool_service.claim(session, V(other), c.id)
    assert c.owner_id == other.id


def test_blacklisted_customer_cannot_be_claimed(session, sales, manager):
    c = make_customer(session)
    customers.blacklist(session, V(manager), c.id, "骗贷")
    with pytest.raises(CustomerBlacklisted):
        pool_service.claim(session, V(sales), c.id)
    assert c.status == CustomerStatus.BLACKLIST and c.owner_id is None


def test_release_returns_the_customer_to_a_pool_with_reason(session, sales):
    c = make_customer(session, owner=sales)
    pool_service.release(session, V(sales), c.id, "联系不上")
    assert (c.status, c.owner_id, c.previous_owner_id, c.released_at) == (CustomerStatus.POOL, None, sales.id, NOW)
    change = session.scalars(select(OwnerChange).where(OwnerChange.customer_id == c.id)
                             .order_by(OwnerChange.id.desc())).first()
    assert (change.reason, change.note, change.from_owner_id) == ("release", "联系不上", sales.id)


def test_release_needs_a_reason(session, sales):
    c = make_customer(session, owner=sales)
    with pytest.raises(Exception, match="请填写释放原因"):
        pool_service.release(session, V(sales), c.id, "  ")
    assert c.owner_id == sales.id


def test_release_goes_to_the_pool_of_the_owners_branch(session, sales, org, manager):
    branch_pool = pool_service.create_pool(session, V(manager), "上海分部公海", org["branch"].id)
    c = make_customer(session, owner=sales)
    pool_service.release(session, V(sales), c.id, "转公海")
    assert c.pool_id == branch_pool.id


def test_a_colleague_cannot_release_someone_elses_customer(session, sales, org):
    peer = make_staff(session, department=org["team_a"], data_scope="department")
    c = make_customer(session, owner=sales)
    with pytest.raises(NotOwner):
        pool_service.release(session, V(peer), c.id, "抢客户")
    assert c.owner_id == sales.id


def test_manager_moves_a_customer_between_pools(session, manager, org):
    target = pool_service.create_pool(session, V(manager), "车贷公海", org["branch"].id)
    c = make_customer(session)
    source = c.pool_id
    pool_service.move(session, V(manager), c.id, target.id, "按产品线整理")
    assert c.pool_id == target.id
    change = session.scalars(select(OwnerChange).where(OwnerChange.customer_id == c.id)
                             .order_by(OwnerChange.id.desc())).first()
    assert (change.reason, change.from_pool_id, change.to_pool_id) == ("move", source, target.id)


def test_salesperson_cannot_move_between_pools(session, sales, manager, org):
    target = pool_service.create_pool(session, V(manager), "车贷公海", org["branch"].id)
    c = make_customer(session)
    with pytest.raises(Exception, match="只有经理"):
        pool_service.move(session, V(sales), c.id, target.id)


def test_salesperson_sees_pools_of_their_department_tree_only(session, sales, org, manager):
    other_branch = make_staff(session, role="admin", data_scope="all")
    pool_service.create_pool(session, V(manager), "上海分部公海", org["branch"].id)
    elsewhere = make_org(session)
    far = pool_service.create_pool(session, V(other_branch), "北京公海", elsewhere["branch"].id)
    names = [p.name for p, _ in pool_service.list_pools(session, V(sales))]
    assert "上海分部公海" in names and "北京公海" not in names
    with pytest.raises(PoolNotFound):
        pool_service.pool_customers(session, V(sales), far.id)


def test_customer_in_an_invisible_pool_cannot_be_claimed(session, sales, manager):
    admin = make_staff(session, role="admin", data_scope="all")
    elsewhere = make_org(session)
    far = pool_service.create_pool(session, V(admin), "北京公海", elsewhere["branch"].id)
    c = make_customer(session)
    pool_service.move(session, V(admin), c.id, far.id)
    with pytest.raises(CustomerNotFound):
        pool_service.claim(session, V(sales), c.id)


def test_pool_list_filters_by_region_type_grade_and_source(session, sales):
    a = make_customer(session, region="上海", customer_type="car", source="douyin")
    make_customer(session, region="北京", customer_type="car", source="douyin")
    make_customer(session, region="上海", customer_type="credit", source="baidu")
    f = pool_service.PoolFilters(region="上海", customer_type="car", source="douyin")
    rows, total = pool_service.pool_customers(session, V(sales), a.pool_id, f)
    assert total == 1 and [r.id for r in rows] == [a.id]


def test_bulk_claim_reports_each_refusal_and_keeps_the_winners(session, org):
    staff = make_staff(session, department=org["team_a"])
    ids = [make_customer(session).id for _ in range(3)]
    set_cap(session, session.get(Customer, ids[0]).pool_id, daily_claim_cap=2)
    result = pool_service.claim_many(session, V(staff), ids)
    assert [result[i] is None for i in ids] == [True, True, False]
    assert "今日领取已达上限" in result[ids[2]]
    assert session.get(Customer, ids[2]).status == CustomerStatus.POOL


def test_settings_validation_refuses_negative_caps(session, manager):
    pool = customers.default_pool(session)
    with pytest.raises(Exception, match="每日领取上限"):
        pool_service.update_settings(session, V(manager), pool.id, {
            "daily_claim_cap": -1, "cooldown_days": 1, "protection_days": 1})


# --- real concurrency (SQLite file and PostgreSQL) --------------------------------------------------

def _two_claimers(committed):
    with unit_of_work() as s:
        org = make_org(s)
        a = make_staff(s, department=org["team_a"])
        b = make_staff(s, department=org["team_a"])
        c = make_customer(s)
        return V(a), V(b), c.id


def _race(viewers, fn):
    barrier = threading.Barrier(len(viewers))
    outcomes: list[object] = [None] * len(viewers)

    def run(i, viewer):
        barrier.wait()
        try:
            with unit_of_work() as s:
                fn(s, viewer)
            outcomes[i] = "won"
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, v)) for i, v in enumerate(viewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_two_simultaneous_claimers_exactly_one_wins(committed):
    clock.unfreeze()
    a, b, cid = _two_claimers(committed)
    outcomes = _race([a, b], lambda s, v: pool_service.claim(s, v, cid))
    assert outcomes.count("won") == 1
    loser = next(o for o in outcomes if o != "won")
    assert isinstance(loser, ClaimLost), loser
    with unit_of_work() as s:
        owner = s.get(Customer, cid).owner_id
        assert owner in (a.staff_id, b.staff_id)
        claims = s.scalars(select(OwnerChange.to_owner_id).where(OwnerChange.customer_id == cid,
                                                                 OwnerChange.reason == "claim")).all()
        assert claims == [owner]
        assert s.scalar(select(func.sum(ClaimCounter.claims))) == 1


def test_parallel_claims_of_one_person_respect_the_daily_cap(committed):
    clock.unfreeze()
    with unit_of_work() as s:
        org = make_org(s)
        staff = make_staff(s, department=org["team_a"])
        ids = [make_customer(s).id for _ in range(4)]
        pool_id = s.get(Customer, ids[0]).pool_id
        set_cap(s, pool_id, daily_claim_cap=2)
        v = V(staff)
    barrier = threading.Barrier(4)
    results: list[object] = []

    def run(cid):
        barrier.wait()
        try:
            with unit_of_work() as s:
                pool_service.claim(s, v, cid)
            results.append("won")
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=run, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("won") == 2
    assert all(isinstance(r, DailyClaimCapReached) for r in results if r != "won")
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Customer).where(Customer.owner_id == v.staff_id)) == 2

