"""Repayments: the write-off order to the fen, penalty first, overpayment refused, the same slip booked once,
value dates forward, reversal once, closure with the CRM stage and the events."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text, update

from core.errors import PermissionDenied
from crm.models import Customer, CustomerEvent
from lending.models import Loan, LoanInstallment, Repayment, RepaymentAllocation
from lending.servicing import repayments, state
from lending.servicing.exceptions import (
    AlreadyReversed,
    LoanClosed,
    Overpayment,
    ReferenceTaken,
    RepaymentInvalid,
    ReversalRefused,
)
from tests.lending_flow_support import V, count
from tests.servicing_support import make_loan, on, pay, rows

FEE = 1_000  # 10.00 yuan of service fee per period
# Installment 1 of 12,000.00 at 12% a year, 等额本息: principal 946.19, interest 120.00, fee 10.00, due 2026-12-23.
P1, I1 = 94_619, 12_000


def _alloc(session, repayment):
    return sorted((a.installment_id, a.component, a.amount) for a in session.scalars(
        select(RepaymentAllocation).where(RepaymentAllocation.repayment_id == repayment.id)))


def test_the_schedule_the_tests_rely_on(session):
    _, loan = make_loan(session, service_fee_amount=FEE)
    first = rows(session, loan)[0]
    assert (first.due_date, first.principal_amount, first.interest_amount, first.fee_amount) == \
        (date(2026, 12, 23), P1, I1, FEE)


def test_write_off_runs_penalty_fee_interest_principal_to_the_fen(session):
    w, loan = make_loan(session, service_fee_amount=FEE)
    on(date(2027, 1, 2))  # 10 days overdue: penalty 946.19 × 0.05% × 10 = 4.73095 → 4.73
    first = rows(session, loan)[0]
    r = pay(session, w, loan, 473 + FEE + I1 + 50_000)
    assert _alloc(session, r) == sorted([(first.id, "penalty", 473), (first.id, "fee", FEE),
                                         (first.id, "interest", I1), (first.id, "principal", 50_000)])
    session.refresh(first)
    assert (first.paid_penalty_amount, first.paid_fee_amount, first.paid_interest_amount,
            first.paid_principal_amount, first.status) == (473, FEE, I1, 50_000, "overdue")
    # three more days on the 446.19 still unpaid: 4.73095 + 446.19 × 0.05% × 3 = 5.400235 → 5.40, 0.67 left
    on(date(2027, 1, 5))
    second = rows(session, loan)[1]
    r2 = pay(session, w, loan, 67 + (P1 - 50_000) + 5_000)
    assert _alloc(session, r2) == sorted([(first.id, "penalty", 67), (first.id, "principal", P1 - 50_000),
                                          (second.id, "fee", FEE), (second.id, "interest", 4_000)])
    session.refresh(first)
    assert first.status == "paid" and first.penalty_amount == first.paid_penalty_amount == 540
    assert first.paid_off_date == date(2027, 1, 5)


def test_the_civil_code_order_is_a_product_setting(session):
    w, loan = make_loan(session, service_fee_amount=FEE, write_off_order="fee_interest_principal_penalty")
    on(date(2027, 1, 2))
    first = rows(session, loan)[0]
    r = pay(session, w, loan, 473 + FEE + I1 + 50_000)
    assert _alloc(session, r) == sorted([(first.id, "fee", FEE), (first.id, "interest", I1),
                                         (first.id, "principal", 50_473)])


def test_oldest_installment_first(session):
    w, loan = make_loan(session, penalty_rate=0)
    on(date(2027, 1, 24))  # installments 1 and 2 both overdue, 3 is the current period
    first, second, third = rows(session, loan)[:3]
    r = pay(session, w, loan, first.principal_amount + first.interest_amount + 100)
    assert _alloc(session, r) == sorted([(first.id, "interest", first.interest_amount),
                                         (first.id, "principal", first.principal_amount),
                                         (second.id, "interest", 100)])
    assert third.paid_interest_amount == 0


def test_an_overpayment_is_refused_and_writes_nothing(session):
    w, loan = make_loan(session, service_fee_amount=FEE)
    on(date(2027, 1, 2))
    payable = repayments.payable(session, loan)
    first, second = rows(session, loan)[:2]
    assert payable == (473 + FEE + I1 + P1) + (second.principal_amount + second.interest_amount + FEE)
    events_before = count(session, CustomerEvent)
    with pytest.raises(Overpayment, match="超过.*应还金额") as refused:
        with session.begin_nested():
            pay(session, w, loan, payable + 1)
    assert refused.value.details["payable"] == payable
    assert count(session, Repayment) == 0 and count(session, RepaymentAllocation) == 0
    assert count(session, CustomerEvent) == events_before
    session.refresh(first)
    assert first.paid_principal_amount == 0 and first.paid_penalty_amount == 0
    pay(session, w, loan, payable)  # exactly what is payable is accepted
    assert count(session, Repayment) == 1


def test_the_same_slip_twice_books_once(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    a = pay(session, w, loan, 10_000, external_reference="BANK-77")
    b = pay(session, w, loan, 10_000, external_reference="BANK-77")
    assert a.id == b.id and count(session, Repayment) == 1 and count(session, RepaymentAllocation) == 1
    assert rows(session, loan)[0].paid_interest_amount == 10_000
    with pytest.raises(ReferenceTaken, match="BANK-77"):
        pay(session, w, loan, 20_000, external_reference="BANK-77")


def test_the_database_refuses_a_second_booking_of_a_reference(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    pay(session, w, loan, 10_000, external_reference="UNIQ-1")
    from sqlalchemy.exc import IntegrityError

    from core import clock

    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(Repayment(loan_id=loan.id, kind="repayment", amount=1, repayment_date=clock.today(),
                                  channel="cash", external_reference="UNIQ-1", created_at=clock.now()))
            session.flush()


def test_value_dates_run_forward_and_not_into_the_future(session):
    w, loan = make_loan(session)
    on(date(2027, 1, 10))
    with pytest.raises(RepaymentInvalid, match="晚于今天"):
        pay(session, w, loan, 100, date(2027, 1, 11))
    with pytest.raises(RepaymentInvalid, match="早于放款日"):
        pay(session, w, loan, 100, date(2026, 11, 1))
    pay(session, w, loan, 100, date(2027, 1, 5))
    with pytest.raises(RepaymentInvalid, match="最近一笔还款"):
        pay(session, w, loan, 100, date(2027, 1, 4))
    pay(session, w, loan, 100, date(2027, 1, 5))


def test_only_finance_managers_and_admins_book(session):
    w, loan = make_loan(session)
    with pytest.raises(PermissionDenied):
        repayments.record_repayment(session, loan.id, viewer=V(w.sales), amount=100, external_reference="X")


def test_a_reversal_undoes_the_booking_once(session, task_runner):
    w, loan = make_loan(session)
    on(date(2027, 1, 2))
    first = rows(session, loan)[0]
    r = pay(session, w, loan, 473 + I1 + P1)
    session.refresh(first)
    assert first.status == "paid" and first.penalty_amount == 473
    on(date(2027, 1, 12))
    rev = repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="串户，退回")
    assert (rev.kind, rev.reversal_of_id, rev.amount) == ("reversal", r.id, r.amount)
    assert _alloc(session, rev) == sorted((iid, c, -amt) for iid, c, amt in _alloc(session, r))
    session.refresh(first)
    # as if never paid: 20 days of penalty on the whole principal (946.19 × 0.05% × 20 = 9.4619 → 9.46)
    assert (first.paid_principal_amount, first.paid_interest_amount, first.paid_penalty_amount) == (0, 0, 0)
    assert (first.status, first.penalty_amount) == ("overdue", 946)
    with pytest.raises(AlreadyReversed):
        repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="again")
    with pytest.raises(ReversalRefused):
        repayments.reverse_repayment(session, rev.id, viewer=V(w.finance), reason="undo the undo")
    with pytest.raises(RepaymentInvalid, match="原因"):
        repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason=" ")
    session.commit()
    assert ("lending.repayment_reversed", (rev.id,), {}) in task_runner.sent


def test_repayments_are_append_only(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    r = pay(session, w, loan, 100)
    with pytest.raises(RuntimeError, match="append-only"):
        with session.begin_nested():
            r.amount = 1
            session.flush()
    assert count(session, Repayment) == 1 and count(session, RepaymentAllocation) == 1
    with pytest.raises(Exception, match="append-only"):
        with session.begin_nested():
            session.execute(text("UPDATE lending_repayment SET amount = 1"))
    with pytest.raises(Exception, match="append-only"):
        with session.begin_nested():
            session.execute(text("DELETE FROM lending_repayment_allocation"))


def test_paying_everything_closes_the_loan_and_the_customer(session, task_runner):
    w, loan = make_loan(session, term=3, terms_months=[3], penalty_rate=0)
    customer_id = loan.customer_id
    for row in rows(session, loan):
        on(row.due_date)
        r = pay(session, w, loan, row.principal_amount + row.interest_amount)
    session.refresh(loan)
    assert loan.status == "closed" and loan.closed_at is not None and loan.bucket == "C"
    assert session.get(Customer, customer_id).stage == "closed"
    with pytest.raises(LoanClosed):
        pay(session, w, loan, 1)
    session.commit()
    assert ("lending.loan_closed", (loan.id,), {}) in task_runner.sent
    assert ("lending.repayment_recorded", (r.id,), {}) in task_runner.sent
    kinds = [e.kind for e in session.scalars(select(CustomerEvent).where(CustomerEvent.customer_id == customer_id))]
    assert kinds.count("lending_repayment") == 3 and kinds.count("lending_loan_closed") == 1
    ran = task_runner.drain()
    assert "lending.loan_closed" in ran and ran.count("lending.repayment_recorded") == 3
    # a reversal of the last repayment reopens the loan
    repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="退票")
    session.refresh(loan)
    assert loan.status == "active" and loan.closed_at is None
    assert session.get(Customer, customer_id).stage == "repaying"


def test_paid_columns_are_the_sums_of_the_allocations(session):
    w, loan = make_loan(session, service_fee_amount=FEE)
    on(date(2027, 2, 1))
    first = pay(session, w, loan, 77_777)
    pay(session, w, loan, 55_555)
    repayments.reverse_repayment(session, first.id, viewer=V(w.finance), reason="测试")
    pay(session, w, loan, 12_345)
    from sqlalchemy import func

    sums = {(iid, c): int(total) for iid, c, total in session.execute(
        select(RepaymentAllocation.installment_id, RepaymentAllocation.component, func.sum(RepaymentAllocation.amount))
        .group_by(RepaymentAllocation.installment_id, RepaymentAllocation.component))}
    for row in rows(session, loan):
        assert (row.paid_penalty_amount, row.paid_fee_amount, row.paid_interest_amount, row.paid_principal_amount) \
            == tuple(sums.get((row.id, c), 0) for c in ("penalty", "fee", "interest", "principal"))
    assert sum(r.paid_amount for r in rows(session, loan)) == 55_555 + 12_345


def test_a_direct_update_cannot_overpay_an_installment(session):
    _, loan = make_loan(session)
    first = rows(session, loan)[0]
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.execute(update(LoanInstallment).where(LoanInstallment.id == first.id)
                            .values(paid_principal_amount=first.principal_amount + 1))


def test_loans_of_the_task_state_refresh_is_idempotent(session):
    w, loan = make_loan(session)
    on(date(2027, 1, 2))
    state.refresh(session, loan)
    before = [(r.penalty_amount, r.status) for r in rows(session, loan)]
    state.refresh(session, loan)
    assert [(r.penalty_amount, r.status) for r in rows(session, loan)] == before
    assert session.get(Loan, loan.id).overdue_days == 10
