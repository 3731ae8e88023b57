"""Collections (催收): overdue loans reach a collector's queue, scope (own queue, managers all), actions logged,
promises kept or broken, phone masked in the queue and revealed with an audit entry."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.errors import PermissionDenied
from lending.models import Loan
from lending.servicing import loans, rollover
from lending.servicing.exceptions import LoanNotFound
from postloan import actions as collections
from postloan.exceptions import CollectionInvalid
from postloan.models import CollectionAction, CollectionCase, CollectionPromise
from tests.factories import make_staff
from tests.lending_flow_support import V, count
from tests.servicing_support import days, make_loan, on, pay, rows

DUE = date(2026, 12, 23)


def _overdue_loan(session, **kw):
    w, loan = make_loan(session, **kw)
    company = w.manager.department
    first = make_staff(session, role="collector", department=company, data_scope="own", display_name="催收甲")
    second = make_staff(session, role="collector", department=company, data_scope="own", display_name="催收乙")
    on(DUE + days(5))
    rollover.roll_over(session)
    session.refresh(loan)
    return w, loan, first, second


def test_a_loan_falling_overdue_is_assigned_to_the_least_loaded_collector(session):
    w, loan, first, second = _overdue_loan(session)
    assert loan.collector_staff_id == first.id
    assert [a.kind for a in collections.actions(session, loan.id)] == ["assign"]
    # a second loan goes to the other collector
    from tests.lending_flow_support import advance_to, start
    from tests.lending_product_factories import make_product

    on(date(2026, 11, 23))
    w.product = make_product(session, penalty_rate="0.0005")
    from lending import disbursement

    app = advance_to(session, w, start(session, w, amount=1_200_000), "disbursement")
    other = disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="FR-2")
    on(DUE + days(6))
    rollover.roll_over(session)
    session.refresh(other)
    assert other.collector_staff_id == second.id


def test_a_collector_sees_their_own_queue_only_and_managers_all(session):
    w, loan, first, second = _overdue_loan(session)
    mine = collections.queue(session, V(first))
    assert [r.loan.id for r in mine] == [loan.id]
    assert mine[0].phone_masked and "*" in mine[0].phone_masked and mine[0].overdue_amount > 0
    assert collections.queue(session, V(second)) == []
    with pytest.raises(LoanNotFound):
        loans.get_loan(session, V(second), loan.id)
    with pytest.raises(LoanNotFound):
        collections.log_action(session, loan.id, viewer=V(second), kind="call", note="打不通")
    assert [r.loan.id for r in collections.queue(session, V(w.manager))] == [loan.id]
    with pytest.raises(PermissionDenied):
        collections.queue(session, V(w.sales))
    # the owner of the customer still sees the loan itself
    assert loans.get_loan(session, V(w.sales), loan.id).id == loan.id
    assert [r.loan.id for r in loans.list_loans(session, V(first))] == [loan.id]
    assert loans.list_loans(session, V(second)) == []


def test_actions_are_logged_with_the_bucket_and_append_only(session):
    _, loan, first, _ = _overdue_loan(session)
    action = collections.log_action(session, loan.id, viewer=V(first), kind="call", outcome="接通", note="答应月底还")
    assert (action.kind, action.bucket, action.overdue_days, action.by_staff_id) == ("call", "M1", 5, first.id)
    with pytest.raises(CollectionInvalid):
        collections.log_action(session, loan.id, viewer=V(first), kind="visit")
    with pytest.raises(RuntimeError, match="append-only"):
        with session.begin_nested():
            action.note = "改写"
            session.flush()


def test_a_promise_paid_in_time_is_kept(session):
    w, loan, first, _ = _overdue_loan(session)
    collections.log_action(session, loan.id, viewer=V(first), kind="promise", promised_date=DUE + days(10),
                           promised_amount=50_000)
    on(DUE + days(8))
    pay(session, w, loan, 50_000)
    promise = session.scalar(select(CollectionPromise))
    assert promise.status == "kept"


def test_a_promise_not_paid_by_its_date_is_broken(session):
    w, loan, first, _ = _overdue_loan(session)
    collections.log_action(session, loan.id, viewer=V(first), kind="promise", promised_date=DUE + days(10),
                           promised_amount=50_000)
    on(DUE + days(9))
    pay(session, w, loan, 10_000)  # short of the promise
    rollover.roll_over(session, DUE + days(10))
    assert session.scalar(select(CollectionPromise)).status == "open"  # the promised day itself is still in time
    rollover.roll_over(session, DUE + days(11))
    promise = session.scalar(select(CollectionPromise))
    assert promise.status == "broken"
    queue = collections.queue(session, V(first), broken_only=True)
    assert [r.loan.id for r in queue] == [loan.id] and queue[0].promise_status == "broken"


def test_a_promise_needs_a_date_not_in_the_past_and_an_amount(session):
    _, loan, first, _ = _overdue_loan(session)
    with pytest.raises(CollectionInvalid, match="日期"):
        collections.log_action(session, loan.id, viewer=V(first), kind="promise", promised_date=DUE,
                               promised_amount=100)
    with pytest.raises(CollectionInvalid, match="金额"):
        collections.log_action(session, loan.id, viewer=V(first), kind="promise", promised_date=DUE + days(9))
    assert count(session, CollectionPromise) == 0


def test_a_promise_typed_on_a_call_is_kept_with_the_call(session):
    _, loan, first, _ = _overdue_loan(session)
    action = collections.log_action(session, loan.id, viewer=V(first), kind="call", outcome="接通",
                                    promised_date=DUE + days(10), promised_amount=30_000)
    promise = session.scalar(select(CollectionPromise))
    assert action.kind == "call" and promise.action_id == action.id
    assert promise.promised_amount == 30_000 and promise.promised_date == DUE + days(10) and promise.status == "open"


def test_a_call_with_half_a_promise_is_refused_not_dropped(session):
    _, loan, first, _ = _overdue_loan(session)
    actions_before = count(session, CollectionAction)
    with pytest.raises(CollectionInvalid, match="金额"):
        collections.log_action(session, loan.id, viewer=V(first), kind="call", promised_date=DUE + days(10))
    with pytest.raises(CollectionInvalid, match="日期"):
        collections.log_action(session, loan.id, viewer=V(first), kind="call", promised_amount=30_000)
    with pytest.raises(CollectionInvalid, match="备注不能附带承诺还款"):
        collections.log_action(session, loan.id, viewer=V(first), kind="note", note="说月底还",
                               promised_date=DUE + days(10), promised_amount=30_000)
    assert count(session, CollectionPromise) == 0 and count(session, CollectionAction) == actions_before


def test_managers_reassign_and_collectors_cannot(session):
    w, loan, first, second = _overdue_loan(session)
    with pytest.raises(PermissionDenied):
        collections.assign(session, loan.id, second.id, viewer=V(first))
    with pytest.raises(CollectionInvalid):
        collections.assign(session, loan.id, w.sales.id, viewer=V(w.manager))
    collections.assign(session, loan.id, second.id, viewer=V(w.manager))
    assert session.get(Loan, loan.id).collector_staff_id == second.id
    assert [r.loan.id for r in collections.queue(session, V(second))] == [loan.id]
    assert collections.queue(session, V(first)) == []


def test_a_loan_paid_back_to_current_leaves_the_queue_and_its_case_is_cured(session):
    w, loan, first, _ = _overdue_loan(session)
    case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan.id))
    assert (case.status, case.collector_staff_id) == ("open", first.id)
    row = rows(session, loan)[0]  # rolled over today: its penalty is as of today
    assert row.penalty_amount > 0
    pay(session, w, loan, row.outstanding_amount)
    assert session.get(Loan, loan.id).bucket == "C"
    assert collections.queue(session, V(first)) == []
    session.refresh(case)
    assert (case.status, case.close_reason) == ("closed", "cured")
    assert [a.kind for a in collections.actions(session, loan.id)] == ["note", "assign"]  # the closing note

