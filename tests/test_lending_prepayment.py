"""Partial prepayment: keep the installment (fewer periods) or keep the term (smaller installment)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from lending.schedule.engine import build_schedule
from lending.schedule.prepayment import prepay
from lending.schedule.terms import LoanTerms


def schedule_of(**overrides):
    values = dict(principal=1_000_000, annual_rate=Decimal("0.12"), periods=12, method="equal_installment",
                  start_date=date(2022, 11, 1))
    values.update(overrides)
    return build_schedule(LoanTerms(**values))


def test_keep_installment_shortens_the_term():
    before = schedule_of()
    after = prepay(before, after_period=3, amount=300_000, mode="keep_installment")
    rows = after.periods
    assert rows[:2] == before.periods[:2]
    assert (rows[2].prepayment, rows[2].principal, rows[2].balance) == (300_000, 80_434 + 300_000, 461_080)
    assert len(rows) == 9 and rows[-1].due_date == date(2023, 8, 1)
    assert all(r.total == 88_849 for r in rows[3:-1]) and rows[-1].total <= 88_849
    assert rows[3].interest == 4_611  # 4,610.80 × 1%
    assert after.totals.principal == 1_000_000 and rows[-1].balance == 0
    assert after.totals.interest < before.totals.interest


def test_keep_term_lowers_the_installment():
    before = schedule_of()
    after = prepay(before, after_period=3, amount=300_000, mode="keep_term")
    rows = after.periods
    assert len(rows) == 12 and rows[-1].due_date == before.periods[-1].due_date
    assert after.installment == 53_827 and all(r.total == 53_827 for r in rows[3:-1])
    assert after.totals.principal == 1_000_000 and rows[-1].balance == 0


def test_equal_principal_keep_installment_keeps_the_principal_per_period():
    after = prepay(schedule_of(method="equal_principal"), after_period=2, amount=250_000, mode="keep_installment")
    rows = after.periods
    assert all(r.principal == 83_333 for r in rows[2:-1])
    # 5,833.34 left = 7 × 833.33 + 0.03: the rounding fen join the last period, not a period of their own
    assert len(rows) == 9 and rows[-1].principal == 83_336 and rows[-1].balance == 0
    assert after.totals.principal == 1_000_000


def test_equal_principal_keep_term_spreads_the_rest_evenly():
    after = prepay(schedule_of(method="equal_principal"), after_period=2, amount=250_000, mode="keep_term")
    rows = after.periods
    assert len(rows) == 12
    assert all(r.principal == 58_333 for r in rows[2:-1])  # 583,334 / 10
    assert after.totals.principal == 1_000_000


def test_interest_first_keep_term_charges_less_interest():
    after = prepay(schedule_of(method="interest_first"), after_period=4, amount=400_000, mode="keep_term")
    assert [r.interest for r in after.periods[4:]] == [6_000] * 8
    assert after.periods[-1].principal == 600_000


def test_prepayments_can_follow_one_another():
    once = prepay(schedule_of(), after_period=2, amount=100_000, mode="keep_term")
    twice = prepay(once, after_period=5, amount=100_000, mode="keep_installment")
    assert twice.totals.principal == 1_000_000 and twice.periods[-1].balance == 0
    assert sum(r.prepayment for r in twice.periods) == 200_000


@pytest.mark.parametrize("overrides,kwargs,words", [
    (dict(method="bullet"), dict(after_period=1, amount=1, mode="keep_term"), "一次性还本付息"),
    (dict(method="interest_first"), dict(after_period=3, amount=1, mode="keep_installment"), "先息后本"),
    (dict(), dict(after_period=12, amount=1, mode="keep_term"), "第 1 期到第 11 期"),
    (dict(grace_principal=3), dict(after_period=2, amount=1, mode="keep_term"), "第 3 期到第 11 期"),
    (dict(), dict(after_period=3, amount=761_080, mode="keep_term"), "小于剩余本金"),
    (dict(), dict(after_period=3, amount=0, mode="keep_term"), "大于零"),
    (dict(), dict(after_period=3, amount=1, mode="sooner"), "提前还款方式"),
])
def test_bad_prepayments_are_refused(overrides, kwargs, words):
    with pytest.raises(ValidationFailed) as caught:
        prepay(schedule_of(**overrides), **kwargs)
    assert words in caught.value.message


def test_keep_installment_never_runs_past_the_original_term():
    # daily interest over a 31-day first month: the level payment did not quite cover the term and the
    # last period absorbed the rest; a tiny prepayment must not add a period after it (found by hypothesis)
    before = schedule_of(principal=18_983_393, annual_rate=Decimal("0.3599"), periods=2, start_date=date(2020, 1, 29),
                         interest_period="daily", rounding="half_even")
    assert before.periods[-1].total > before.installment
    after = prepay(before, after_period=1, amount=77, mode="keep_installment")
    assert len(after.periods) == 2 and after.periods[-1].balance == 0
    assert after.totals.principal == 18_983_393
