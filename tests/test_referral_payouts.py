"""Withdrawals and payouts: refused above the balance, deductions as entries, a refund after payout
netted by the next payout, the transfer file; mini-program domain functions."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from core import audit
from crm.scope import Viewer
from referral import ledger, mine, payouts, referrers
from referral.exceptions import InsufficientBalance, InvalidAmount, NotAllowed, WithdrawalStateError
from referral.models import CommissionEntry, WithdrawalRequest
from tests.factories import make_staff
from tests.referral_support import T0, make_agent, principal_rule, referred_customer
from tests.test_referral_ledger import disburse


@pytest.fixture
def finance(session):
    return Viewer.of(make_staff(session, role="finance"))


def _earn(session, agent, principal=1_000_000, *, at=T0):
    customer_id = referred_customer(session, agent)
    loan_id, _ = disburse(session, customer_id, principal, at=at)
    ledger.confirm_due(session, at + timedelta(days=31))
    return loan_id


def _pay(session, viewer, referrer_id, amount):
    request = payouts.request_withdrawal(session, referrer_id, amount)
    payouts.approve(session, viewer, request.id)
    batch = payouts.create_batch(session, viewer, "bank")
    payouts.mark_paid(session, viewer, batch.id)
    return request, batch


def _withdrawals(session):
    return session.scalar(select(func.count()).select_from(WithdrawalRequest))


def test_withdrawal_above_the_balance_is_refused_and_nothing_written(session):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    _earn(session, agent)  # 10,000 available
    before = _withdrawals(session)
    with pytest.raises(InsufficientBalance) as exc:
        payouts.request_withdrawal(session, agent.id, 10_001)
    assert "¥100.00" in exc.value.message
    assert _withdrawals(session) == before


def test_pending_commission_cannot_be_withdrawn(session):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    disburse(session, referred_customer(session, agent), 1_000_000)
    with pytest.raises(InsufficientBalance):
        payouts.request_withdrawal(session, agent.id, 1)


def test_open_requests_hold_their_amount(session):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    _earn(session, agent)
    payouts.request_withdrawal(session, agent.id, 6_000)
    with pytest.raises(InsufficientBalance):
        payouts.request_withdrawal(session, agent.id, 5_000)
    assert ledger.balance(session, agent.id).withdrawable == 4_000


def test_zero_or_negative_withdrawal_is_refused(session):
    agent = make_agent(session)
    with pytest.raises(InvalidAmount):
        payouts.request_withdrawal(session, agent.id, 0)


def test_payout_writes_paid_and_deduction_entries(session, finance):
    referrers.update_config(session, payout_tax_rate="0.2")
    agent = make_agent(session)
    principal_rule(session, level2="0")
    _earn(session, agent)
    request, batch = _pay(session, finance, agent.id, 10_000)
    rows = session.scalars(select(CommissionEntry).where(CommissionEntry.withdrawal_id == request.id)
                           .order_by(CommissionEntry.id)).all()
    assert [(e.kind, e.amount) for e in rows] == [("deduction", -2_000), ("paid", -8_000)]
    assert batch.total_amount == 8_000
    assert ledger.balance(session, agent.id).available == 0
    assert session.get(WithdrawalRequest, request.id).status == "paid"


def test_a_batch_is_marked_paid_once(session, finance):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    _earn(session, agent)
    _, batch = _pay(session, finance, agent.id, 10_000)
    from referral.exceptions import PayoutStateError

    with pytest.raises(PayoutStateError):
        payouts.mark_paid(session, finance, batch.id)
    assert ledger.balance(session, agent.id).paid == -10_000


def test_refund_after_payout_leaves_a_negative_balance_the_next_payout_nets(session, finance):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    loan1 = _earn(session, agent, 1_000_000)  # 10,000
    _pay(session, finance, agent.id, 10_000)
    ledger.reverse_for_loan(session, loan1, "客户退款")
    assert ledger.balance(session, agent.id).available == -10_000
    with pytest.raises(InsufficientBalance):
        payouts.request_withdrawal(session, agent.id, 1)
    _earn(session, agent, 3_000_000, at=T0 + timedelta(days=40))  # 30,000 more
    bal = ledger.balance(session, agent.id)
    assert bal.available == 20_000 and bal.withdrawable == 20_000
    with pytest.raises(InsufficientBalance):
        payouts.request_withdrawal(session, agent.id, 20_001)
    _pay(session, finance, agent.id, 20_000)
    assert ledger.balance(session, agent.id).available == 0


def test_reversal_after_approval_shrinks_the_batched_amount(session, finance):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    _earn(session, agent, 1_000_000)
    loan2 = _earn(session, agent, 1_000_000)
    request = payouts.request_withdrawal(session, agent.id, 20_000)
    payouts.approve(session, finance, request.id)
    ledger.reverse_for_loan(session, loan2, "退款")
    batch = payouts.create_batch(session, finance, "bank")
    assert session.get(WithdrawalRequest, request.id).amount == 10_000
    payouts.mark_paid(session, finance, batch.id)
    assert ledger.balance(session, agent.id).available == 0


def test_approval_is_for_finance_or_managers(session):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    _earn(session, agent)
    request = payouts.request_withdrawal(session, agent.id, 1_000)
    with pytest.raises(NotAllowed):
        payouts.approve(session, Viewer.of(make_staff(session, role="sales")), request.id)


def test_a_decided_request_cannot_be_approved_again(session, finance):
    agent = make_agent(session)
    principal_rule(session, level2="0")
    _earn(session, agent)
    request = payouts.request_withdrawal(session, agent.id, 1_000)
    payouts.reject(session, finance, request.id, "账户信息有误")
    with pytest.raises(WithdrawalStateError):
        payouts.approve(session, finance, request.id)


def test_export_masks_names_opens_the_sealed_account_and_is_audited(session, finance):
    agent = make_agent(session, "经纪人甲")
    principal_rule(session, level2="0")
    _earn(session, agent)
    assert agent.payee_account_masked.startswith("****") and "6225" not in agent.payee_account_enc
    _, batch = _pay(session, finance, agent.id, 10_000)
    rows = list(csv.reader(io.StringIO(payouts.export_csv(session, finance, batch.id).decode("utf-8-sig"))))
    assert rows[0] == payouts.EXPORT_HEADERS
    assert rows[1][1] == payouts.mask_name(agent.payee_name) and rows[1][1] != agent.payee_name
    assert rows[1][4].startswith("62250000") and rows[1][5] == "100.00"
    wb = load_workbook(io.BytesIO(payouts.export_xlsx(session, finance, batch.id)))
    assert wb.active.cell(2, 5).value == rows[1][4]
    assert audit.search(session, action="referral.payout.export", entity_id=str(batch.id))


def test_mask_name():
    assert [payouts.mask_name(n) for n in ("张三", "欧阳娜娜", "王")] == ["张*", "欧**娜", "王"]


def test_mini_program_functions(session):
    from tests.factories import make_customer

    inviter = make_customer(session, name="邀请人")
    me = mine.referrer_for_customer(session, inviter.id)
    friend = make_customer(session, name="张小明")
    from referral import attribution

    attribution.attribute(session, friend.id, me.code, source="miniprogram")
    (invitee,) = mine.my_invitees(session, me.id)
    assert invitee.name_masked == "张*明" and invitee.phone_masked and "****" in invitee.phone_masked
    assert mine.my_balance(session, me.id) == ledger.Balance()
    assert mine.my_ledger(session, me.id) == []
    assert mine.referrer_for_customer(session, inviter.id).id == me.id
