"""Concurrency decided by the database: two workers on one disbursement accrue once; two withdrawals
racing for one balance do not both pass. Real commits, real threads."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from core.db import unit_of_work
from referral import ledger, payouts
from referral.exceptions import InsufficientBalance
from referral.models import CommissionEntry, WithdrawalRequest
from tests.referral_support import T0, make_agent, principal_rule, referred_customer


def _race(n, body):
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i):
        barrier.wait()
        try:
            with unit_of_work() as s:
                results[i] = body(s)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each worker got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_workers_on_the_same_disbursement_accrue_once(committed):
    with unit_of_work() as s:
        top = make_agent(s)
        agent = make_agent(s, parent=top)
        customer_id = referred_customer(s, agent)
        principal_rule(s)

    def accrue(s):
        return ledger.accrue_for_disbursement(s, loan_id=4242, customer_id=customer_id, product_id=1,
                                              funder_type="bank", principal_fen=1_000_000, disbursed_at=T0)

    results = _race(2, accrue)
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(len(r) for r in results) == [0, 2]
    with unit_of_work() as s:
        rows = s.execute(select(CommissionEntry.level, func.count()).where(CommissionEntry.loan_id == 4242)
                         .group_by(CommissionEntry.level).order_by(CommissionEntry.level)).all()
        assert [tuple(r) for r in rows] == [(1, 1), (2, 1)]
        assert ledger.balance(s, agent.id).total == 10_000


def test_two_withdrawals_racing_for_one_balance(committed):
    with unit_of_work() as s:
        agent = make_agent(s)
        principal_rule(s, level2="0")
        customer_id = referred_customer(s, agent)
        ledger.accrue_for_disbursement(s, loan_id=77, customer_id=customer_id, product_id=1, funder_type="bank",
                                       principal_fen=1_000_000, disbursed_at=T0)
        ledger.confirm_due(s, T0 + timedelta(days=31))
        agent_id = agent.id

    results = _race(2, lambda s: payouts.request_withdrawal(s, agent_id, 6_000).id)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, InsufficientBalance) for r in results) == 1
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(WithdrawalRequest)) == 1
