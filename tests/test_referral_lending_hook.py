"""Accrual through lending: the disbursement's task lending.loan_disbursed runs referral's hook in its
unit of work; the commission accrues once, on the contract's principal, product and funder type."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from lending import disbursement
from lending.models import Funder, Loan
from referral import attribution, rules
from referral.models import CommissionEntry
from referral.tasks import disbursement_of, on_loan_disbursed
from tests.lending_flow_support import AMOUNT, V, advance_to, freeze, make_world, start
from tests.referral_support import make_agent


def _disbursed_loan(session, task_runner, w):
    app = advance_to(session, w, start(session, w), "disbursement")
    loan = disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference=f"REF-{app.id}")
    session.commit()
    task_runner.drain()
    return loan


def test_hook_is_registered_with_lending():
    assert on_loan_disbursed in disbursement.ON_LOAN_DISBURSED


def test_disbursement_task_accrues_the_referrers_commission_once(session, task_runner):
    freeze()
    w = make_world(session)
    top = make_agent(session)
    agent = make_agent(session, parent=top)
    attribution.attribute(session, w.customer.id, agent.code)
    rules.create_rule(session, "放款佣金", "referrer", rules.RuleTerms(
        basis="principal", level1_rate=Decimal("0.01"), level2_rate=Decimal("0.002"), product_id=w.product.id))
    loan = _disbursed_loan(session, task_runner, w)
    rows = session.scalars(select(CommissionEntry).where(CommissionEntry.loan_id == loan.id)
                           .order_by(CommissionEntry.level)).all()
    assert [(e.referrer_id, e.amount, e.product_id) for e in rows] == [
        (agent.id, AMOUNT // 100, w.product.id), (top.id, AMOUNT * 2 // 1000, w.product.id)]
    on_loan_disbursed(session, loan.id)  # a re-delivery of the hook
    assert len(session.scalars(select(CommissionEntry).where(CommissionEntry.loan_id == loan.id)).all()) == 2


def test_loan_is_adapted_with_its_funder_type(session, task_runner):
    freeze()
    w = make_world(session)
    loan = _disbursed_loan(session, task_runner, w)
    adapted = disbursement_of(session, loan.id)
    funder_type = session.scalar(select(Funder.funder_type).where(Funder.id == w.product.funder_id))
    assert adapted is not None
    assert (adapted.customer_id, adapted.product_id, adapted.funder_type, adapted.principal_fen) == (
        w.customer.id, w.product.id, funder_type, session.get(Loan, loan.id).principal_amount)
