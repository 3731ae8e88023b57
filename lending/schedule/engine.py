"""The repayment schedule: pure functions from :class:`LoanTerms` to a :class:`Schedule`.

Conventions (see ``/work/shared/reference/loan-schedules.md``):

- Due dates are monthly on the start date's day of the month, clamped to the month's end
  (a loan started on Jan 31 is due Feb 28/29, Mar 31, Apr 30, ...).
- Interest of a period, rounded once with the product rounding to the currency digits:
  ``same``: base × annual / 12; ``daily``: base × annual / days_in_year × the actual days between
  the previous and this due date (``actual``: each day counts 1/365 or 1/366 by its calendar
  year). The base is the balance (declining) or the original principal (flat).
- 等额本息: the installment is the PMT at the monthly rate (annual / 12, whatever the interest
  period) of the balance after grace over the amortising periods — flat: balance / n + the flat
  interest — rounded once to ``installment_multiple`` with the product rounding mode (so it may
  round down as well as up). Each period's principal is installment − interest; under daily
  interest a period whose interest exceeds the installment pays its interest and no principal.
- 等额本金: principal per period = balance / n rounded to the currency digits; with an
  installment multiple the payment (principal + interest) is rounded to the multiple instead.
- 先息后本: interest every period, all principal with the last. 一次性还本付息: one period at the
  end of the term, interest for the whole term (flat and declining agree).
- The last period repays whatever balance is left, so principal always sums to the loan plus any
  capitalised interest and the last balance is zero. Should a payment rounded to a coarse multiple
  clear the balance before the last period, the terms are refused rather than padded with empty periods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from core.errors import ValidationFailed
from lending.schedule.calendar import add_months, year_fraction
from lending.schedule.exact import round_to
from lending.schedule.terms import InterestMethod, InterestPeriod, LoanTerms, RepaymentMethod


@dataclass(frozen=True, slots=True)
class Period:
    """One row of the schedule; every amount is integer fen and never negative.

    ``principal`` is what the payment takes off the balance (a prepayment included, shown again in
    ``prepayment``); ``capitalised`` is interest added to the balance in a no-payment grace period.
    """

    number: int
    due_date: date
    principal: int
    interest: int
    fee: int
    balance: int
    capitalised: int = 0
    prepayment: int = 0

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fee


@dataclass(frozen=True, slots=True)
class Totals:
    principal: int
    interest: int
    fee: int
    total: int
    capitalised: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """The rows, plus what a recalculation after a prepayment needs to know."""

    terms: LoanTerms
    periods: tuple[Period, ...]
    installment: int | None = None  # 等额本息: the level payment
    principal_step: Fraction | None = None  # 等额本金: the exact principal per period before rounding
    period_months: int = 1  # months per repayment period (a bullet's one period is the whole term)

    @property
    def totals(self) -> Totals:
        rows = self.periods
        return Totals(
            principal=sum(r.principal for r in rows),
            interest=sum(r.interest for r in rows),
            fee=sum(r.fee for r in rows),
            total=sum(r.total for r in rows),
            capitalised=sum(r.capitalised for r in rows),
        )

    @property
    def upfront_fee(self) -> int:
        return self.terms.upfront_fee

    @property
    def received(self) -> int:
        """What the borrower actually gets at disbursement: principal − upfront fee − deposit."""
        return self.terms.principal - self.terms.upfront_fee - self.terms.deposit


class Accrual:
    """Interest and fee of a period under the terms; ``flat_base`` is the base of flat interest."""

    def __init__(self, terms: LoanTerms, flat_base: int | None = None) -> None:
        self.terms = terms
        self.flat_base = terms.principal if flat_base is None else flat_base

    def due(self, number: int) -> date:
        return add_months(self.terms.start_date, number)

    def interest(self, balance: int, number: int, months: int = 1) -> int:
        """Interest of the ``months`` ending at period ``number``'s due date, rounded once."""
        terms = self.terms
        base = self.flat_base if terms.interest_method is InterestMethod.FLAT else balance
        if terms.interest_period is InterestPeriod.SAME:
            fraction = terms.monthly_rate * months
        else:
            start, end = self.due(number - months), self.due(number)
            fraction = Fraction(terms.annual_rate) * year_fraction(start, end, terms.days_in_year)
        return round_to(base * fraction, terms.rounding, terms.quantum)

    @property
    def fee(self) -> int:
        return self.terms.periodic_fee


def build_schedule(terms: LoanTerms) -> Schedule:
    """The full schedule of a loan."""
    if terms.method is RepaymentMethod.BULLET:
        return _bullet(terms)
    accrual = Accrual(terms)
    rows: list[Period] = []
    balance = terms.principal
    for number in range(1, terms.grace_interest + 1):  # no payment; interest capitalised
        interest = accrual.interest(balance, number)
        balance += interest
        rows.append(Period(number, accrual.due(number), 0, 0, 0, balance, capitalised=interest))
    first = terms.grace_interest + 1
    if terms.method is RepaymentMethod.INTEREST_FIRST:
        rows += interest_first_rows(accrual, balance, range(first, terms.periods + 1))
        return Schedule(terms, tuple(rows))
    grace_end = terms.grace_interest + terms.grace_principal
    rows += interest_first_rows(accrual, balance, range(first, grace_end + 1), repay_at_end=False)
    numbers = range(grace_end + 1, terms.periods + 1)
    if terms.method is RepaymentMethod.EQUAL_INSTALLMENT:
        installment = level_installment(terms, balance, len(numbers), accrual.flat_base)
        rows += level_rows(accrual, balance, numbers, installment)
        return Schedule(terms, tuple(rows), installment=installment)
    step = Fraction(balance, len(numbers))
    rows += equal_principal_rows(accrual, balance, numbers, step)
    return Schedule(terms, tuple(rows), principal_step=step)


def level_installment(terms: LoanTerms, balance: int, count: int, flat_base: int) -> int:
    """The 等额本息 payment of ``balance`` over ``count`` months, rounded once to the multiple."""
    rate = terms.monthly_rate
    if terms.interest_method is InterestMethod.FLAT:
        exact = Fraction(balance, count) + flat_base * rate
    elif rate == 0:
        exact = Fraction(balance, count)
    else:
        growth = (1 + rate) ** count
        exact = balance * rate * growth / (growth - 1)
    return round_to(exact, terms.rounding, terms.multiple)


def interest_first_rows(accrual: Accrual, balance: int, numbers: Sequence[int], *,
                        repay_at_end: bool = True) -> list[Period]:
    """Interest (and fee) every period; with ``repay_at_end`` the last one repays the balance."""
    rows = []
    for number in numbers:
        interest = accrual.interest(balance, number)
        principal = balance if repay_at_end and number == numbers[-1] else 0
        balance -= principal
        rows.append(Period(number, accrual.due(number), principal, interest, accrual.fee, balance))
    return rows


def level_rows(accrual: Accrual, balance: int, numbers: Sequence[int], installment: int) -> list[Period]:
    """等额本息 rows over exactly ``numbers``; the last clears the balance."""
    rows = []
    for number in numbers:
        interest = accrual.interest(balance, number)
        if number == numbers[-1]:
            principal = balance
        else:
            principal = min(max(installment - interest, 0), balance)
            _refuse_early_payoff(principal, balance, number, numbers[-1])
        balance -= principal
        rows.append(Period(number, accrual.due(number), principal, interest, accrual.fee, balance))
    return rows


def equal_principal_rows(accrual: Accrual, balance: int, numbers: Sequence[int], step: Fraction) -> list[Period]:
    """等额本金 rows over exactly ``numbers``; the last clears the balance."""
    terms = accrual.terms
    rounded_step = round_to(step, terms.rounding, terms.quantum)
    rows = []
    for number in numbers:
        interest = accrual.interest(balance, number)
        if number == numbers[-1]:
            principal = balance
        else:
            payment = round_to(rounded_step + interest, terms.rounding, terms.multiple)
            principal = min(max(payment - interest, 0), balance)
            _refuse_early_payoff(principal, balance, number, numbers[-1])
        balance -= principal
        rows.append(Period(number, accrual.due(number), principal, interest, accrual.fee, balance))
    return rows


def _refuse_early_payoff(principal: int, balance: int, number: int, last: int) -> None:
    if principal == balance:
        raise ValidationFailed(
            f"按当前设置第 {number} 期即已还清本金，早于约定的第 {last} 期：请减小还款额取整单位或调整计息方式",
            field="installment_multiple",
        )


def _bullet(terms: LoanTerms) -> Schedule:
    accrual = Accrual(terms)
    interest = accrual.interest(terms.principal, terms.periods, months=terms.periods)
    row = Period(1, accrual.due(terms.periods), terms.principal, interest, accrual.fee, 0)
    return Schedule(terms, (row,), period_months=terms.periods)
