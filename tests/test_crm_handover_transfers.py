"""WeCom transfers written by a handover: who gets one, the state machine, the 2-per-90-days rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from crm import handover, handover_flows
from crm.handover import Plan
from crm.handover_exceptions import IllegalTransferTransition, TransferNotFound
from crm.models import CustomerEvent, HandoverItem, WeComTransfer, WeComTransferEvent
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def viewer(session, org):
    return Viewer.of(make_staff(session, role="manager", department=org["branch"]))


@pytest.fixture
def heir(session, org):
    return make_staff(session, department=org["team_a"], display_name="接班人", wecom_userid="HeirWx")


def _departure_with_transfers(session, org, viewer, heir, *, n=2):
    leaver = make_staff(session, department=org["team_a"], wecom_userid="LeaverWx")
    cs = [make_customer(session, owner=leaver, wecom_external_userid=f"wmX{leaver.id}_{i}") for i in range(n)]
    case = handover_flows.start_departure(session, viewer, leaver.id)
    handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    transfers = session.scalars(select(WeComTransfer).where(WeComTransfer.case_id == case.id)
                                .order_by(WeComTransfer.id)).all()
    return case, cs, transfers


def test_transfers_are_requested_only_for_customers_with_external_userids(session, org, viewer, heir):
    leaver = make_staff(session, department=org["team_a"], wecom_userid="LeaverWx")
    with_wecom = make_customer(session, owner=leaver, wecom_external_userid="wmA")
    make_customer(session, owner=leaver)
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))
    rows = session.scalars(select(WeComTransfer)).all()
    assert [(t.customer_id, t.external_userid, t.handover_userid, t.takeover_userid, t.kind, t.status)
            for t in rows] == [(with_wecom.id, "wmA", "LeaverWx", "HeirWx", "resigned", "requested")]
    assert result.transfers_requested == 1 and result.moved == 2


def test_moves_to_a_pool_request_no_transfer_and_are_counted(session, org, viewer):
    leaver = make_staff(session, department=org["team_a"], wecom_userid="LeaverWx")
    make_customer(session, owner=leaver, wecom_external_userid="wmA")
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("pool"))
    assert result.transfers_requested == 0 and result.wecom_not_requested == 1
    assert session.scalar(select(func.count()).select_from(WeComTransfer)) == 0


def test_a_successor_without_wecom_gets_no_transfer(session, org, viewer):
    leaver = make_staff(session, department=org["team_a"], wecom_userid="LeaverWx")
    make_customer(session, owner=leaver, wecom_external_userid="wmA")
    offline = make_staff(session, department=org["team_a"])
    case = handover_flows.start_departure(session, viewer, leaver.id)
    result = handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=offline.id))
    assert result.moved == 1 and result.transfers_requested == 0 and result.wecom_not_requested == 1


def test_the_bot_reports_waiting_then_taken_over(session, org, viewer, heir):
    _, cs, transfers = _departure_with_transfers(session, org, viewer, heir, n=1)
    t = transfers[0]
    handover.apply_transfer_result(session, t.id, "waiting", errcode=0)
    handover.apply_transfer_result(session, (t.external_userid, "HeirWx"), "taken_over")
    assert t.status == "taken_over"
    assert [(e.from_status, e.to_status) for e in handover.transfer_history(session, t.id)] == [
        (None, "requested"), ("requested", "waiting"), ("waiting", "taken_over")]
    kinds = set(session.scalars(select(CustomerEvent.kind).where(CustomerEvent.customer_id == cs[0].id)))
    assert {"wecom.transfer.waiting", "wecom.transfer.taken_over"} <= kinds


def test_the_state_machine_refuses_an_illegal_transition(session, org, viewer, heir):
    _, _, transfers = _departure_with_transfers(session, org, viewer, heir, n=1)
    t = transfers[0]
    handover.apply_transfer_result(session, t.id, "waiting")
    handover.apply_transfer_result(session, t.id, "refused")
    with pytest.raises(IllegalTransferTransition):
        handover.apply_transfer_result(session, t.id, "taken_over")
    assert t.status == "refused"
    assert session.scalar(select(func.count()).select_from(WeComTransferEvent)
                          .where(WeComTransferEvent.transfer_id == t.id)) == 3


def test_refused_cannot_be_reported_before_wecom_accepted_the_call(session, org, viewer, heir):
    _, _, transfers = _departure_with_transfers(session, org, viewer, heir, n=1)
    with pytest.raises(IllegalTransferTransition):
        handover.apply_transfer_result(session, transfers[0].id, "refused")


def test_an_unknown_status_is_refused(session, org, viewer, heir):
    _, _, transfers = _departure_with_transfers(session, org, viewer, heir, n=1)
    with pytest.raises(IllegalTransferTransition, match="未知"):
        handover.apply_transfer_result(session, transfers[0].id, "lost")


def test_the_same_result_reported_twice_is_a_no_op(session, org, viewer, heir):
    _, _, transfers = _departure_with_transfers(session, org, viewer, heir, n=1)
    t = transfers[0]
    handover.apply_transfer_result(session, t.id, "waiting")
    handover.apply_transfer_result(session, t.id, "waiting")
    assert len(handover.transfer_history(session, t.id)) == 2


def test_failure_records_errcode_and_reason(session, org, viewer, heir):
    _, _, transfers = _departure_with_transfers(session, org, viewer, heir, n=1)
    t = transfers[0]
    handover.apply_transfer_result(session, t.id, "failed", errcode=40098, reason="接替成员尚未实名认证")
    last = handover.transfer_history(session, t.id)[-1]
    assert (t.errcode, last.errcode, last.reason) == (40098, 40098, "接替成员尚未实名认证")


def test_an_unknown_transfer_is_not_found(session):
    with pytest.raises(TransferNotFound):
        handover.apply_transfer_result(session, ("nobody", "nowhere"), "waiting")


def _in_service_round(session, viewer, holder, heir, customer):
    case = handover.open_in_service_case(session, viewer, holder.id, [customer.id])
    return handover_flows.execute_case(session, viewer, case.id, Plan("successor", to_staff_id=heir.id))


def test_a_third_in_service_transfer_within_90_days_is_not_requested(session, org, viewer):
    a = make_staff(session, department=org["team_a"], wecom_userid="AWx")
    b = make_staff(session, department=org["team_a"], wecom_userid="BWx")
    c = make_customer(session, owner=a, wecom_external_userid="wmLimit")
    clock.freeze(T0)
    _in_service_round(session, viewer, a, b, c)
    handover.apply_transfer_result(session, ("wmLimit", "BWx"), "waiting")
    handover.apply_transfer_result(session, ("wmLimit", "BWx"), "taken_over")
    clock.advance(timedelta(days=30))
    _in_service_round(session, viewer, b, a, c)
    handover.apply_transfer_result(session, ("wmLimit", "AWx"), "waiting")
    handover.apply_transfer_result(session, ("wmLimit", "AWx"), "taken_over")
    clock.advance(timedelta(days=30))
    third = _in_service_round(session, viewer, a, b, c)
    assert third.moved == 0 and third.skipped_wecom_limit == 1 and third.transfers_requested == 0
    session.expire_all()
    item = session.scalar(select(HandoverItem).where(HandoverItem.case_id == third.case.id))
    assert (item.status, item.skip_reason) == ("skipped", "wecom_limit")
    assert session.get(type(c), c.id).owner_id == a.id


def test_the_90_day_window_slides(session, org, viewer):
    a = make_staff(session, department=org["team_a"], wecom_userid="AWx")
    b = make_staff(session, department=org["team_a"], wecom_userid="BWx")
    c = make_customer(session, owner=a, wecom_external_userid="wmSlide")
    clock.freeze(T0)
    _in_service_round(session, viewer, a, b, c)
    handover.apply_transfer_result(session, ("wmSlide", "BWx"), "waiting")
    handover.apply_transfer_result(session, ("wmSlide", "BWx"), "taken_over")
    _in_service_round(session, viewer, b, a, c)
    handover.apply_transfer_result(session, ("wmSlide", "AWx"), "waiting")
    handover.apply_transfer_result(session, ("wmSlide", "AWx"), "taken_over")
    clock.advance(timedelta(days=91))
    third = _in_service_round(session, viewer, a, b, c)
    assert third.moved == 1 and third.transfers_requested == 1


def test_failed_transfers_do_not_count_towards_the_limit(session, org, viewer):
    a = make_staff(session, department=org["team_a"], wecom_userid="AWx")
    b = make_staff(session, department=org["team_a"], wecom_userid="BWx")
    c = make_customer(session, owner=a, wecom_external_userid="wmFail")
    clock.freeze(T0)
    _in_service_round(session, viewer, a, b, c)
    handover.apply_transfer_result(session, ("wmFail", "BWx"), "failed", errcode=40001)
    _in_service_round(session, viewer, b, a, c)
    handover.apply_transfer_result(session, ("wmFail", "AWx"), "waiting")
    handover.apply_transfer_result(session, ("wmFail", "AWx"), "taken_over")
    assert handover.in_service_transfers_in_window(session, [c.id]) == {c.id: 1}


def test_a_customer_with_a_transfer_in_flight_gets_no_second_request(session, org, viewer):
    a = make_staff(session, department=org["team_a"], wecom_userid="AWx")
    b = make_staff(session, department=org["team_a"], wecom_userid="BWx")
    c = make_customer(session, owner=a, wecom_external_userid="wmBusy")
    _in_service_round(session, viewer, a, b, c)  # still requested
    second = _in_service_round(session, viewer, b, a, c)
    assert second.moved == 1 and second.transfers_requested == 0 and second.wecom_not_requested == 1
