"""Backdated correction (回溯重算): reversing a mistaken repayment writes off every later transaction again in
value-date order — allocation, penalty and state as if the reversed one had never been booked — by appended
difference rows (nothing edited), audited; refused with nothing written behind a later prepayment."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from lending.models import Loan, Repayment, RepaymentAllocation
from lending.servicing import repayments, state, waivers
from lending.servicing.exceptions import ReversalRefused
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, pay, rows

P1, I1 = 94_619, 12_000  # installment 1 (due 2026-12-23); 等额本息: every bill is 1,066.19
BILL = P1 + I1


def _net(session, repayment_id):
    return {(iid, c): int(s) for iid, c, s in session.execute(
        select(RepaymentAllocation.installment_id, RepaymentAllocation.component, func.sum(RepaymentAllocation.amount))
        .where(RepaymentAllocation.repayment_id == repayment_id)
        .group_by(RepaymentAllocation.installment_id, RepaymentAllocation.component)) if s}


def _state(session, loan):
    loan = session.get(Loan, loan.id)
    session.refresh(loan)
    return (loan.status, loan.bucket, loan.overdue_days,
            [(r.number, r.status, r.penalty_amount, r.paid_penalty_amount, r.paid_interest_amount,
              r.paid_principal_amount) for r in rows(session, loan)[:3]])


def test_a_reversal_replays_every_later_repayment_as_if_the_reversed_one_never_was(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    mistaken = pay(session, w, loan, BILL)  # booked to the wrong loan (串户)
    on(date(2027, 1, 23))
    later = pay(session, w, loan, BILL)  # paid bill 2 at the time
    first, second = rows(session, loan)[:2]
    assert _net(session, later.id) == {(second.id, "interest"): second.interest_amount,
                                       (second.id, "principal"): second.principal_amount}
    on(date(2027, 2, 1))
    reversal = repayments.reverse_repayment(session, mistaken.id, viewer=V(w.finance), reason="串户，退回")

    # the later repayment now pays bill 1 as of 2027-01-23: 31 days of penalty on 946.19 (14.665945 → 14.67),
    # then its interest, then 931.52 of its principal; bill 2 untouched
    assert _net(session, later.id) == {(first.id, "penalty"): 1_467, (first.id, "interest"): I1,
                                       (first.id, "principal"): BILL - 1_467 - I1}
    # append-only: the original rows are still there, the difference rows appended and marked
    marked = session.scalars(select(RepaymentAllocation).where(RepaymentAllocation.replay_id == reversal.id)).all()
    assert {a.repayment_id for a in marked} == {later.id} and len(marked) == 5
    assert session.scalar(select(func.count()).select_from(RepaymentAllocation).where(
        RepaymentAllocation.repayment_id == later.id, RepaymentAllocation.replay_id.is_(None))) == 2

    # the same end state as a twin loan on which only the later repayment was ever booked
    tw, twin = make_loan(session)
    on(date(2027, 1, 23))
    pay(session, tw, twin, BILL)
    on(date(2027, 2, 1))
    state.refresh(session, session.get(Loan, twin.id))
    got, want = _state(session, loan), _state(session, twin)
    assert got == want
    # penalty recomputed to 2027-02-01: 14.665945 + 14.67 × 0.05% × 9 (0.066015) = 14.73196 → 14.73 on bill 1
    assert got[:3] == ("active", "M2", 40) and got[3][0] == (1, "overdue", 1_473, 1_467, I1, BILL - 1_467 - I1)
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "lending.repayment.reverse"))
    assert str(later.id) in entry.before["replayed"] and str(later.id) in entry.after["replayed"]


def test_a_reversal_behind_a_later_prepayment_is_refused_and_writes_nothing(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    mistaken = pay(session, w, loan, BILL)
    on(date(2027, 1, 10))
    repayments.record_repayment(session, loan.id, viewer=V(w.finance), amount=300_000, external_reference="PRE-1",
                                prepayment_mode="keep_term")
    count = session.scalar(select(func.count()).select_from(RepaymentAllocation))
    before = _state(session, loan)
    with pytest.raises(ReversalRefused, match="提前还款"):
        repayments.reverse_repayment(session, mistaken.id, viewer=V(w.finance), reason="串户")
    assert session.scalar(select(func.count()).select_from(Repayment).where(Repayment.kind == "reversal")) == 0
    assert session.scalar(select(func.count()).select_from(RepaymentAllocation)) == count
    assert _state(session, loan) == before


def test_a_later_waiver_keeps_its_installment_and_component(session):
    w, loan = make_loan(session)
    admin = make_staff(session, role="admin", department=w.manager.department, data_scope="all")
    waivers.set_limit(session, "manager", 100_000, viewer=V(admin))
    on(date(2026, 12, 23))
    mistaken = pay(session, w, loan, BILL)
    on(date(2027, 1, 23))
    second = rows(session, loan)[1]
    asked = waivers.request_waiver(session, loan.id, viewer=V(w.sales), installment_number=2, component="interest",
                                   amount=second.interest_amount, reason="活动减免")
    waived = waivers.approve_waiver(session, asked.id, viewer=V(w.manager))
    later = pay(session, w, loan, second.principal_amount)  # bill 2 settled with the waiver
    on(date(2027, 1, 25))
    repayments.reverse_repayment(session, mistaken.id, viewer=V(w.finance), reason="串户")
    assert _net(session, waived.repayment_id) == {(second.id, "interest"): second.interest_amount}
    first = rows(session, loan)[0]
    assert set(_net(session, later.id)) <= {(first.id, c) for c in ("penalty", "interest", "principal")}

