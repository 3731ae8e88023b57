"""Staff commission: referral's staff schemes accrue from the fees finance collects at 结单, and reverse on refund."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from finance import hooks, ledger, settlements
from finance.exceptions import FinanceInvalid
from finance.settlements import ChargeInput
from referral import rules
from referral.models import CommissionEntry
from referral.tasks import on_finance_fees_collected, on_finance_fees_refunded
from tests.finance_support import V, make_world, working_agreement


def settled(session, w):
    a = working_agreement(session, w, deposit_amount=100_000)
    s = settlements.record_disbursement(session, a.id, funder_name="某银行", funder_type="bank", amount=20_000_000,
                                        disbursed_date=None, viewer=V(w.finance))
    # fee revenue: 6,000 service fee + 800 agreed fee = 6,800 元; 1,000 deposit applied
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("bank", 580_000)]), viewer=V(w.finance))
    for who, staff in (("officer", w.officer), ("supervisor", w.supervisor), ("sales", w.sales)):
        settlements.confirm_voucher(session, s.id, who, revision=s.revision, viewer=V(staff))
    return settlements.close(session, s.id, viewer=V(w.finance))


def entries(session, customer_id):
    return list(session.scalars(select(CommissionEntry).where(CommissionEntry.customer_id == customer_id)
                                .order_by(CommissionEntry.id)))


def test_referral_joins_finance_hooks():
    assert on_finance_fees_collected in hooks.ON_FEES_COLLECTED
    assert on_finance_fees_refunded in hooks.ON_FEES_REFUNDED


def test_staff_commission_accrues_on_fees_collected_and_reverses_on_refund(session):
    rules.create_rule(session, "服务费提成", "staff", rules.RuleTerms(basis="service_fee", level1_rate=Decimal("0.10")))
    w = make_world(session)
    s = settled(session, w)
    accrued = [e for e in entries(session, w.customer.id) if e.kind == "accrued"]
    assert [e.amount for e in accrued] == [68_000]  # 10% of 6,800 元
    settlements.refund_fee(session, s.id, amount=180_000, method="bank", reason="客户投诉，部分退费",
                           viewer=V(w.finance))
    rows = entries(session, w.customer.id)
    reversals = [e for e in rows if e.kind == "reversed"]
    assert [e.reverses_entry_id for e in reversals] == [accrued[0].id]
    again = [e for e in rows if e.kind == "accrued" and e.id != accrued[0].id]
    assert [e.amount for e in again] == [50_000]  # 10% of the 5,000 元 kept
    with pytest.raises(FinanceInvalid, match="超过可退的服务费收入"):
        settlements.refund_fee(session, s.id, amount=500_001, method="bank", reason="再退", viewer=V(w.finance))
    assert ledger.run_check(session).ok
