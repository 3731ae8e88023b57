"""Prepayment on any date: the quote to the fen (accrued interest by the day count, fee, charge), the payoff
closing the loan, partial prepayment recalculating the schedule in both modes with a new version kept beside
the old, a repayment above what is due booked as a prepayment when the borrower chose so, and bad input
refused with nothing written."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import ValidationFailed
from lending.models import Loan, LoanInstallment, Repayment, RepaymentAllocation, ScheduleVersion
from lending.servicing import prepayments, repayments, versions
from lending.servicing.exceptions import LoanClosed, Overpayment, PrepaymentRefused, ReversalRefused
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, pay, rows

FEE = 1_000  # 10.00 yuan per period
# 12,000.00 at 12% a year, 等额本息 over 12 months from 2026-11-23: installment 1 = principal 946.19 + interest 120.00
P1, I1 = 94_619, 12_000
B2 = 1_200_000 - P1  # the balance period 2 starts with: 11,053.81


def _counts(session, loan):
    return (session.scalar(select(func.count()).select_from(Repayment).where(Repayment.loan_id == loan.id)),
            session.scalar(select(func.count()).select_from(ScheduleVersion).where(ScheduleVersion.loan_id == loan.id)),
            [(r.number, r.principal_amount, r.interest_amount, r.fee_amount) for r in rows(session, loan)])


def _first_paid(session, **terms):
    w, loan = make_loan(session, service_fee_amount=FEE, **terms)
    on(date(2026, 12, 23))
    pay(session, w, loan, P1 + I1 + FEE)
    return w, loan


def test_payoff_quote_accrues_interest_to_the_day_by_the_day_count_with_fee_and_charge(session):
    _, loan = _first_paid(session, prepayment_charge_rate=Decimal("0.02"))
    on(date(2027, 1, 8))
    q = prepayments.quote(session, loan, date(2027, 1, 8))
    # 16 days of period 2 on 11,053.81 at 12% / 360: 1,105,381 × 0.12 × 16 / 360 = 5,895.365… → 58.95
    # charge 2% of 11,053.81 = 221.0762 → 221.08; period 2 has begun, so its fee 10.00 is due
    assert (q.kind, q.period, q.outstanding_principal, q.principal_amount) == ("payoff", 2, B2, B2)
    assert (q.accrued_interest_amount, q.fee_amount, q.charge_amount) == (5_895, FEE, 22_108)
    assert q.due_amount == 0
    assert q.total_amount == q.payoff_amount == B2 + 5_895 + FEE + 22_108


def test_365_day_count_gives_a_different_accrual(session):
    _, loan = _first_paid(session, days_in_year="365")
    q = prepayments.quote(session, loan, date(2027, 1, 8))
    assert q.accrued_interest_amount == 5_815  # 1,105,381 × 0.12 × 16 / 365 = 5,814.9 → 58.15


def test_payoff_closes_the_loan_and_keeps_the_old_schedule_as_version_one(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    q = prepayments.quote(session, loan, date(2027, 1, 8))
    r = repayments.record_repayment(session, loan.id, viewer=V(w.finance), amount=q.total_amount,
                                    external_reference="PAYOFF-1", prepayment_mode="keep_term")
    assert r.purpose == "payoff"
    session.refresh(loan)
    assert loan.status == "closed"
    now = rows(session, loan)
    assert [x.number for x in now] == [1, 2]  # the periods after the payoff are gone from the live schedule
    assert (now[1].principal_amount, now[1].interest_amount, now[1].status) == (B2, 5_895, "paid")
    kept = versions.history(session, loan.id)
    assert [(v.version, v.reason) for v in kept] == [(1, "original"), (2, "payoff")]
    assert len(kept[0].rows) == 12 and len(kept[1].rows) == 2
    assert sum(x["principal"] for x in kept[0].rows) == sum(x["principal"] for x in kept[1].rows) == 1_200_000
    assert kept[1].repayment_id == r.id
    allocated = session.scalar(select(func.sum(RepaymentAllocation.amount))
                               .where(RepaymentAllocation.repayment_id == r.id))
    assert allocated == q.total_amount


def test_partial_keep_term_lowers_the_installment_over_the_same_periods(session):
    w, loan = _first_paid(session)
    before = [x.principal_amount + x.interest_amount for x in rows(session, loan)]
    on(date(2027, 1, 8))
    q = prepayments.quote(session, loan, date(2027, 1, 8), amount=500_000, mode="keep_term")
    # 500,000 pays the principal P and its 16 days of interest: P + round(P × 0.12 × 16 / 360) = 500,000
    # P = 4,973.47: 497,347 × 0.12 × 16 / 360 = 2,652.5 → 26.53
    assert q.kind == "prepayment" and q.principal_amount + q.accrued_interest_amount == 500_000
    assert q.principal_amount == 497_347 and q.accrued_interest_amount == 2_653
    r = prepayments_pay(session, w, loan, 500_000, "keep_term")
    after = rows(session, loan)
    assert len(after) == 12
    assert after[1].paid_principal_amount == q.principal_amount and after[1].status == "pending"
    assert after[1].paid_interest_amount == q.accrued_interest_amount
    regular = [x.principal_amount + x.interest_amount for x in after[2:11]]
    assert set(regular) == {58_647} and before[5] == 106_619  # 586.47 a month instead of 1,066.19
    assert sum(x.principal_amount for x in after) == 1_200_000
    # period 2 now accrues on the lower balance for the whole month: (11,053.81 − 4,973.47) × 1% = 60.80
    assert after[1].interest_amount == q.accrued_interest_amount + 6_080
    v = versions.history(session, loan.id)[-1]
    assert (v.version, v.reason, v.mode, v.repayment_id) == (2, "prepayment", "keep_term", r.id)


def test_partial_keep_installment_shortens_the_term(session):
    w, loan = _first_paid(session)
    before = [x.principal_amount + x.interest_amount for x in rows(session, loan)]
    on(date(2027, 1, 8))
    prepayments_pay(session, w, loan, 500_000, "keep_installment")
    after = rows(session, loan)
    assert len(after) == 7  # 4,973.47 of 11,053.81 ahead: the same 1,066.19 a month ends five months sooner
    assert [x.principal_amount + x.interest_amount for x in after[2:6]] == before[2:6]
    assert sum(x.principal_amount for x in after) == 1_200_000


def test_two_prepayments_make_three_versions_and_the_next_one_keeps_the_new_installment(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    prepayments_pay(session, w, loan, 300_000, "keep_term")
    installment_v2 = versions.history(session, loan.id)[-1].installment_amount
    second = rows(session, loan)[1]
    on(second.due_date)
    pay(session, w, loan, second.outstanding_amount)
    on(date(2027, 2, 10))
    prepayments_pay(session, w, loan, 200_000, "keep_installment")
    history = versions.history(session, loan.id)
    assert [v.version for v in history] == [1, 2, 3]
    assert history[2].installment_amount == installment_v2
    assert history[1].rows != history[2].rows


def test_overdue_installments_are_paid_first_with_their_penalty(session):
    w, loan = make_loan(session, service_fee_amount=FEE)
    on(date(2027, 1, 2))  # installment 1 ten days overdue: penalty 4.73
    q = prepayments.quote(session, loan, date(2027, 1, 2))
    assert q.due == {"penalty": 473, "fee": FEE, "interest": I1, "principal": P1}
    assert q.period == 2
    r = repayments.record_repayment(session, loan.id, viewer=V(w.finance), amount=q.total_amount,
                                    external_reference="PAYOFF-OVERDUE", prepayment_mode="keep_term")
    session.refresh(loan)
    assert loan.status == "closed" and loan.bucket == "C" and r.amount == q.payoff_amount


def test_above_payable_without_a_choice_is_still_refused(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    with pytest.raises(Overpayment):
        pay(session, w, loan, 500_000)


@pytest.mark.parametrize("case", ["before_last", "after_maturity", "above_payoff", "closed"])
def test_bad_prepayments_are_refused_with_nothing_written(session, case):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    if case == "closed":
        q = prepayments.quote(session, loan, date(2027, 1, 8))
        prepayments_pay(session, w, loan, q.total_amount, "keep_term")
    before = _counts(session, loan)
    day, amount, error, words = {
        "before_last": (date(2026, 12, 20), 500_000, PrepaymentRefused, "最近一笔交易"),
        "after_maturity": (date(2027, 11, 23), 500_000, PrepaymentRefused, "到期日"),
        "above_payoff": (date(2027, 1, 8), 2_000_000, PrepaymentRefused, "超过"),
        "closed": (date(2027, 1, 8), 500_000, LoanClosed, "已结清"),
    }[case]
    with pytest.raises(error) as exc:
        prepayments.quote(session, loan, day, amount=amount)
    assert words in exc.value.message
    if case != "after_maturity":
        with pytest.raises(ValidationFailed if error is PrepaymentRefused else error):
            repayments.record_repayment(session, loan.id, viewer=V(w.finance), amount=amount,
                                        repayment_date=day if day <= date(2027, 1, 8) else None,
                                        external_reference=f"BAD-{case}", prepayment_mode="keep_term")
    assert _counts(session, loan) == before


def test_an_amount_below_what_is_overdue_prepays_nothing_and_is_refused(session):
    _, loan = make_loan(session)
    on(date(2027, 1, 2))  # installment 1 (1,066.19 + penalty) overdue
    before = _counts(session, loan)
    with pytest.raises(PrepaymentRefused, match="不足以提前还本"):
        prepayments.quote(session, loan, date(2027, 1, 2), amount=50_000)
    assert _counts(session, loan) == before


def test_a_second_prepayment_and_the_payoff_in_the_same_period_owe_only_what_is_left(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    first = prepayments.quote(session, loan, date(2027, 1, 8), amount=500_000)
    prepayments_pay(session, w, loan, 500_000, "keep_term")
    left = B2 - first.principal_amount
    on(date(2027, 1, 13))
    second = prepayments.quote(session, loan, date(2027, 1, 13), amount=100_000, mode="keep_term")
    assert second.outstanding_principal == left
    # 21 days of period 2 on the 1,000.00 − its interest: P + round(P × 0.12 × 21 / 360) = 100,000
    assert (second.principal_amount, second.accrued_interest_amount) == (99_305, 695)
    prepayments_pay(session, w, loan, 100_000, "keep_term")
    left -= second.principal_amount
    payoff = prepayments.quote(session, loan, date(2027, 1, 13))
    # what is still owed of period 2: its fee 10.00, and 21 days on the principal left
    accrued = (left * 12 * 21 + 18_000 // 2) // 36_000  # half-up of left × 0.12 × 21 / 360
    assert (payoff.outstanding_principal, payoff.accrued_interest_amount, payoff.fee_amount) == (left, accrued, FEE)
    prepayments_pay(session, w, loan, payoff.total_amount, "keep_term")
    session.refresh(loan)
    live = rows(session, loan)
    assert loan.status == "closed" and len(live) == 2
    assert live[1].paid_principal_amount == live[1].principal_amount == B2
    assert live[1].paid_interest_amount == first.accrued_interest_amount + 695 + accrued
    assert [v.reason for v in versions.history(session, loan.id)] == ["original", "prepayment", "prepayment", "payoff"]


def test_part_of_the_current_installment_paid_early_is_not_owed_again(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 1))
    pay(session, w, loan, 5_000)  # part of period 1's interest, paid early
    q = prepayments.quote(session, loan, date(2026, 12, 1))
    # 8 days of period 1 on 12,000.00: 1,200,000 × 0.12 × 8 / 360 = 3,200; 50.00 of interest is paid already
    assert (q.period, q.outstanding_principal, q.accrued_interest_amount) == (1, 1_200_000, 3_200)
    assert q.total_amount == 1_200_000 + 3_200
    prepayments_pay(session, w, loan, q.total_amount, "keep_term")
    session.refresh(loan)
    assert loan.status == "closed" and rows(session, loan)[0].paid_interest_amount == 8_200


def test_the_same_slip_again_returns_the_same_prepayment(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    first = prepayments_pay(session, w, loan, 500_000, "keep_term", reference="PRE-SAME")
    again = prepayments_pay(session, w, loan, 500_000, "keep_term", reference="PRE-SAME")
    assert again.id == first.id
    assert len(versions.history(session, loan.id)) == 2


def test_schedule_versions_are_append_only(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    prepayments_pay(session, w, loan, 500_000, "keep_term")
    v = versions.history(session, loan.id)[0]
    v.note = "changed"
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()
    session.rollback()


def prepayments_pay(session, w, loan, amount, mode, reference=None):
    return repayments.record_repayment(session, loan.id, viewer=V(w.finance), amount=amount,
                                       external_reference=reference or f"PRE-{amount}-{mode}-{loan.id}-"
                                       f"{session.scalar(select(func.count()).select_from(Repayment))}",
                                       prepayment_mode=mode)


def test_loan_and_installments_are_consistent_after_a_prepayment(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    prepayments_pay(session, w, loan, 500_000, "keep_installment")
    live = session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id)).all()
    assert all(x.paid_principal_amount <= x.principal_amount for x in live)
    assert session.get(Loan, loan.id).status == "active"


def test_a_prepayment_cannot_simply_be_reversed(session):
    w, loan = _first_paid(session)
    on(date(2027, 1, 8))
    r = prepayments_pay(session, w, loan, 500_000, "keep_term")
    with pytest.raises(ReversalRefused, match="重算"):
        repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="录错")
