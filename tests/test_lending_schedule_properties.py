"""Property tests of the schedule engine, and an independent exact oracle it must agree with.

The oracle below is written apart from the engine: the installment from the annuity sum
(``P / Σ (1 + i)^-k``) rather than the closed form, interest from a day-by-day count rather than
the engine's year split, its own rounding, and the IRR by bisection on exact ``Fraction`` values.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, reject, settings
from hypothesis import strategies as st

from core.errors import ValidationFailed
from lending.schedule.apr import annualised_cost
from lending.schedule.engine import Schedule, build_schedule
from lending.schedule.prepayment import prepay
from lending.schedule.terms import LoanTerms

PROPERTIES = settings(max_examples=200, deadline=None)
ORACLE = settings(max_examples=60, deadline=None)

METHODS = ("equal_installment", "equal_principal", "interest_first", "bullet")
HALF = Fraction(1, 2)


# --- the oracle ------------------------------------------------------------------------------------


def oracle_round(value: Fraction, rounding: str) -> int:
    whole = math.floor(value)
    rest = value - whole
    if rest > HALF or (rest == HALF and (rounding == "half_up" or whole % 2 == 1)):
        whole += 1
    return whole


def oracle_installment(principal: int, annual: Decimal, periods: int) -> Fraction:
    monthly = Fraction(str(annual)) / 12
    annuity = sum((1 / (1 + monthly) ** k for k in range(1, periods + 1)), Fraction(0))
    return principal / annuity


def oracle_year_fraction(start: date, end: date, basis: str) -> Fraction:
    """Day by day: each day of the period is one day of its own year."""
    total = Fraction(0)
    day = start
    while day < end:
        if basis == "actual":
            length = 366 if (day.year % 4 == 0 and day.year % 100 != 0) or day.year % 400 == 0 else 365
        else:
            length = int(basis)
        total += Fraction(1, length)
        day += timedelta(days=1)
    return total


def oracle_irr(flows: list[int]) -> Fraction:
    def npv(rate: Fraction) -> Fraction:
        return sum((Fraction(flow) / (1 + rate) ** k for k, flow in enumerate(flows)), Fraction(0))

    low, high = Fraction(0), Fraction(1)
    if npv(low) >= 0:
        return low
    while npv(high) < 0:
        high *= 2
    for _ in range(64):
        middle = (low + high) / 2
        if npv(middle) > 0:
            high = middle
        else:
            low = middle
    return (low + high) / 2


# --- strategies ------------------------------------------------------------------------------------


@st.composite
def loans(draw, methods=METHODS, *, max_periods: int = 60, multiples=(1, 1, 1, 100, 1000)) -> dict:
    method = draw(st.sampled_from(methods))
    periods = draw(st.integers(1, max_periods))
    grace_interest = grace_principal = 0
    if method != "bullet":
        grace_interest = draw(st.integers(0, min(3, periods - 1)))
        grace_principal = draw(st.integers(0, min(3, periods - 1 - grace_interest)))
    multiple = draw(st.sampled_from(multiples)) if method in ("equal_installment", "equal_principal") else 1
    principal = draw(st.integers(max(100, multiple * periods * 20), 10**9))
    fee_upfront = draw(st.booleans())
    return dict(
        principal=principal,
        annual_rate=Decimal(draw(st.integers(0, 3600))) / 10000,
        periods=periods,
        method=method,
        start_date=draw(st.dates(date(2020, 1, 1), date(2030, 12, 31))),
        interest_method=draw(st.sampled_from(["declining", "flat"])),
        interest_period=draw(st.sampled_from(["same", "daily"])),
        days_in_year=draw(st.sampled_from(["360", "365", "actual"])),
        rounding=draw(st.sampled_from(["half_up", "half_even"])),
        installment_multiple=multiple,
        grace_interest=grace_interest,
        grace_principal=grace_principal,
        service_fee_rate=Decimal(draw(st.integers(0, 100))) / 10000,
        service_fee_timing="upfront" if fee_upfront else "per_period",
        deposit=draw(st.integers(0, principal // 10)),
        deposit_refundable=draw(st.booleans()),
    )


def build(loan: dict) -> Schedule:
    try:
        return build_schedule(LoanTerms(**loan))
    except ValidationFailed as exc:
        if exc.details.get("field") == "installment_multiple":  # a multiple too coarse for this loan
            reject()
        raise


# --- invariants ------------------------------------------------------------------------------------


def assert_invariants(schedule: Schedule, loan: dict) -> None:
    rows = schedule.periods
    capitalised = sum(r.capitalised for r in rows)
    assert sum(r.principal for r in rows) == loan["principal"] + capitalised
    assert rows[-1].balance == 0
    for row in rows:
        assert min(row.principal, row.interest, row.fee, row.total, row.balance, row.capitalised) >= 0
        assert row.total == row.principal + row.interest + row.fee
    balance = loan["principal"]
    for row in rows:
        assert row.balance == balance + row.capitalised - row.principal
        balance = row.balance
    after_grace = [r.balance for r in rows[loan["grace_interest"]:]]
    assert all(a >= b for a, b in zip(after_grace, after_grace[1:], strict=False))
    totals = schedule.totals
    assert totals.principal == sum(r.principal for r in rows)
    assert totals.interest == sum(r.interest for r in rows)
    assert totals.fee == sum(r.fee for r in rows)
    assert totals.total == sum(r.total for r in rows) == totals.principal + totals.interest + totals.fee
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))
    assert all(a.due_date < b.due_date for a, b in zip(rows, rows[1:], strict=False))


@PROPERTIES
@given(loans())
def test_every_schedule_repays_exactly_and_never_goes_negative(loan):
    schedule = build(loan)
    assert_invariants(schedule, loan)
    assert len(schedule.periods) == (1 if loan["method"] == "bullet" else loan["periods"])
    start = loan["start_date"]
    for row in schedule.periods:
        assert row.due_date.day == start.day or row.due_date.day < start.day and (row.due_date + timedelta(1)).day == 1


@PROPERTIES
@given(loans())
def test_every_interest_follows_the_stated_convention(loan):
    schedule = build(loan)
    annual = Fraction(str(loan["annual_rate"]))
    previous_due, balance = loan["start_date"], loan["principal"]
    for row in schedule.periods:
        base = loan["principal"] if loan["interest_method"] == "flat" else balance
        if loan["interest_period"] == "same":
            months = schedule.period_months
            exact = base * annual * months / 12
        else:
            exact = base * annual * oracle_year_fraction(previous_due, row.due_date, loan["days_in_year"])
        assert row.interest + row.capitalised == oracle_round(exact, loan["rounding"])
        previous_due, balance = row.due_date, row.balance


@PROPERTIES
@given(loans(methods=("equal_installment",), multiples=(1,)))
def test_equal_installment_matches_the_oracle(loan):
    loan.update(interest_method="declining", interest_period="same", grace_interest=0, grace_principal=0)
    schedule = build(loan)
    principal, periods, rounding = loan["principal"], loan["periods"], loan["rounding"]
    installment = oracle_round(oracle_installment(principal, loan["annual_rate"], periods), rounding)
    assert schedule.installment == installment
    monthly = Fraction(str(loan["annual_rate"])) / 12
    balance = principal
    for k, row in enumerate(schedule.periods, start=1):
        interest = oracle_round(balance * monthly, rounding)
        paid = balance if k == periods else min(max(installment - interest, 0), balance)
        balance -= paid
        assert (row.interest, row.principal, row.balance) == (interest, paid, balance)


@PROPERTIES
@given(loans(methods=("equal_principal",), multiples=(1,)))
def test_equal_principal_matches_the_oracle(loan):
    loan.update(interest_method="declining", interest_period="same", grace_interest=0, grace_principal=0)
    schedule = build(loan)
    principal, periods, rounding = loan["principal"], loan["periods"], loan["rounding"]
    step = oracle_round(Fraction(principal, periods), rounding)
    expected = [step] * (periods - 1) + [principal - step * (periods - 1)]
    assert [r.principal for r in schedule.periods] == expected


@ORACLE
@given(loans(max_periods=36))
def test_annualised_cost_matches_the_exact_irr(loan):
    schedule = build(loan)
    rows = schedule.periods
    terms = schedule.terms
    flows = [0] * (len(rows) + 1)
    flows[0] = loan["principal"] - terms.upfront_fee - loan["deposit"]
    for k, row in enumerate(rows, start=1):
        flows[k] = -row.total
    if loan["deposit_refundable"]:
        flows[-1] += loan["deposit"]
    months = loan["periods"] if loan["method"] == "bullet" else 1
    expected = oracle_irr(flows) * 12 / months
    assert abs(Fraction(annualised_cost(schedule)) - expected) < Fraction(1, 10**10)


@ORACLE
@given(loans(methods=("equal_installment", "equal_principal")))
def test_without_fees_the_cost_is_the_nominal_rate(loan):
    loan.update(interest_period="same", interest_method="declining", service_fee_rate=Decimal(0), deposit=0,
                grace_interest=0, grace_principal=0, installment_multiple=1, principal=max(loan["principal"], 100_000))
    apr = annualised_cost(build(loan))
    assert abs(apr - loan["annual_rate"]) < Decimal("0.0001")


@PROPERTIES
@given(loans(methods=("equal_installment", "equal_principal", "interest_first"), multiples=(1,)), st.data())
def test_prepayment_keeps_every_invariant(loan, data):
    schedule = build(loan)
    rows = schedule.periods
    first = max(1, loan["grace_interest"] + loan["grace_principal"])
    if first >= len(rows):
        reject()
    after = data.draw(st.integers(first, len(rows) - 1), label="after_period")
    balance = rows[after - 1].balance
    if balance < 2:
        reject()
    amount = data.draw(st.integers(1, balance - 1), label="amount")
    modes = ["keep_term"] if loan["method"] == "interest_first" else ["keep_term", "keep_installment"]
    mode = data.draw(st.sampled_from(modes), label="mode")
    try:
        recalculated = prepay(schedule, after_period=after, amount=amount, mode=mode)
    except ValidationFailed as exc:
        if exc.details.get("field") in ("installment_multiple", "mode"):  # installment below the interest
            reject()
        raise
    assert_invariants(recalculated, loan)
    assert recalculated.periods[:after - 1] == rows[:after - 1]
    assert recalculated.periods[after - 1].prepayment == amount
    if mode == "keep_term":
        assert len(recalculated.periods) == len(rows)
    else:
        assert len(recalculated.periods) <= len(rows)
