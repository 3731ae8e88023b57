"""The schedule engine against the worked examples of loan-schedules.md, to the cent, and its conventions."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from core.errors import ValidationFailed
from lending.schedule.engine import build_schedule
from lending.schedule.terms import LoanTerms

START = date(2022, 11, 1)


def terms(**overrides) -> LoanTerms:
    values = dict(principal=1_000_000, annual_rate=Decimal("0.12"), periods=12, method="equal_installment",
                  start_date=START)
    values.update(overrides)
    return LoanTerms(**values)


def fen(yuan: str) -> int:
    return int(Decimal(yuan) * 100)


# payment / principal / interest / balance, from the reference
EQUAL_INSTALLMENT = """
888.49 788.49 100.00 9211.51
888.49 796.37 92.12 8415.14
888.49 804.34 84.15 7610.80
888.49 812.38 76.11 6798.42
888.49 820.51 67.98 5977.91
888.49 828.71 59.78 5149.20
888.49 837.00 51.49 4312.20
888.49 845.37 43.12 3466.83
888.49 853.82 34.67 2613.01
888.49 862.36 26.13 1750.65
888.49 870.98 17.51 879.67
888.47 879.67 8.80 0.00
"""

# payment / interest / balance, from the reference
EQUAL_PRINCIPAL = """
933.33 100.00 9166.67
925.00 91.67 8333.34
916.66 83.33 7500.01
908.33 75.00 6666.68
900.00 66.67 5833.35
891.66 58.33 5000.02
883.33 50.00 4166.69
875.00 41.67 3333.36
866.66 33.33 2500.03
858.33 25.00 1666.70
850.00 16.67 833.37
841.70 8.33 0.00
"""


def table(text: str) -> list[tuple[int, ...]]:
    return [tuple(fen(cell) for cell in line.split()) for line in text.strip().splitlines()]


@pytest.mark.parametrize("rounding", ["half_up", "half_even"])
def test_equal_installment_reproduces_the_reference_to_the_cent(rounding):
    schedule = build_schedule(terms(rounding=rounding))
    got = [(r.total, r.principal, r.interest, r.balance) for r in schedule.periods]
    assert got == table(EQUAL_INSTALLMENT)
    assert schedule.installment == 88849
    assert schedule.totals.total == 1_066_186 and schedule.totals.interest == 66_186


@pytest.mark.parametrize("rounding", ["half_up", "half_even"])
def test_equal_principal_reproduces_the_reference_to_the_cent(rounding):
    schedule = build_schedule(terms(method="equal_principal", rounding=rounding))
    got = [(r.total, r.interest, r.balance) for r in schedule.periods]
    assert got == table(EQUAL_PRINCIPAL)
    assert [r.principal for r in schedule.periods] == [83_333] * 11 + [83_337]
    assert schedule.totals.total == 1_065_000 and schedule.totals.interest == 65_000


def test_interest_first_pays_interest_then_principal_with_the_last():
    schedule = build_schedule(terms(method="interest_first"))
    assert [r.total for r in schedule.periods] == [10_000] * 11 + [1_010_000]
    assert schedule.totals.interest == 120_000
    assert [r.balance for r in schedule.periods] == [1_000_000] * 11 + [0]


def test_bullet_pays_everything_at_maturity():
    schedule = build_schedule(terms(method="bullet"))
    (row,) = schedule.periods
    assert (row.due_date, row.principal, row.interest, row.total) == (date(2023, 11, 1), 1_000_000, 120_000, 1_120_000)
    assert schedule.period_months == 12


def test_bullet_charged_as_365_days_at_annual_over_360():
    schedule = build_schedule(terms(method="bullet", interest_period="daily", days_in_year="360"))
    (row,) = schedule.periods
    assert (row.due_date - START).days == 365
    assert row.interest == 121_667 and row.total == 1_121_667


def test_due_dates_keep_the_day_of_month_clamped_to_month_end():
    schedule = build_schedule(terms(start_date=date(2024, 1, 31), periods=4))
    assert [r.due_date for r in schedule.periods] == [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30),
                                                      date(2024, 5, 31)]


def test_daily_interest_counts_the_actual_days_between_due_dates():
    schedule = build_schedule(terms(method="interest_first", interest_period="daily", days_in_year="365"))
    first, second = schedule.periods[:2]
    assert first.interest == 9863  # 10,000 × 12% × 30 / 365 = 98.630…
    assert second.interest == 10192  # 31 days: 101.917…


def test_actual_day_basis_splits_a_period_across_a_leap_year_boundary():
    schedule = build_schedule(terms(method="interest_first", interest_period="daily", days_in_year="actual",
                                    start_date=date(2023, 12, 15)))
    exact = 1_000_000 * Fraction(12, 100) * (Fraction(17, 365) + Fraction(14, 366))
    assert schedule.periods[0].interest == round(exact)  # 111.78, no tie here


def test_rounding_mode_decides_a_tie():
    # 2.50 yuan at 12% a year: 2.5 fen of interest a month
    up = build_schedule(terms(principal=250, method="interest_first", rounding="half_up"))
    even = build_schedule(terms(principal=250, method="interest_first", rounding="half_even"))
    assert up.periods[0].interest == 3 and even.periods[0].interest == 2


def test_installment_rounded_to_whole_yuan_with_the_last_absorbing_the_rest():
    schedule = build_schedule(terms(installment_multiple=100))
    assert schedule.installment == 88_800  # 888.4878… half-up to a whole yuan rounds down
    rows = schedule.periods
    assert all(r.total == 88_800 for r in rows[:-1])
    assert rows[0].interest == 10_000 and rows[1].interest == 9_212  # interest still exact to the cent
    assert rows[-1].total == 1_000_000 + schedule.totals.interest - 11 * 88_800
    assert rows[-1].total > 88_800 and rows[-1].balance == 0


def test_installment_multiple_may_round_up():
    schedule = build_schedule(terms(installment_multiple=1000))
    assert schedule.installment == 89_000
    assert schedule.periods[-1].total < 89_000


def test_equal_principal_with_a_multiple_rounds_each_payment():
    schedule = build_schedule(terms(method="equal_principal", installment_multiple=100))
    assert all(r.total % 100 == 0 for r in schedule.periods[:-1])
    assert schedule.totals.principal == 1_000_000


def test_a_multiple_so_coarse_that_the_loan_would_end_early_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        build_schedule(terms(principal=100_000, installment_multiple=15_000))
    assert "还清本金" in caught.value.message


def test_grace_on_principal_is_interest_only():
    schedule = build_schedule(terms(grace_principal=2))
    assert [(r.principal, r.interest) for r in schedule.periods[:2]] == [(0, 10_000), (0, 10_000)]
    assert len(schedule.periods) == 12 and schedule.totals.principal == 1_000_000
    assert len({r.total for r in schedule.periods[2:-1]}) == 1  # the 10 amortising periods are level


def test_grace_on_interest_capitalises_the_interest():
    schedule = build_schedule(terms(grace_interest=2, method="equal_principal"))
    first, second = schedule.periods[:2]
    assert (first.total, first.capitalised, first.balance) == (0, 10_000, 1_010_000)
    assert (second.total, second.capitalised, second.balance) == (0, 10_100, 1_020_100)
    assert schedule.totals.principal == 1_000_000 + 20_100
    assert schedule.periods[2].interest == 10_201


def test_flat_interest_is_charged_on_the_original_principal():
    schedule = build_schedule(terms(interest_method="flat"))
    assert all(r.interest == 10_000 for r in schedule.periods)
    assert schedule.installment == 93_333  # 10,000 / 12 + 100
    assert schedule.totals.interest == 120_000 and schedule.totals.principal == 1_000_000


def test_periodic_service_fee_is_charged_with_every_payment():
    schedule = build_schedule(terms(service_fee_rate=Decimal("0.005")))
    assert all(r.fee == 5_000 and r.total == r.principal + r.interest + 5_000 for r in schedule.periods)
    assert schedule.totals.fee == 60_000


def test_upfront_fee_and_deposit_reduce_the_money_received():
    schedule = build_schedule(terms(service_fee_amount=20_000, service_fee_timing="upfront", deposit=50_000))
    assert schedule.totals.fee == 0 and schedule.upfront_fee == 20_000
    assert schedule.received == 930_000


def test_currency_digits_zero_rounds_to_whole_yuan():
    schedule = build_schedule(terms(digits=0, method="equal_principal"))
    assert all(r.interest % 100 == 0 and r.principal % 100 == 0 for r in schedule.periods)
    assert schedule.totals.principal == 1_000_000


AWKWARD = [
    dict(principal=1_234_567, annual_rate=Decimal("0.0777"), periods=7, start_date=date(2024, 1, 31)),
    dict(principal=50_001, annual_rate=Decimal("0.2399"), periods=36, start_date=date(2023, 12, 29)),
    dict(principal=99, annual_rate=Decimal("0"), periods=5, start_date=date(2025, 2, 28)),
]


@pytest.mark.parametrize(
    "method,interest_method,interest_period,days_in_year,rounding",
    list(itertools.product(["equal_installment", "equal_principal", "interest_first", "bullet"],
                           ["declining", "flat"], ["same", "daily"], ["360", "365", "actual"],
                           ["half_up", "half_even"])),
)
def test_every_combination_repays_the_loan_exactly_and_nothing_is_negative(
        method, interest_method, interest_period, days_in_year, rounding):
    for loan in AWKWARD:
        schedule = build_schedule(LoanTerms(**loan, method=method, interest_method=interest_method,
                                            interest_period=interest_period, days_in_year=days_in_year,
                                            rounding=rounding))
        rows = schedule.periods
        assert sum(r.principal for r in rows) == loan["principal"]
        assert rows[-1].balance == 0
        assert all(min(r.principal, r.interest, r.fee, r.total, r.balance) >= 0 for r in rows)
        assert len(rows) == (1 if method == "bullet" else loan["periods"])


@pytest.mark.parametrize("overrides,field,words", [
    (dict(method="balloon"), "method", "还款方式不正确"),
    (dict(annual_rate=0.12), "annual_rate", "浮点数"),
    (dict(annual_rate=Decimal("-0.01")), "annual_rate", "年利率"),
    (dict(annual_rate="abc"), "annual_rate", "年利率格式不正确"),
    (dict(principal=0), "principal", "本金"),
    (dict(periods=0), "periods", "期数"),
    (dict(interest_period="weekly"), "interest_period", "计息周期"),
    (dict(days_in_year=364), "days_in_year", "年计息天数"),
    (dict(rounding="down"), "rounding", "舍入方式"),
    (dict(grace_principal=6, grace_interest=6), "grace_principal", "宽限期"),
    (dict(method="bullet", grace_principal=1), "grace_principal", "一次性还本付息不设宽限期"),
    (dict(method="interest_first", installment_multiple=100), "installment_multiple", "不支持还款额取整"),
    (dict(digits=0, installment_multiple=150), "installment_multiple", "整数倍"),
    (dict(deposit=600_000, service_fee_amount=400_000, service_fee_timing="upfront"), "deposit", "小于本金"),
    (dict(start_date=datetime(2022, 11, 1)), "start_date", "日期"),  # noqa: DTZ001
])
def test_bad_terms_are_refused_in_chinese(overrides, field, words):
    with pytest.raises(ValidationFailed) as caught:
        terms(**overrides)
    assert caught.value.details["field"] == field
    assert words in caught.value.message
