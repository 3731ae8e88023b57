"""Bill rollover (账单结转): overdue after the due date and grace days, overdue days from the first unpaid due
date, penalty exact and idempotent per day, buckets at their boundaries, the periodic task."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from core import tasks
from core.money import Rounding
from lending.models import Loan
from lending.servicing import rollover
from lending.servicing.arithmetic import ServicingTerms, bucket, penalty_amount, penalty_exact
from tests.servicing_support import days, make_loan, on, pay, rows

DUE = date(2026, 12, 23)  # the first installment's due date
P1 = 94_619


def _roll(session, day):
    on(day)
    n = rollover.roll_over(session)
    session.expire_all()
    return n


def test_a_bill_is_pending_on_its_due_date_and_overdue_the_day_after(session):
    _, loan = make_loan(session)
    _roll(session, DUE)
    assert rows(session, loan)[0].status == "pending" and session.get(Loan, loan.id).bucket == "C"
    assert _roll(session, DUE + days(1)) == 1
    first = rows(session, loan)[0]
    loan = session.get(Loan, loan.id)
    assert (first.status, loan.overdue_days, loan.bucket) == ("overdue", 1, "M1")
    assert first.penalty_amount == 47  # 946.19 × 0.05% × 1 = 0.473095 → 0.47
    assert rows(session, loan)[1].status == "pending"


def test_grace_days_delay_overdue_but_not_the_count(session):
    _, loan = make_loan(session, overdue_grace_days=3)
    _roll(session, DUE + days(3))
    first = rows(session, loan)[0]
    assert (first.status, first.penalty_amount, session.get(Loan, loan.id).bucket) == ("pending", 0, "C")
    _roll(session, DUE + days(4))
    first = rows(session, loan)[0]
    loan = session.get(Loan, loan.id)
    assert (first.status, loan.overdue_days) == ("overdue", 4)  # counted from the due date
    assert first.penalty_amount == 189  # 4 days: 1.89238 → 1.89


def test_paid_within_the_grace_days_carries_no_penalty(session):
    w, loan = make_loan(session, overdue_grace_days=3)
    first = rows(session, loan)[0]
    on(DUE + days(2))
    pay(session, w, loan, first.principal_amount + first.interest_amount)
    _roll(session, DUE + days(10))
    first = rows(session, loan)[0]
    assert (first.status, first.penalty_amount) == ("paid", 0)
    assert session.get(Loan, loan.id).bucket == "C"


def test_rerunning_the_job_the_same_day_adds_nothing(session):
    _, loan = make_loan(session)
    assert _roll(session, DUE + days(10)) == 1
    first = rows(session, loan)[0]
    assert first.penalty_amount == 473 and first.penalty_through_date == DUE + days(10)
    assert _roll(session, DUE + days(10)) == 0  # nothing claimed a second time
    assert rows(session, loan)[0].penalty_amount == 473
    on(DUE + days(10))
    from lending.servicing import state

    state.refresh(session, session.get(Loan, loan.id))  # even a forced recompute gives the same fen
    assert rows(session, loan)[0].penalty_amount == 473
    assert _roll(session, DUE + days(11)) == 1
    assert rows(session, loan)[0].penalty_amount == 520  # 11 days: 5.204045 → 5.20, rounded once, not 4.73 + 0.47


def test_penalty_is_rounded_once_over_the_days_not_per_day():
    terms = ServicingTerms(penalty_rate=Decimal("0.0005"))
    kwargs = {"principal": P1, "due_date": DUE, "as_of": DUE + days(11), "principal_paid": [], "cleared_date": None}
    assert penalty_exact(terms, **kwargs) == Fraction(P1 * 11 * 5, 10_000)
    assert penalty_amount(terms, **kwargs) == 520  # per-day rounding would have given 11 × 0.47 = 5.17
    half_even = ServicingTerms(penalty_rate=Decimal("0.0005"), rounding=Rounding.HALF_EVEN, currency_digits=0)
    assert penalty_amount(half_even, **kwargs) == 500  # to the yuan: 5.204045 → 5


def test_annual_penalty_rates_use_the_day_basis_of_the_contract():
    terms = ServicingTerms(penalty_rate=Decimal("0.18"), penalty_basis="annual", days_in_year="actual")
    # 2027-12-31 and 2028-01-01: one day of a 365-day year, one of a leap year
    exact = penalty_exact(terms, principal=100_000, due_date=date(2027, 12, 30), as_of=date(2028, 1, 1),
                          principal_paid=[], cleared_date=None)
    assert exact == Fraction(100_000) * Fraction(18, 100) * (Fraction(1, 365) + Fraction(1, 366))


@pytest.mark.parametrize(("overdue", "expected"), [
    (0, "C"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"), (91, "M3+"), (400, "M3+")])
def test_bucket_boundaries(overdue, expected):
    assert bucket(overdue) == expected


@pytest.mark.parametrize(("overdue", "expected"), [(30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"),
                                                    (91, "M3+")])
def test_the_loan_bucket_follows_the_first_unpaid_due_date(session, overdue, expected):
    _, loan = make_loan(session, penalty_rate=0)
    _roll(session, DUE + days(overdue))
    loan = session.get(Loan, loan.id)
    assert (loan.overdue_days, loan.bucket) == (overdue, expected)


def test_paying_the_oldest_bill_moves_the_count_to_the_next_one(session):
    w, loan = make_loan(session, penalty_rate=0)
    _roll(session, DUE + days(40))  # 2027-02-01: installments 1 (40 days) and 2 (9 days) overdue
    assert session.get(Loan, loan.id).bucket == "M2"
    first = rows(session, loan)[0]
    pay(session, w, loan, first.principal_amount + first.interest_amount)
    loan = session.get(Loan, loan.id)
    assert (loan.overdue_days, loan.bucket) == (9, "M1")


def test_partial_principal_lowers_the_penalty_from_the_next_day(session):
    w, loan = make_loan(session)
    on(DUE + days(5))
    pay(session, w, loan, 237 + 12_000 + 44_619)  # penalty 5 days: 2.365475 → 2.37; 500.00 of principal left
    _roll(session, DUE + days(10))
    first = rows(session, loan)[0]
    # 5 days on 946.19 + 5 days on 500.00 at 0.05%: 2.365475 + 1.25 = 3.615475 → 3.62
    assert first.penalty_amount == 362


def test_the_periodic_task_is_declared_and_rolls_over(session):
    assert "lending.roll_over_bills" in tasks.PERIODIC
    _, loan = make_loan(session)
    session.commit()
    on(DUE + days(2))
    assert tasks.run_task("lending.roll_over_bills", (), {}) == 1
    assert tasks.run_task("lending.roll_over_bills", (), {}) == 0
    session.expire_all()
    assert session.get(Loan, loan.id).bucket == "M1"
