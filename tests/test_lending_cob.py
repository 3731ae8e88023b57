"""The nightly close of business (COB): set-based results equal the per-loan rollover's (penalty, status,
overdue days, bucket, audit, collector), each step recorded once per business date, a second run changes
nothing, a run stopped after any step and resumed ends where an uninterrupted one does, missed days are caught
up one at a time, reminders once per bill and audience (opt-out respected)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from lending.models import CobStep, Loan, LoanInstallment, Reminder
from lending.servicing import cob, reminders, state
from postloan.models import CollectionAction
from tests.factories import make_staff
from tests.servicing_support import make_loan, on, pay

DUE = date(2026, 12, 23)
D = date(2027, 1, 2)  # ten days after the first due date


def _snapshot(session):
    rows = session.execute(select(LoanInstallment.loan_id, LoanInstallment.number, LoanInstallment.status,
                                  LoanInstallment.penalty_amount, LoanInstallment.penalty_through_date,
                                  LoanInstallment.paid_off_date).order_by(LoanInstallment.id)).all()
    loans = session.execute(select(Loan.id, Loan.status, Loan.overdue_days, Loan.bucket, Loan.rolled_over_date,
                                   Loan.collector_staff_id).order_by(Loan.id)).all()
    return rows, loans


def _book(session):
    """Loans in every situation the COB meets: plain overdue, principal paid late (an exception), paid on time,
    grace days, an annual 360-day penalty rate, half-even rounding (an exception), a second overdue bill."""
    plain = make_loan(session)
    late = make_loan(session)
    on(DUE + timedelta(days=5))
    pay(session, *late, 473 // 2 + 12_000 + 30_000)  # penalty so far, the interest, part of the principal
    on_time = make_loan(session)
    on(DUE)
    pay(session, *on_time, 94_619 + 12_000)
    grace = make_loan(session, overdue_grace_days=3)
    annual = make_loan(session, penalty_rate="0.18", penalty_basis="annual")
    even = make_loan(session, rounding="half_even")
    old = make_loan(session)
    return [loan for _, loan in (plain, late, on_time, grace, annual, even, old)]


def test_cob_gives_what_the_per_loan_rollover_gives(session):
    loans = _book(session)
    make_staff(session, role="collector", department=None, data_scope="own")
    on(D)
    before = {loan.id: loan.bucket for loan in session.scalars(select(Loan))}
    cob.run_date(D)
    after_cob = _snapshot(session)
    assert {loan.bucket for loan in session.scalars(select(Loan))} == {"C", "M1"}
    for loan in loans:  # the oracle: the per-loan recomputation the hourly rollover does for a claimed loan
        session.refresh(loan)
        if loan.rolled_over_date == D:
            state.refresh(session, loan, D)
    assert sum(loan.rolled_over_date == D for loan in loans) == 6  # all but the one paid on time
    assert _diff(_snapshot(session), after_cob) == []
    first = session.scalar(select(LoanInstallment).where(LoanInstallment.loan_id == loans[0].id,
                                                         LoanInstallment.number == 1))
    assert (first.status, first.penalty_amount) == ("overdue", 473)
    # every loan whose bucket moved is audited; every overdue loan is given to the collector, once
    overdue = [loan.id for loan in session.scalars(select(Loan).where(Loan.bucket != "C"))]
    moved = sorted(i for i in overdue if before[i] == "C")
    assert len(moved) == 5  # the loan paid late was already M1 from its booking
    assert sorted(int(e) for e in session.scalars(select(AuditLog.entity_id).where(
        AuditLog.action == "lending.loan.bucket"))) == moved
    assert session.scalar(select(func.count()).select_from(CollectionAction).where(
        CollectionAction.kind == "assign")) == len(overdue)


def test_each_step_is_recorded_and_a_second_run_changes_nothing(session):
    _book(session)
    on(D)
    assert set(cob.run_date(D)) == set(cob.STEPS)
    once = _snapshot(session), session.scalar(select(func.count()).select_from(AuditLog))
    assert cob.run_date(D) == {}
    assert (_snapshot(session), session.scalar(select(func.count()).select_from(AuditLog))) == once
    assert session.scalar(select(func.count()).select_from(CobStep).where(CobStep.business_date == D)) == len(cob.STEPS)


@pytest.mark.parametrize("stop", ["claim", "installments", "exceptions", "loans", "accrual", "collections",
                                  "reminders"])
def test_a_run_stopped_after_any_step_resumes_to_the_same_end(session, stop):
    _book(session)
    on(D)
    cob.run_date(D, stop_after=stop)
    cob.run_date(D)
    resumed = _snapshot(session)
    for loan in session.scalars(select(Loan).where(Loan.rolled_over_date == D)):
        state.refresh(session, loan, D)
    assert _diff(_snapshot(session), resumed) == []


def test_missed_days_are_caught_up_one_at_a_time(session):
    _book(session)
    on(D - timedelta(days=3))
    assert cob.close_business() == [D - timedelta(days=3)]
    on(D)
    assert cob.close_business() == [D - timedelta(days=2), D - timedelta(days=1), D]
    assert cob.close_business() == []
    assert cob.completed_through(session) == D
    first = session.scalars(select(LoanInstallment).where(LoanInstallment.number == 1,
                                                          LoanInstallment.status == "overdue")).first()
    assert first.penalty_through_date == D


def test_reminders_once_per_bill_offset_and_audience_opt_out_respected(session):
    loans = _book(session)
    reminders.opt_out(session, loans[0].customer_id)
    on(DUE - timedelta(days=3))
    cob.run_date(DUE - timedelta(days=3))
    made = session.scalars(select(Reminder).where(Reminder.offset_days == -3)).all()
    assert {r.loan_id for r in made} == {loan.id for loan in loans} - {loans[2].id}  # its first bill is paid
    assert len(made) == 2 * 6
    assert {(r.audience, r.status) for r in made if r.loan_id == loans[0].id} == {("borrower", "skipped"),
                                                                                  ("staff", "pending")}
    assert cob.run_date(DUE - timedelta(days=3)) == {}
    assert reminders.create_for(session, DUE - timedelta(days=3)) == 0  # again by hand: still once
    on(DUE + timedelta(days=1))
    cob.close_business()
    t1 = session.scalars(select(Reminder).where(Reminder.offset_days == 1)).all()
    assert {r.loan_id for r in t1} == {loan.id for loan in loans} - {loans[2].id}  # paid on time: no T+1
    assert reminders.dispatch(session) == session.scalar(select(func.count()).select_from(Reminder).where(
        Reminder.status == "pending"))


def _diff(a, b):
    return [(x, y) for x, y in zip(a[0], b[0], strict=True) if x != y] + \
        [(x, y) for x, y in zip(a[1], b[1], strict=True) if x != y]


def test_the_day_s_interest_accrual_per_product_version_rounded_once(session):
    w, first = make_loan(session)
    w2, second = make_loan(session, term=24)
    _, third = make_loan(session)
    w4, bullet = make_loan(session, repayment_method="bullet", terms_months=[3], term=3)
    on(DUE)
    pay(session, w, first, 94_619 + 12_000)
    state.refresh(session, third)
    third.status = "closed"  # a closed loan accrues nothing
    session.flush()
    on(D)
    cob.run_date(D)
    got = cob.accruals(session, D)
    # D = 2027-01-02 lies in period 2 (2026-12-23 → 2027-01-23, 31 days) of each loan
    for w_, loan in ((w, first), (w2, second)):
        interest = session.scalar(select(LoanInstallment.interest_amount).where(
            LoanInstallment.loan_id == loan.id, LoanInstallment.number == 2))
        want = (interest * 2 + 31) // 62  # interest / 31, half up
        assert got[w_.version_id] == (1, want)
    # the bullet loan's one period runs 2026-11-23 → 2027-02-23 (92 days)
    interest = session.scalar(select(LoanInstallment.interest_amount).where(LoanInstallment.loan_id == bullet.id))
    assert got[w4.version_id] == (1, (interest * 2 + 92) // 184)
    assert len(got) == 3
    cob.run_date(D)  # the step is recorded: nothing twice
    assert cob.accruals(session, D) == got
