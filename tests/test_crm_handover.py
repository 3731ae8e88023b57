"""Handover of a salesperson's customers: departure cases, the plan, atomic set-based execution."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from core import tasks
from core.audit import AuditLog
from core.outbox import pending
from crm import customers, handover, handover_flows, org_service
from crm.handover import Plan, Target
from crm.handover_exceptions import HandoverCaseClosed, HandoverNotAllowed, HandoverRefused
from crm.models import (
    Customer,
    CustomerEvent,
    CustomerStatus,
    HandoverCase,
    HandoverItem,
    Notification,
    OwnerChange,
    Pool,
    StaffStatus,
    WeComTransfer,
    WeComTransferEvent,
)
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"], display_name="李经理")


@pytest.fixture
def viewer(session, manager):
    return Viewer.of(manager)


@pytest.fixture
def leaver(session, org):
    return make_staff(session, department=org["team_a"], display_name="离职销售", wecom_userid="LeaverWx")


def customers_of(session, staff, n, *, wecom_every=0, start=0):
    out = []
    for i in range(n):
        ext = f"wmEXT{staff.id}_{start + i}" if wecom_every and i % wecom_every == 0 else None
        out.append(make_customer(session, owner=staff, name=f"客户{start + i}", wecom_external_userid=ext))
    return out


def count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def owners(session, ids):
    session.expire_all()
    return {c.id: c.owner_id for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}


# --- opening -------------------------------------------------------------------------------------------

def test_departure_case_lists_the_customers_the_person_owns(session, org, viewer, leaver):
    mine = customers_of(session, leaver, 3)
    other = make_staff(session, department=org["team_a"])
    make_customer(session, owner=other, name="别人的")
    make_customer(session, name="公海的")
    case = handover_flows.start_departure(session, viewer, leaver.id)
    items = set(session.scalars(select(HandoverItem.customer_id).where(HandoverItem.case_id == case.id)))
    assert items == {c.id for c in mine}
    assert case.kind == "departure" and case.status == "open" and case.opened_by == viewer.staff_id


def test_starting_a_departure_marks_the_person_departed(session, viewer, leaver):
    handover_flows.start_departure(session, viewer, leaver.id)
    session.refresh(leaver)
    assert leaver.status == StaffStatus.DEPARTED


def test_opening_a_departure_case_twice_returns_the_same_open_case(session, viewer, leaver):
    customers_of(session, leaver, 2)
    first = handover.open_departure_case(session, leaver.id, source="wecom")
    second = handover_flows.start_departure(session, viewer, leaver.id)
    assert first.id == second.id
    assert count(session, HandoverCase, HandoverCase.from_staff_id == leaver.id) == 1
    assert count(session, HandoverItem, HandoverItem.case_id == first.id) == 2


def test_open_departure_case_from_wecom_records_the_source(session, leaver):
    case = handover.open_departure_case(session, leaver.id, source="wecom")
    assert case.source == "wecom" and case.opened_by is None


def test_a_sales_person_cannot_open_a_handover(session, org, leaver):
    sales = make_staff(session, department=org["team_a"], data_scope="department")
    with pytest.raises(HandoverNotAllowed):
        handover_flows.start_departure(session, Viewer.of(sales), leaver.id)


def test_a_manager_outside_the_persons_subtree_is_refused_and_nothing_changes(session, org, leaver):
    other_branch = make_staff(session, role="manager", department=org["team_b"])
    from crm.exceptions import OutOfScope

    with pytest.raises(OutOfScope):
        handover_flows.start_departure(session, Viewer.of(other_branch), leaver.id)
    session.refresh(leaver)
    assert leaver.status == StaffStatus.ACTIVE
    assert count(session, HandoverCase) == 0


def test_an_out_of_scope_manager_cannot_read_or_execute_a_case(session, org, viewer, leaver):
    case = handover_flows.start_departure(session, viewer, leaver.id)
    outsider = Viewer.of(make_staff(session, role="manager", department=org["team_b"]))
    with pytest.raises(handover.HandoverCaseNotFound):
        handover.get_case(session, outsider, case.id)
    with pytest.raises(handover.HandoverCaseNotFound):
        handover_flows.execute_case(session, outsider, case.id, Plan("pool"))


# --- executing -----------------------------------------------------------------------------------------

def test_all_to_one_successor(session, org, viewer, leaver):
    cs = customers_of(session, leaver, 4)
    heir = make_staff(session, department=org["team_a"], display_name="接班人")
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    assert result.moved == 4 and result.to_staff == {heir.id: 4}
    assert set(owners(session, [c.id for c in cs]).values()) == {heir.id}
    assert all(c.previous_owner_id == leaver.id for c in session.scalars(select(Customer)
                                                                         .where(Customer.owner_id == heir.id)))
    assert case.status == "done" and case.closed_at is not None and case.summary["moved"] == 4


def test_owner_history_and_timeline_are_written_for_every_customer(session, org, viewer, leaver):
    cs = customers_of(session, leaver, 3)
    heir = make_staff(session, department=org["team_a"], display_name="接班人")
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    changes = session.scalars(select(OwnerChange).where(OwnerChange.reason == "handover")).all()
    assert sorted(c.customer_id for c in changes) == sorted(c.id for c in cs)
    assert all(c.from_owner_id == leaver.id and c.to_owner_id == heir.id and c.by_staff_id == viewer.staff_id
               for c in changes)
    events = session.scalars(select(CustomerEvent).where(CustomerEvent.kind == "owner.handover")).all()
    assert len(events) == 3 and all("接班人" in e.summary and e.ref_id == str(case.id) for e in events)


def test_evenly_across_a_team_balances_by_current_load(session, org, viewer, leaver):
    team = org["team_b"]
    a = make_staff(session, department=team, display_name="甲")
    b = make_staff(session, department=team, display_name="乙")
    c = make_staff(session, department=team, display_name="丙")
    customers_of(session, a, 3, start=100)  # 甲 already holds 3
    cs = customers_of(session, leaver, 9)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("team", department_id=team.id))
    assert result.to_staff == {a.id: 1, b.id: 4, c.id: 4}  # 3 + 1, 0 + 4, 0 + 4
    loads = Counter(owners(session, [x.id for x in cs]).values())
    totals = {sid: loads[sid] + (3 if sid == a.id else 0) for sid in (a.id, b.id, c.id)}
    assert max(totals.values()) - min(totals.values()) <= 1


def test_team_mode_skips_departed_and_non_sales_members(session, org, viewer, leaver):
    team = org["team_b"]
    active = make_staff(session, department=team)
    gone = make_staff(session, department=team)
    org_service.mark_departed(session, gone.id)
    make_staff(session, role="risk", department=team)
    customers_of(session, leaver, 3)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("team", department_id=team.id))
    assert result.to_staff == {active.id: 3}


def test_team_capacity_shortfall_is_refused_clearly(session, org, viewer, leaver):
    team = org["team_b"]
    make_staff(session, department=team, capacity=1)
    make_staff(session, department=team, capacity=1)
    cs = customers_of(session, leaver, 3)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    with pytest.raises(HandoverRefused, match="剩余容量 2") as err:
        handover_flows.execute_case(session, viewer, case.id, Plan("team", department_id=team.id))
    assert err.value.details["needed"] == 3
    assert set(owners(session, [c.id for c in cs]).values()) == {leaver.id}


def test_allowing_over_capacity_still_spreads_evenly(session, org, viewer, leaver):
    team = org["team_b"]
    make_staff(session, department=team, capacity=1)
    make_staff(session, department=team, capacity=1)
    customers_of(session, leaver, 4)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id,
                                         Plan("team", department_id=team.id, allow_over_capacity=True))
    assert sorted(result.to_staff.values()) == [2, 2]


def test_back_to_a_pool(session, viewer, leaver):
    cs = customers_of(session, leaver, 2)
    pool = customers.default_pool(session)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("pool", pool_id=pool.id))
    assert result.to_pool == {pool.id: 2}
    session.expire_all()
    for c in cs:
        row = session.get(Customer, c.id)
        assert (row.status, row.owner_id, row.pool_id) == (CustomerStatus.POOL, None, pool.id)
        assert row.released_at is not None and row.previous_owner_id == leaver.id


def test_per_customer_overrides_win_over_the_mode(session, org, viewer, leaver):
    cs = customers_of(session, leaver, 3)
    heir = make_staff(session, department=org["team_a"])
    special = make_staff(session, department=org["team_b"])
    pool = Pool(name="分部公海", department_id=org["branch"].id, created_at=cs[0].created_at)
    session.add(pool)
    session.flush()
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan(
        "successor", to_staff_id=heir.id,
        overrides={cs[0].id: Target(staff_id=special.id), cs[1].id: Target(pool_id=pool.id)}))
    result = owners(session, [c.id for c in cs])
    assert result == {cs[0].id: special.id, cs[1].id: None, cs[2].id: heir.id}


def test_a_customer_claimed_away_meanwhile_is_skipped_and_reported(session, org, viewer, leaver):
    cs = customers_of(session, leaver, 3)
    heir = make_staff(session, department=org["team_a"])
    rival = make_staff(session, department=org["team_b"])
    case = handover_flows.start_departure(session, viewer, leaver.id)
    cs[1].owner_id = rival.id  # e.g. moved by an admin after the case was opened
    session.flush()
    result = handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    assert result.moved == 2 and result.skipped_not_owned == 1
    assert owners(session, [cs[1].id]) == {cs[1].id: rival.id}
    item = session.scalar(select(HandoverItem).where(HandoverItem.customer_id == cs[1].id))
    assert (item.status, item.skip_reason) == ("skipped", "not_owned")
    assert count(session, OwnerChange, OwnerChange.customer_id == cs[1].id, OwnerChange.reason == "handover") == 0


def test_a_successor_who_departed_refuses_the_whole_handover(session, org, viewer, leaver):
    cs = customers_of(session, leaver, 3)
    heir = make_staff(session, department=org["team_a"])
    fine = make_staff(session, department=org["team_a"])
    org_service.mark_departed(session, heir.id)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    with pytest.raises(HandoverRefused, match="已离职"):
        with session.begin_nested():
            handover_flows.execute_case(session, viewer, case.id, Plan(
                "successor", to_staff_id=fine.id, overrides={cs[2].id: Target(staff_id=heir.id)}))
    assert set(owners(session, [c.id for c in cs]).values()) == {leaver.id}
    session.refresh(case)
    assert case.status == "open"
    assert count(session, OwnerChange, OwnerChange.reason == "handover") == 0


def test_successor_over_capacity_is_refused(session, org, viewer, leaver):
    customers_of(session, leaver, 3)
    heir = make_staff(session, department=org["team_a"], capacity=2)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    with pytest.raises(HandoverRefused, match="超过容量"):
        handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))


def test_a_successor_outside_the_managers_scope_is_refused(session, org, leaver):
    manager_a = Viewer.of(make_staff(session, role="manager", department=org["team_a"]))
    outsider = make_staff(session, department=org["team_b"])
    customers_of(session, leaver, 1)
    case = handover_flows.start_departure(session, manager_a, leaver.id)
    with pytest.raises(HandoverRefused, match="不在您的数据范围内"):
        handover_flows.execute_case(session, manager_a, case.id, Plan("successor", to_staff_id=outsider.id))


def test_executing_a_done_case_again_is_refused(session, org, viewer, leaver):
    customers_of(session, leaver, 1)
    heir = make_staff(session, department=org["team_a"])
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    with pytest.raises(HandoverCaseClosed):
        handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))


def test_execution_is_audited_with_counts(session, org, viewer, leaver):
    customers_of(session, leaver, 2)
    heir = make_staff(session, department=org["team_a"])
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "handover.execute"))
    assert entry.entity_id == str(case.id)
    assert entry.after["moved"] == 2 and entry.after["successors"] == 1 and entry.after["mode"] == "successor"


def test_each_successor_is_notified_once(session, org, viewer, leaver):
    team = org["team_b"]
    a = make_staff(session, department=team)
    b = make_staff(session, department=team)
    customers_of(session, leaver, 6)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("team", department_id=team.id))
    told = Counter(session.scalars(select(Notification.staff_id).where(Notification.kind == "handover")))
    assert told == {a.id: 1, b.id: 1}


def test_pool_moves_notify_nobody(session, viewer, leaver):
    customers_of(session, leaver, 2)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("pool"))
    assert count(session, Notification, Notification.kind == "handover") == 0


def test_a_cancelled_case_cannot_be_executed(session, viewer, leaver):
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover.cancel_case(session, viewer, case.id, "误操作")
    with pytest.raises(HandoverCaseClosed):
        handover_flows.execute_case(session, viewer, case.id, Plan("pool"))


# --- in service ----------------------------------------------------------------------------------------

def test_in_service_moves_only_the_chosen_customers(session, org, viewer):
    holder = make_staff(session, department=org["team_a"], wecom_userid="HolderWx")
    cs = customers_of(session, holder, 4)
    heir = make_staff(session, department=org["team_a"], wecom_userid="HeirWx")
    case = handover.open_in_service_case(session, viewer, holder.id, [cs[0].id, cs[1].id])
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    assert owners(session, [c.id for c in cs]) == {cs[0].id: heir.id, cs[1].id: heir.id,
                                                   cs[2].id: holder.id, cs[3].id: holder.id}
    assert count(session, OwnerChange, OwnerChange.reason == "transfer") == 2
    session.refresh(holder)
    assert holder.status == StaffStatus.ACTIVE


def test_in_service_case_refuses_customers_the_person_does_not_own(session, org, viewer):
    holder = make_staff(session, department=org["team_a"])
    stranger = make_customer(session, name="别人的")
    with pytest.raises(handover.HandoverInvalid, match="不属于"):
        handover.open_in_service_case(session, viewer, holder.id, [stranger.id])


# --- outbox --------------------------------------------------------------------------------------------

def test_transfer_task_is_enqueued_only_when_the_bot_registered_it(session, org, viewer, leaver, monkeypatch):
    customers_of(session, leaver, 2, wecom_every=1)
    heir = make_staff(session, department=org["team_a"], wecom_userid="HeirWx")
    case = handover_flows.start_departure(session, viewer, leaver.id)
    monkeypatch.setattr(tasks, "is_registered", lambda name: name == "bot.transfer_customers")
    result = handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    assert result.transfer_task_enqueued
    assert [(t.name, t.args) for t in pending(session) if t.name == "bot.transfer_customers"] == [
        ("bot.transfer_customers", (case.id,))]


def test_without_the_bot_transfers_stay_requested_and_nothing_is_enqueued(session, org, viewer, leaver,
                                                                          monkeypatch):
    monkeypatch.setattr(tasks, "is_registered", lambda name: False)  # the bot package not installed
    customers_of(session, leaver, 2, wecom_every=1)
    heir = make_staff(session, department=org["team_a"], wecom_userid="HeirWx")
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    assert not result.transfer_task_enqueued and result.transfers_requested == 2
    assert not [t for t in pending(session) if t.name == "bot.transfer_customers"]
    assert count(session, WeComTransferEvent, WeComTransferEvent.to_status == "requested") == 2
    assert count(session, WeComTransfer, WeComTransfer.status == "requested") == 2


# --- open tasks and visits -----------------------------------------------------------------------------

def test_open_tasks_follow_their_customers_to_the_successor(session, org, viewer, leaver):
    pytest.importorskip("crm.followups")
    from crm.models import WorkTask

    c = customers_of(session, leaver, 1)[0]
    task = WorkTask(staff_id=leaver.id, customer_id=c.id, title="回访", status="open", created_at=c.created_at)
    session.add(task)
    session.flush()
    heir = make_staff(session, department=org["team_a"])
    case = handover_flows.start_departure(session, viewer, leaver.id)
    assert [i.id for i in handover.open_work_items(session, leaver.id) if i.kind == "task"] == [task.id]
    result = handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    assert result.work_items_reassigned["task"] == 1
    session.refresh(task)
    assert task.staff_id == heir.id


# --- concurrency (real commits) ------------------------------------------------------------------------

def test_two_managers_executing_the_same_case_at_once_move_each_customer_once(committed):
    import threading

    from core.db import unit_of_work

    with unit_of_work() as s:
        o = make_org(s)
        boss = make_staff(s, role="admin", department=o["company"], password=None)
        leaving = make_staff(s, department=o["team_a"], password=None)
        heirs = [make_staff(s, department=o["team_b"], password=None) for _ in range(2)]
        for i in range(5):
            make_customer(s, owner=leaving, name=f"并发{i}")
        case_id = handover_flows.start_departure(s, Viewer.of(boss), leaving.id).id
        boss_id, heir_ids = boss.id, [h.id for h in heirs]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run(heir_id: int) -> None:
        barrier.wait()
        try:
            with unit_of_work() as s:
                viewer = Viewer.of(org_service.get_staff(s, boss_id))
                handover_flows.execute_case(s, viewer, case_id, Plan("successor", to_staff_id=heir_id))
            outcomes.append("done")
        except HandoverCaseClosed:
            outcomes.append("closed")

    threads = [threading.Thread(target=run, args=(h,)) for h in heir_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["closed", "done"]
    with unit_of_work() as s:
        assert count(s, OwnerChange, OwnerChange.reason == "handover") == 5
        assert len(set(s.scalars(select(Customer.owner_id).where(Customer.name.like("并发%"))))) == 1
