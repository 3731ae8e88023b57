"""Visits (邀约上门): booking, double-booking refusal, reschedule, cancel, arrival, no-show, reminders."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from crm import customers, visits
from crm.exceptions import CustomerNotFound
from crm.models import Visit, VisitCohandler
from crm.work_exceptions import VisitConflict, VisitNotFound, VisitStateError, WorkValidation
from tests.factories import make_customer, make_org, make_staff
from tests.work_support import NOW, count, notifications, viewer


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"])


@pytest.fixture(autouse=True)
def _frozen():
    clock.freeze(NOW)


def book(session, org, sales, customer, hours=24, **kw):
    return visits.schedule_visit(session, customer.id, NOW + timedelta(hours=hours),
                                 department_id=org["branch"].id, viewer=viewer(sales), **kw)


def test_scheduling_a_visit_writes_the_timeline(session, org, sales):
    c = make_customer(session, owner=sales)
    v = book(session, org, sales, c)
    assert (v.status, v.inviter_id, v.channel) == ("scheduled", sales.id, "staff")
    assert "visit" in [e.kind for e in customers.timeline(session, c.id)]


def test_an_overlapping_visit_of_the_same_customer_is_refused(session, org, sales):
    c = make_customer(session, owner=sales)
    book(session, org, sales, c, hours=24)
    with pytest.raises(VisitConflict):
        book(session, org, sales, c, hours=24.5)
    assert count(session, Visit) == 1


def test_back_to_back_visits_do_not_overlap(session, org, sales):
    c = make_customer(session, owner=sales)
    book(session, org, sales, c, hours=24)
    book(session, org, sales, c, hours=25)
    assert count(session, Visit) == 2


def test_a_visit_in_the_past_is_refused(session, org, sales):
    c = make_customer(session, owner=sales)
    with pytest.raises(WorkValidation):
        book(session, org, sales, c, hours=-1)


def test_another_salespersons_customer_cannot_be_booked(session, org, sales):
    other = make_staff(session, department=org["team_b"])
    c = make_customer(session, owner=other)
    with pytest.raises(CustomerNotFound):
        book(session, org, sales, c)


def test_a_customer_booking_themselves_notifies_the_owner(session, org, sales):
    c = make_customer(session, owner=sales)
    v = visits.schedule_visit(session, c.id, NOW + timedelta(days=1), department_id=org["branch"].id)
    assert (v.inviter_id, v.channel) == (sales.id, "miniprogram")
    assert [n.kind for n in notifications(session, sales.id)] == ["visit.booked"]


def test_a_customer_cannot_cancel_someone_elses_visit(session, org, sales):
    c = make_customer(session, owner=sales)
    other = make_customer(session, owner=sales)
    v = book(session, org, sales, c)
    with pytest.raises(VisitNotFound):
        visits.cancel_visit(session, None, v.id, "不去了", customer_id=other.id)


def test_rescheduling_keeps_the_old_visit_and_frees_its_slot(session, org, sales):
    c = make_customer(session, owner=sales)
    old = book(session, org, sales, c, hours=24)
    new = visits.reschedule_visit(session, viewer(sales), old.id, NOW + timedelta(hours=24, minutes=30),
                                  reason="客户晚到")
    assert (old.status, old.rescheduled_to_id, new.status) == ("rescheduled", new.id, "scheduled")


def test_rescheduling_into_another_visit_is_refused(session, org, sales):
    c = make_customer(session, owner=sales)
    first = book(session, org, sales, c, hours=24)
    book(session, org, sales, c, hours=48)
    with pytest.raises(VisitConflict):
        visits.reschedule_visit(session, viewer(sales), first.id, NOW + timedelta(hours=48))
    assert first.status == "scheduled"


def test_cancelling_needs_a_reason(session, org, sales):
    c = make_customer(session, owner=sales)
    v = book(session, org, sales, c)
    with pytest.raises(WorkValidation):
        visits.cancel_visit(session, viewer(sales), v.id, " ")
    visits.cancel_visit(session, viewer(sales), v.id, "客户出差")
    assert (v.status, v.cancel_reason) == ("cancelled", "客户出差")


def test_arrival_moves_the_stage_and_records_the_reception(session, org, sales):
    helper = make_staff(session, department=org["branch"])
    c = make_customer(session, owner=sales)
    v = book(session, org, sales, c, hours=1)
    clock.advance(timedelta(hours=1))
    visits.mark_arrived(session, viewer(sales), v.id, cohandler_ids=[helper.id])
    assert (v.status, v.reception_staff_id, c.stage) == ("arrived", sales.id, "visited")
    assert count(session, VisitCohandler, VisitCohandler.visit_id == v.id) == 1


def test_a_closed_visit_cannot_be_marked_again(session, org, sales):
    c = make_customer(session, owner=sales)
    v = book(session, org, sales, c, hours=1)
    visits.cancel_visit(session, viewer(sales), v.id, "不来了")
    with pytest.raises(VisitStateError):
        visits.mark_arrived(session, viewer(sales), v.id)


def test_no_show_is_refused_before_the_time(session, org, sales):
    c = make_customer(session, owner=sales)
    v = book(session, org, sales, c, hours=3)
    with pytest.raises(VisitStateError):
        visits.mark_no_show(session, viewer(sales), v.id)
    clock.advance(timedelta(hours=4))
    visits.mark_no_show(session, viewer(sales), v.id)
    assert v.status == "no_show"


def test_the_inviter_is_reminded_once_before_the_visit(session, org, sales):
    c = make_customer(session, owner=sales)
    book(session, org, sales, c, hours=5)
    assert visits.send_visit_reminders(session) == 0  # too early
    clock.advance(timedelta(hours=3, minutes=30))
    assert visits.send_visit_reminders(session) == 1
    clock.advance(timedelta(minutes=15))
    assert visits.send_visit_reminders(session) == 0
    assert len(notifications(session, sales.id, "reminder")) == 1


def test_list_visits_is_scoped(session, org, sales):
    other = make_staff(session, department=org["team_b"])
    mine = make_customer(session, owner=sales)
    theirs = make_customer(session, owner=other)
    book(session, org, sales, mine)
    book(session, org, other, theirs)
    rows = visits.list_visits(session, viewer(sales), clock.today(), clock.today() + timedelta(days=2))
    assert [c.id for _, c in rows] == [mine.id]


def test_visits_move_with_the_handover(session, org, sales):
    successor = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    v = book(session, org, sales, c)
    assert [i.id for i in visits.open_items_for(session, sales.id)] == [v.id]
    assert visits.reassign_items(session, sales.id, {c.id: successor.id}).moved == 1
    assert session.get(Visit, v.id).inviter_id == successor.id
