"""Real concurrency (a SQLite file, and PostgreSQL when configured): a double click books once, two slips on one
loan are written off one after the other, a reversal happens once."""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select

from core import clock
from core.db import unit_of_work
from lending.models import Loan, LoanInstallment, Repayment, RepaymentAllocation
from lending.servicing import repayments
from lending.servicing.exceptions import AlreadyReversed
from tests.lending_flow_support import V, count
from tests.servicing_support import at, make_loan


def _race(n, fn):
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def run(i):
        barrier.wait()
        try:
            with unit_of_work() as s:
                outcomes[i] = fn(s, i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def _loan():
    with unit_of_work() as s:
        w, loan = make_loan(s)
        return loan.id, V(w.finance)


def test_a_double_click_books_once(committed):
    loan_id, finance = _loan()
    clock.freeze(at(date(2027, 1, 2)))
    outcomes = _race(2, lambda s, i: repayments.record_repayment(
        s, loan_id, viewer=finance, amount=50_000, external_reference="DOUBLE-CLICK").id)
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert outcomes[0] == outcomes[1]
    with unit_of_work() as s:
        assert count(s, Repayment) == 1
        assert s.scalar(select(func.sum(RepaymentAllocation.amount))) == 50_000
        paid = s.scalar(select(func.sum(LoanInstallment.paid_principal_amount + LoanInstallment.paid_interest_amount
                                        + LoanInstallment.paid_penalty_amount + LoanInstallment.paid_fee_amount)))
        assert paid == 50_000


def test_two_slips_at_once_are_both_written_off_in_turn(committed):
    loan_id, finance = _loan()
    clock.freeze(at(date(2027, 1, 2)))
    outcomes = _race(2, lambda s, i: repayments.record_repayment(
        s, loan_id, viewer=finance, amount=40_000, external_reference=f"SLIP-{i}").id)
    assert all(isinstance(o, int) for o in outcomes) and outcomes[0] != outcomes[1], outcomes
    with unit_of_work() as s:
        first = s.scalar(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id,
                                                       LoanInstallment.number == 1))
        # 80,000 fen on one installment: penalty 473, interest 12,000, principal 67,527 — nothing written twice
        assert (first.paid_penalty_amount, first.paid_interest_amount, first.paid_principal_amount) == \
            (473, 12_000, 67_527)
        assert s.get(Loan, loan_id).status == "active"


def test_two_reversals_at_once_reverse_once(committed):
    loan_id, finance = _loan()
    clock.freeze(at(date(2027, 1, 2)))
    with unit_of_work() as s:
        rid = repayments.record_repayment(s, loan_id, viewer=finance, amount=30_000, external_reference="R").id
    outcomes = _race(2, lambda s, i: repayments.reverse_repayment(s, rid, viewer=finance, reason="误入账").id)
    assert sum(isinstance(o, int) for o in outcomes) == 1, outcomes
    assert any(isinstance(o, AlreadyReversed) for o in outcomes), outcomes
    with unit_of_work() as s:
        assert count(s, Repayment, Repayment.kind == "reversal") == 1
        assert s.scalar(select(func.sum(RepaymentAllocation.amount))) == 0
