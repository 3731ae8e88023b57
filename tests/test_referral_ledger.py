"""The commission ledger: accrual once per source event, two levels, tiers and caps, confirmation,
reversal once, append-only, balances derived from entries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from core import clock
from referral import ledger, referrers, rules
from referral.exceptions import AlreadyReversed, NotReversible, OverlappingTiers
from referral.models import CommissionEntry, CommissionRuleVersion
from tests.factories import make_customer, make_staff
from tests.referral_support import T0, make_agent, principal_rule, referred_customer

E = CommissionEntry
_loan = iter(range(1000, 100000))


def disburse(session, customer_id, principal=10_000_000, *, fee=0, at=None, product_id=7, funder_type="bank",
             loan_id=None):
    loan_id = loan_id or next(_loan)
    ids = ledger.accrue_for_disbursement(session, loan_id=loan_id, customer_id=customer_id, product_id=product_id,
                                         funder_type=funder_type, principal_fen=principal, service_fee_fen=fee,
                                         disbursed_at=at or T0)
    return loan_id, ids


def _entries(session, **where):
    stmt = select(E).order_by(E.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(E, key) == value)
    return list(session.scalars(stmt))


def _assert_balances_match_entries(session, referrer_id):
    rows = _entries(session, referrer_id=referrer_id)
    total = sum(e.amount for e in rows if e.kind != "confirmed")
    confirmed_ids = {e.confirms_entry_id for e in rows if e.kind == "confirmed"}
    available = sum(e.amount for e in rows if e.kind in ("confirmed", "paid", "deduction")) + sum(
        e.amount for e in rows if e.kind == "reversed" and e.reverses_entry_id in confirmed_ids)
    bal = ledger.balance(session, referrer_id)
    assert (bal.total, bal.available, bal.pending) == (total, available, total - available)


def test_two_level_accrual(session):
    top = make_agent(session, "上级")
    agent = make_agent(session, "经纪人", parent=top)
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    loan_id, ids = disburse(session, customer_id, 10_000_000)  # ¥100,000
    rows = _entries(session, loan_id=loan_id)
    assert [(e.referrer_id, e.level, e.amount, e.kind) for e in rows] == [
        (agent.id, 1, 100_000, "accrued"), (top.id, 2, 20_000, "accrued")]
    version_id = rows[0].rule_version_id
    assert rows[0].source_event_key == f"loan_disbursed:{loan_id}:{version_id}:1"
    assert len(ids) == 2


def test_accruals_and_reversals_land_on_the_customers_timeline_once(session):
    from crm import customers

    agent = make_agent(session, "经纪人")
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    loan_id, ids = disburse(session, customer_id, 10_000_000)
    disburse(session, customer_id, loan_id=loan_id)  # a re-delivery writes no second event
    ledger.reverse_entry(session, ids[0], "客户退款")
    events = [(e.kind, e.summary) for e in customers.timeline(session, customer_id)
              if e.kind.startswith("commission.")]
    assert events == [("commission.reversed", "佣金冲回：经纪人 -¥1,000.00（客户退款）"),
                      ("commission.accrued", "佣金计提：经纪人 ¥1,000.00（第 1 级，待确认）")]


def test_redelivered_disbursement_accrues_once(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    loan_id, first = disburse(session, customer_id)
    _, again = disburse(session, customer_id, loan_id=loan_id)
    assert first and again == []
    assert len(_entries(session, loan_id=loan_id)) == 1


def test_customer_without_attribution_earns_no_referrer_commission(session):
    principal_rule(session)
    customer = make_customer(session)
    _, ids = disburse(session, customer.id)
    assert ids == []


def test_most_specific_rule_wins(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session, "通用", level1="0.01")
    principal_rule(session, "银行资方", level1="0.02", funder_type="bank")
    principal_rule(session, "产品7", level1="0.03", product_id=7)
    loan_id, _ = disburse(session, customer_id, 1_000_000)
    assert [e.amount for e in _entries(session, loan_id=loan_id)] == [30_000]


def test_per_loan_cap(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session, per_loan_cap_amount=50_000)
    loan_id, _ = disburse(session, customer_id, 10_000_000)
    (entry,) = _entries(session, loan_id=loan_id, level=1)
    assert entry.amount == 50_000 and entry.note == "已按单笔封顶"


def test_monthly_cap(session):
    agent = make_agent(session)
    c1, c2, c3 = (referred_customer(session, agent) for _ in range(3))
    principal_rule(session, level2="0", monthly_cap_amount=150_000)
    disburse(session, c1, 10_000_000)  # 100,000
    loan2, _ = disburse(session, c2, 10_000_000, at=T0 + timedelta(days=1))  # capped to 50,000
    loan3, _ = disburse(session, c3, 10_000_000, at=T0 + timedelta(days=2))  # nothing left: a zero row
    assert _entries(session, loan_id=loan2)[0].amount == 50_000
    assert _entries(session, loan_id=loan3)[0].amount == 0
    assert ledger.balance(session, agent.id).total == 150_000


def test_monthly_cap_resets_in_the_next_shanghai_month(session):
    agent = make_agent(session)
    c1, c2 = referred_customer(session, agent), referred_customer(session, agent)
    principal_rule(session, level2="0", monthly_cap_amount=100_000)
    disburse(session, c1, 10_000_000, at=T0)
    # 2026-03-31 16:00 UTC is 2026-04-01 00:00 in Shanghai: a new month
    from datetime import UTC, datetime
    loan, _ = disburse(session, c2, 10_000_000, at=datetime(2026, 3, 31, 16, 0, tzinfo=UTC))
    assert _entries(session, loan_id=loan)[0].amount == 100_000


def test_tier_by_monthly_volume(session):
    agent = make_agent(session)
    c1, c2 = referred_customer(session, agent), referred_customer(session, agent)
    principal_rule(session, tiers=[
        {"min_amount": 0, "max_amount": 20_000_000, "level1_rate": "0.01", "level2_rate": "0"},
        {"min_amount": 20_000_000, "max_amount": None, "level1_rate": "0.015", "level2_rate": "0"}])
    loan1, _ = disburse(session, c1, 15_000_000)  # month volume 150k -> 1%
    loan2, _ = disburse(session, c2, 10_000_000, at=T0 + timedelta(hours=1))  # 250k -> 1.5%
    assert _entries(session, loan_id=loan1)[0].amount == 150_000
    assert _entries(session, loan_id=loan2)[0].amount == 150_000


def test_overlapping_tiers_are_refused_and_nothing_written(session):
    before = session.scalar(select(func.count()).select_from(CommissionRuleVersion))
    with pytest.raises(OverlappingTiers) as exc:
        principal_rule(session, tiers=[
            {"min_amount": 0, "max_amount": 20_000_000, "level1_rate": "0.01"},
            {"min_amount": 10_000_000, "max_amount": None, "level1_rate": "0.02"}])
    assert "重叠" in exc.value.message
    assert session.scalar(select(func.count()).select_from(CommissionRuleVersion)) == before


def test_an_edit_is_a_new_version_and_old_entries_keep_theirs(session):
    agent = make_agent(session)
    c1, c2 = referred_customer(session, agent), referred_customer(session, agent)
    rule = principal_rule(session, level1="0.01", level2="0")
    loan1, _ = disburse(session, c1, 1_000_000)
    v2 = rules.new_version(session, rule.id, rules.RuleTerms(basis="principal", level1_rate=Decimal("0.02")))
    loan2, _ = disburse(session, c2, 1_000_000)
    e1, e2 = _entries(session, loan_id=loan1)[0], _entries(session, loan_id=loan2)[0]
    assert (e1.amount, e2.amount) == (10_000, 20_000)
    assert e2.rule_version_id == v2.id != e1.rule_version_id
    assert v2.version == 2


def test_rule_versions_are_immutable(session):
    rule = principal_rule(session)
    version = session.get(CommissionRuleVersion, rule.current_version_id)
    version.level1_rate = Decimal("0.5")
    with pytest.raises(RuntimeError):
        session.flush()


def test_staff_scheme_pays_the_customers_salesperson(session):
    sales = make_staff(session, role="sales")
    customer = make_customer(session, owner=sales)
    rules.create_rule(session, "销售提成", "staff", rules.RuleTerms(basis="principal", level1_rate=Decimal("0.005")))
    loan_id, _ = disburse(session, customer.id, 2_000_000)
    (entry,) = _entries(session, loan_id=loan_id)
    staff_referrer = referrers.ensure_staff_referrer(session, sales.id)
    assert (entry.referrer_id, entry.amount) == (staff_referrer.id, 10_000)


def test_service_fee_commission_is_confirmed_when_collected(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    rules.create_rule(session, "服务费分成", "referrer", rules.RuleTerms(basis="service_fee", level1_rate="20%"))
    loan_id, _ = disburse(session, customer_id, 1_000_000, fee=50_000)
    kinds = [(e.kind, e.amount) for e in _entries(session, loan_id=loan_id)]
    assert kinds == [("accrued", 10_000), ("confirmed", 10_000)]
    assert ledger.balance(session, agent.id).available == 10_000


def test_disbursement_bounty(session):
    top = make_agent(session)
    agent = make_agent(session, parent=top)
    customer_id = referred_customer(session, agent)
    rules.create_rule(session, "放款奖励", "referrer", rules.RuleTerms(
        basis="bounty", bounty_event="disbursement", level1_bounty_amount=20_000, level2_bounty_amount=5_000))
    loan_id, _ = disburse(session, customer_id)
    assert [(e.level, e.amount) for e in _entries(session, loan_id=loan_id)] == [(1, 20_000), (2, 5_000)]


def test_confirmation_waits_for_the_clawback_window(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session, clawback_days=30)
    loan_id, (entry_id, *_) = disburse(session, customer_id, 1_000_000)
    assert ledger.confirm_due(session, T0 + timedelta(days=29)) == 0
    assert ledger.balance(session, agent.id).available == 0
    ledger.confirm_due(session, T0 + timedelta(days=30))
    assert ledger.state_of(session, entry_id) == "confirmed"
    assert ledger.balance(session, agent.id).available == 10_000
    ledger.confirm_due(session, T0 + timedelta(days=31))  # again: nothing more
    assert len(_entries(session, confirms_entry_id=entry_id)) == 1


def test_reversed_accrual_is_not_confirmed(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    loan_id, (entry_id, *_) = disburse(session, customer_id, 1_000_000)
    ledger.reverse_for_loan(session, loan_id, "退款")
    ledger.confirm_due(session, T0 + timedelta(days=365))
    assert _entries(session, confirms_entry_id=entry_id) == []
    assert ledger.balance(session, agent.id) == ledger.Balance(accrued=10_000, reversed=-10_000)


def test_a_reversed_entry_cannot_be_reversed_again(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    _, (entry_id, *_) = disburse(session, customer_id, 1_000_000)
    ledger.reverse_entry(session, entry_id, "作废")
    with pytest.raises(AlreadyReversed):
        ledger.reverse_entry(session, entry_id, "再次作废")
    assert len(_entries(session, reverses_entry_id=entry_id)) == 1


def test_only_accruals_can_be_reversed(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    _, (entry_id, *_) = disburse(session, customer_id, 1_000_000)
    reversal_id = ledger.reverse_entry(session, entry_id, "作废")
    with pytest.raises(NotReversible):
        ledger.reverse_entry(session, reversal_id, "冲回冲回")


def test_ledger_rows_cannot_be_updated_or_deleted_in_the_database(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    _, (entry_id, *_) = disburse(session, customer_id, 1_000_000)
    for sql in ("UPDATE commission_entry SET amount = 1 WHERE id = :id", "DELETE FROM commission_entry WHERE id = :id"):
        with pytest.raises(DatabaseError), session.begin_nested():
            session.execute(text(sql), {"id": entry_id})
    assert session.get(E, entry_id).amount == 10_000


def test_ledger_rows_cannot_be_updated_through_the_orm(session):
    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session)
    _, (entry_id, *_) = disburse(session, customer_id, 1_000_000)
    session.get(E, entry_id).amount = 1
    with pytest.raises(RuntimeError):
        session.flush()


def test_entries_sum_to_balances_through_a_mixed_history(session):
    top = make_agent(session)
    agent = make_agent(session, parent=top)
    customers = [referred_customer(session, agent) for _ in range(4)]
    principal_rule(session, clawback_days=10)
    rules.create_rule(session, "服务费", "referrer", rules.RuleTerms(basis="service_fee", level1_rate="0.1",
                                                                    level2_rate="0.05"))
    loans = [disburse(session, c, 1_000_000 * (i + 1), fee=10_000 * i, at=T0 + timedelta(days=i))[0]
             for i, c in enumerate(customers)]
    ledger.confirm_due(session, T0 + timedelta(days=11, hours=1))  # loans 0 and 1 confirmed
    ledger.reverse_for_loan(session, loans[1], "退款（已确认）")
    ledger.reverse_for_loan(session, loans[3], "取消（未确认）")
    for referrer_id in (agent.id, top.id):
        _assert_balances_match_entries(session, referrer_id)
    bal = ledger.balance(session, agent.id)
    assert bal.available == 10_000 + 2_000  # loan 0's principal and loan 2's fee (loan 1 reversed whole)
    assert bal.pending == 30_000  # loan 2's principal commission


def test_confirm_task_is_registered_and_periodic():
    from core import tasks

    assert tasks.is_registered("referral.confirm_commissions")
    assert "referral.confirm_commissions" in tasks.PERIODIC


def test_confirm_task_runs_in_its_own_unit_of_work(session):
    from referral.tasks import confirm_commissions

    agent = make_agent(session)
    customer_id = referred_customer(session, agent)
    principal_rule(session, clawback_days=1)
    disburse(session, customer_id, 1_000_000)
    clock.freeze(T0 + timedelta(days=2))
    confirm_commissions()
    assert ledger.balance(session, agent.id).available == 10_000


def test_no_staff_referrer_is_created_without_a_staff_scheme(session):
    from referral.models import Referrer

    sales = make_staff(session, role="sales")
    customer = make_customer(session, owner=sales)
    disburse(session, customer.id)
    assert session.scalar(select(Referrer).where(Referrer.staff_id == sales.id)) is None
