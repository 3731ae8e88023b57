"""Reimbursements (做单报销, marketing costs) through the ledger, and the finance performance report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.errors import PermissionDenied
from finance import ledger, performance, reimbursements, settlements
from finance.exceptions import AmountInvalid, FinanceInvalid, StateConflict
from finance.settlements import ChargeInput
from tests.finance_support import V, approved_agreement, make_world, working_agreement


def test_a_reimbursement_is_booked_paid_voided_and_resubmitted(session):
    w = make_world(session)
    a = working_agreement(session, w)
    r = reimbursements.submit(session, agreement_id=a.id, category="交通费", amount=12_000, viewer=V(w.officer),
                              approved_by_manager_id=w.supervisor.id, note="下户打车")
    assert r.kind == "case" and r.status == "submitted"
    with pytest.raises(PermissionDenied):
        reimbursements.confirm(session, r.id, viewer=V(w.officer))
    reimbursements.confirm(session, r.id, viewer=V(w.finance))
    reimbursements.void(session, r.id, reason="金额有误", viewer=V(w.finance))
    again = reimbursements.resubmit(session, r.id, amount=10_000, viewer=V(w.officer))
    assert again.resubmitted_from_id == r.id and again.amount == 10_000
    reimbursements.confirm(session, again.id, viewer=V(w.finance))
    reimbursements.pay(session, again.id, method="wechat", viewer=V(w.finance))
    with pytest.raises(StateConflict, match="已支付"):
        reimbursements.void(session, again.id, reason="x", viewer=V(w.finance))
    rows = reimbursements.listing(session, V(w.finance))
    assert [(row[0].id, row[0].status) for row in rows] == [(again.id, "paid"), (r.id, "voided")]
    assert ledger.run_check(session).ok
    with pytest.raises(AmountInvalid):
        reimbursements.submit(session, agreement_id=a.id, category="交通费", amount=-1, viewer=V(w.officer))
    with pytest.raises(FinanceInvalid, match="类别"):
        reimbursements.submit(session, agreement_id=a.id, category="旅游", amount=1, viewer=V(w.officer))


def test_marketing_costs_are_per_customer(session):
    w = make_world(session)
    r = reimbursements.submit(session, customer_id=w.customer.id, category="广告投放", amount=50_000,
                              viewer=V(w.sales))
    assert r.kind == "marketing" and r.agreement_id is None
    reimbursements.confirm(session, r.id, viewer=V(w.finance))
    assert ledger.run_check(session).ok


def test_performance_counts_signed_disbursed_and_collected_and_ranks_funder_types(session):
    w = make_world(session)
    approved_agreement(session, w)  # signed, not disbursed
    a = working_agreement(session, w, deposit_amount=100_000)
    s = settlements.record_disbursement(session, a.id, funder_name="某银行", funder_type="bank", amount=20_000_000,
                                        disbursed_date=None, viewer=V(w.finance))
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("bank", 580_000)]), viewer=V(w.finance))
    for who, staff in (("officer", w.officer), ("supervisor", w.supervisor), ("sales", w.sales)):
        settlements.confirm_voucher(session, s.id, who, revision=s.revision, viewer=V(staff))
    settlements.close(session, s.id, viewer=V(w.finance))
    today = clock.today()
    lines, funders = performance.report(session, V(w.finance), since=today - timedelta(days=30), until=today)
    assert len(lines) == 1
    line = lines[0]
    assert (line.staff_id, line.signed_count, line.signed_amount, line.disbursed_amount, line.revenue_amount) == (
        w.sales.id, 2, 40_000_000, 20_000_000, 680_000)
    assert str(line.success_rate) == "0.5000"
    assert [(f.funder_type, f.count, f.revenue_amount) for f in funders] == [("bank", 1, 680_000)]
    with pytest.raises(PermissionDenied):
        performance.report(session, V(w.sales), since=today, until=today)
    other, _ = performance.report(session, V(w.supervisor), since=today - timedelta(days=1), until=today,
                                  salesperson_id=w.other_sales.id)
    assert other == []
