"""Waivers (减免), maker-checker: requested by collections, approved within the approver's role limit and posted
as its own transaction; refused above the limit, without authority, by the requester, twice, above what is owed,
on a closed loan — nothing written."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core.errors import PermissionDenied
from lending.models import Repayment, RepaymentAllocation, Waiver
from lending.servicing import rollover, waivers
from lending.servicing.exceptions import LoanClosed, WaiverAboveLimit, WaiverDecided, WaiverInvalid
from postloan import actions as collections
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, pay, rows

DUE = date(2026, 12, 23)
PENALTY_10_DAYS = 473  # 946.19 × 0.05% × 10


def _world(session):
    w, loan = make_loan(session)
    collector = make_staff(session, role="collector", department=w.manager.department, data_scope="all")
    admin = make_staff(session, role="admin", department=w.manager.department, data_scope="all")
    waivers.set_limit(session, "manager", 10_000, viewer=V(admin))
    on(date(2027, 1, 2))
    rollover.roll_over(session)
    return w, loan, collector, admin


def _postings(session, loan):
    return session.scalar(select(func.count()).select_from(Repayment).where(Repayment.loan_id == loan.id))


def test_a_penalty_waiver_requested_by_collections_and_approved_is_its_own_transaction(session):
    w, loan, collector, _ = _world(session)
    asked = waivers.request_waiver(session, loan.id, viewer=V(collector), installment_number=1, component="penalty",
                                   amount=PENALTY_10_DAYS, reason="客户住院，经理同意减免罚息")
    assert asked.status == "requested" and _postings(session, loan) == 0
    done = waivers.approve_waiver(session, asked.id, viewer=V(w.manager), note="同意")
    assert done.status == "approved" and done.decided_by_staff_id == w.manager.id
    posting = session.get(Repayment, done.repayment_id)
    assert (posting.kind, posting.purpose, posting.amount, posting.external_reference) == \
        ("waiver", "waiver", PENALTY_10_DAYS, f"WAIVER-{asked.id}")
    split = session.execute(select(RepaymentAllocation.component, RepaymentAllocation.amount)
                            .where(RepaymentAllocation.repayment_id == posting.id)).all()
    assert split == [("penalty", PENALTY_10_DAYS)]
    first = rows(session, loan)[0]
    assert first.paid_penalty_amount == PENALTY_10_DAYS and first.penalty_amount == PENALTY_10_DAYS
    # the rest of the bill is still owed, without that penalty: interest + principal
    pay(session, w, loan, 12_000 + 94_619)
    assert rows(session, loan)[0].status == "paid"


def test_a_waiver_is_not_money_received_for_a_promise(session):
    w, loan, collector, _ = _world(session)
    collections.log_action(session, loan.id, viewer=V(collector), kind="promise", promised_date=date(2027, 1, 5),
                           promised_amount=PENALTY_10_DAYS)
    asked = waivers.request_waiver(session, loan.id, viewer=V(collector), installment_number=1, component="penalty",
                                   amount=PENALTY_10_DAYS, reason="减免")
    waivers.approve_waiver(session, asked.id, viewer=V(w.manager))
    assert [p.status for p in collections.promises(session, loan.id)] == ["open"]


def test_waiving_the_rest_of_the_interest_clears_the_bill(session):
    w, loan, collector, _ = _world(session)
    pay(session, w, loan, PENALTY_10_DAYS + 2_000)  # the penalty, then 20.00 of the interest
    first = rows(session, loan)[0]
    left = first.interest_amount - first.paid_interest_amount
    assert left == 10_000
    asked = waivers.request_waiver(session, loan.id, viewer=V(collector), installment_number=1, component="interest",
                                   amount=left, reason="利息减免")
    waivers.approve_waiver(session, asked.id, viewer=V(w.manager))
    first = rows(session, loan)[0]
    assert first.outstanding_amount == first.principal_amount == 94_619
    pay(session, w, loan, 94_619)
    assert rows(session, loan)[0].status == "paid"


@pytest.mark.parametrize("case", ["above_limit", "no_authority", "own_request", "twice"])
def test_bad_approvals_are_refused_with_nothing_written(session, case):
    w, loan, collector, admin = _world(session)
    asked = waivers.request_waiver(session, loan.id, viewer=V(w.manager if case == "own_request" else collector),
                                   installment_number=1, component="interest", amount=12_000, reason="减免")
    if case == "twice":
        waivers.set_limit(session, "manager", 20_000, viewer=V(admin))
        waivers.approve_waiver(session, asked.id, viewer=V(w.manager))
    before = (_postings(session, loan), rows(session, loan)[0].paid_interest_amount)
    approver = {"above_limit": w.manager, "no_authority": w.finance, "own_request": w.manager, "twice": w.manager}[case]
    error = {"above_limit": WaiverAboveLimit, "no_authority": PermissionDenied, "own_request": PermissionDenied,
             "twice": WaiverDecided}[case]
    words = {"above_limit": "审批额度 ¥100.00", "no_authority": "没有减免审批权限", "own_request": "自己",
             "twice": "已审批"}[case]
    with pytest.raises(error) as exc:
        waivers.approve_waiver(session, asked.id, viewer=V(approver))
    assert words in exc.value.message
    assert (_postings(session, loan), rows(session, loan)[0].paid_interest_amount) == before
    if case != "twice":
        assert session.get(Waiver, asked.id).status == "requested"


def test_a_request_above_what_is_owed_or_on_a_closed_loan_is_refused(session):
    w, loan, collector, _ = _world(session)
    with pytest.raises(WaiverInvalid, match="尚欠"):
        waivers.request_waiver(session, loan.id, viewer=V(collector), installment_number=1, component="penalty",
                               amount=PENALTY_10_DAYS + 1, reason="多减")
    with pytest.raises(WaiverInvalid, match="只能减免"):
        waivers.request_waiver(session, loan.id, viewer=V(collector), installment_number=1, component="principal",
                               amount=1, reason="本金")
    assert session.scalar(select(func.count()).select_from(Waiver)) == 0
    loan.status = "closed"
    session.flush()
    with pytest.raises(LoanClosed):
        waivers.request_waiver(session, loan.id, viewer=V(collector), installment_number=1, component="penalty",
                               amount=1, reason="已结清")


def test_a_rejected_request_posts_nothing_and_cannot_then_be_approved(session):
    w, loan, collector, _ = _world(session)
    asked = waivers.request_waiver(session, loan.id, viewer=V(collector), installment_number=1, component="penalty",
                                   amount=100, reason="减免")
    waivers.reject_waiver(session, asked.id, viewer=V(w.manager), note="不符合条件")
    assert session.get(Waiver, asked.id).status == "rejected" and _postings(session, loan) == 0
    with pytest.raises(WaiverDecided):
        waivers.approve_waiver(session, asked.id, viewer=V(w.manager))


def test_only_an_admin_sets_limits(session):
    w, _, _, _ = _world(session)
    with pytest.raises(PermissionDenied):
        waivers.set_limit(session, "collector", 1_000, viewer=V(w.manager))
    assert waivers.limits(session) == {"manager": 10_000}
