"""Partial prepayment (部分提前还款) and the recalculated schedule.

The borrower pays period ``after_period`` as scheduled and, on the same due date, ``amount`` fen of
principal ahead of time. The prepayment is added to that row's principal (and shown in its
``prepayment``), so the rows still sum to the loan; the rest of the schedule is recalculated on the
lower balance, either:

- ``keep_installment`` (月供不变，缩短期限): 等额本息 keeps its payment, 等额本金 its principal per
  period, and the loan ends sooner — the last period pays what is left (rounding dust of a few
  fen is paid with it rather than making a period of its own);
- ``keep_term`` (期限不变，减少月供): the same number of periods remain, at a smaller payment.

Flat interest is recalculated on the balance left after the prepayment. A bullet loan has no
intermediate due date to prepay on; 先息后本 can only keep its term.

On any date (:func:`prepay_on`, :func:`payoff_on`): a prepayment on a day inside period *k* (after the
previous due date, before period *k*'s) pays the principal and the interest that principal accrued from the
period's start to that day, by the product's day count (``days_in_year``: 360, 365 or actual), rounded once;
periods *k* .. the last are recalculated on the lower balance, period *k* accruing on it for the whole period.
A full payoff makes period *k* the last: all the principal left, the interest accrued on it to the day, and
the period's fee when the period has begun.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from fractions import Fraction

from core.errors import ValidationFailed
from lending.schedule.calendar import year_fraction
from lending.schedule.engine import (
    Accrual,
    Period,
    Schedule,
    equal_principal_rows,
    interest_first_rows,
    level_installment,
    level_rows,
)
from lending.schedule.exact import round_to
from lending.schedule.terms import LoanTerms, RepaymentMethod, coerce_enum


class PrepaymentMode(StrEnum):
    KEEP_INSTALLMENT = "keep_installment"  # 月供不变，缩短期限
    KEEP_TERM = "keep_term"  # 期限不变，减少月供


def prepay(schedule: Schedule, *, after_period: int, amount: int, mode: PrepaymentMode | str) -> Schedule:
    """The schedule after a partial prepayment of ``amount`` fen on period ``after_period``'s due date."""
    terms = schedule.terms
    mode = _check_mode(schedule, mode)
    rows = schedule.periods
    last = rows[-1].number
    grace_end = max(1, terms.grace_interest + terms.grace_principal)
    if isinstance(after_period, bool) or not isinstance(after_period, int) or not grace_end <= after_period < last:
        raise ValidationFailed(f"提前还款须在第 {grace_end} 期到第 {last - 1} 期之间（含）", field="after_period")
    row = rows[after_period - 1]
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < row.balance:
        raise ValidationFailed("部分提前还款金额须大于零且小于剩余本金（全部还清请办理提前结清）", field="amount")
    balance = row.balance - amount
    paid = (*rows[: after_period - 1],
            replace(row, principal=row.principal + amount, balance=balance, prepayment=row.prepayment + amount))
    return _recalculated(schedule, paid, balance, after_period + 1, mode)


def _check_mode(schedule: Schedule, mode: PrepaymentMode | str) -> PrepaymentMode:
    mode = coerce_enum(PrepaymentMode, mode, "mode", "提前还款方式")
    if schedule.terms.method is RepaymentMethod.BULLET:
        raise ValidationFailed("一次性还本付息没有中间还款日，不支持部分提前还款（可以提前结清）", field="method")
    if schedule.terms.method is RepaymentMethod.INTEREST_FIRST and mode is PrepaymentMode.KEEP_INSTALLMENT:
        raise ValidationFailed("先息后本只能保持期限不变（减少每期利息）", field="mode")
    return mode


def _recalculated(schedule: Schedule, paid: tuple[Period, ...], balance: int, first: int,
                  mode: PrepaymentMode) -> Schedule:
    """``paid`` rows as they are, then periods ``first`` .. the last recalculated on ``balance``."""
    terms = schedule.terms
    last = schedule.periods[-1].number
    accrual = Accrual(terms, flat_base=balance)
    remaining = range(first, last + 1)

    if terms.method is RepaymentMethod.INTEREST_FIRST:
        return replace(schedule, periods=(*paid, *interest_first_rows(accrual, balance, remaining)))
    if terms.method is RepaymentMethod.EQUAL_INSTALLMENT:
        if mode is PrepaymentMode.KEEP_TERM:
            installment = level_installment(terms, balance, len(remaining), accrual.flat_base)
            rest = level_rows(accrual, balance, remaining, installment)
        else:
            installment = schedule.installment
            assert installment is not None
            rest = _until_clear(accrual, balance, first, last, lambda _interest: installment)
        return replace(schedule, periods=(*paid, *rest), installment=installment)
    if mode is PrepaymentMode.KEEP_TERM:
        step = Fraction(balance, len(remaining))
        rest = equal_principal_rows(accrual, balance, remaining, step)
    else:
        step = schedule.principal_step
        assert step is not None
        rounded_step = round_to(step, terms.rounding, terms.quantum)
        rest = _until_clear(accrual, balance, first, last,
                            lambda interest: round_to(rounded_step + interest, terms.rounding, terms.multiple))
    return replace(schedule, periods=(*paid, *rest), principal_step=step)


# --- prepayment on any date (mid-period) --------------------------------------------------------------------


def period_start(schedule: Schedule, period: int) -> date:
    """The day period ``period`` starts accruing: the previous due date, or the loan's start date."""
    return schedule.periods[period - 2].due_date if period > 1 else schedule.terms.start_date


def accrued_interest(terms: LoanTerms, principal: int, start: date, on: date) -> int:
    """Interest on ``principal`` fen from ``start`` to ``on`` by the product's day count, rounded once
    (0 when ``on`` is not after ``start``)."""
    if on <= start or principal <= 0:
        return 0
    exact = principal * Fraction(terms.annual_rate) * year_fraction(start, on, terms.days_in_year)
    return round_to(exact, terms.rounding, terms.quantum)


@dataclass(frozen=True)
class MidPeriod:
    """A schedule after a prepayment on ``on`` inside period ``period``.

    Period ``period``'s row carries the prepaid principal (``prepayment``) and, in its interest, what the
    prepaid principal accrued from the period's start to ``on`` (``accrued_interest``): both are paid on ``on``.
    After a full payoff it is the last row.
    """

    schedule: Schedule
    period: int
    accrued_interest: int


def _open_period(schedule: Schedule, period: int, on: date, paid_principal: int) -> tuple[Period, int]:
    """Period ``period``'s row and the principal still owed from it on (what is already paid on it aside)."""
    rows = schedule.periods
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= len(rows):
        raise ValidationFailed("提前还款所在期数不正确", field="period")
    row = rows[period - 1]
    if on >= row.due_date:
        raise ValidationFailed(f"提前还款日期 {on.isoformat()} 须早于第 {period} 期还款日 {row.due_date.isoformat()}",
                               field="date")
    grace = schedule.terms.grace_interest + schedule.terms.grace_principal
    if period <= grace and schedule.terms.method is not RepaymentMethod.BULLET:
        raise ValidationFailed(f"宽限期内（前 {grace} 期）不能办理提前还款", field="date")
    if not 0 <= paid_principal <= row.principal:
        raise ValidationFailed("本期已还本金不正确", field="paid_principal")
    return row, sum(r.principal for r in rows[period - 1:]) - paid_principal


def prepay_on(schedule: Schedule, *, period: int, on: date, amount: int, mode: PrepaymentMode | str,
              paid_principal: int = 0, paid_interest: int = 0) -> MidPeriod:
    """A partial prepayment of ``amount`` fen of principal on ``on``, inside period ``period`` (its due date
    after ``on``). The prepaid principal pays the interest it accrued since the period began; the periods
    from ``period`` on are recalculated on the lower balance (``mode``), period ``period`` accruing on it
    for the whole period. Rows before ``period`` are kept as they are.

    ``paid_principal`` / ``paid_interest``: what is already paid on period ``period`` (an earlier prepayment in
    the same period, or part of the installment paid early); it stays on the row and is not owed again."""
    mode = _check_mode(schedule, mode)
    row, balance = _open_period(schedule, period, on, paid_principal)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < balance:
        raise ValidationFailed("部分提前还款本金须大于零且小于剩余本金（全部还清请办理提前结清）", field="amount")
    accrued = accrued_interest(schedule.terms, amount, period_start(schedule, period), on)
    recalculated = _recalculated(schedule, schedule.periods[: period - 1], balance - amount, period, mode)
    rows = list(recalculated.periods)
    current = rows[period - 1]
    rows[period - 1] = replace(current, principal=current.principal + paid_principal + amount,
                               interest=current.interest + paid_interest + accrued,
                               prepayment=row.prepayment + amount)
    return MidPeriod(replace(recalculated, periods=tuple(rows)), period, accrued)


def payoff_on(schedule: Schedule, *, period: int, on: date, paid_principal: int = 0, paid_interest: int = 0,
              paid_fee: int = 0) -> MidPeriod:
    """Full payoff (提前结清) on ``on`` inside period ``period``: that period's row becomes the last, with all
    the principal left and the interest accrued on it from the period's start to ``on`` (besides what is
    already paid on the row); its fee is the period's fee when the period has begun (``on`` after its start),
    else what is already paid of it."""
    row, balance = _open_period(schedule, period, on, paid_principal)
    start = period_start(schedule, period)
    accrued = accrued_interest(schedule.terms, balance, start, on)
    last = replace(row, principal=balance + paid_principal, interest=paid_interest + accrued,
                   fee=row.fee if on > start else paid_fee, balance=0,
                   prepayment=row.prepayment + balance + paid_principal - row.principal)
    periods = (*schedule.periods[: period - 1], last)
    return MidPeriod(replace(schedule, periods=periods), period, accrued)


def _until_clear(accrual: Accrual, balance: int, first: int, last: int,
                 payment_for: Callable[[int], int]) -> list[Period]:
    """Rows paying ``payment_for(interest)`` until the balance is cleared; the last pays what is left,
    and never later than the original last period ``last`` (which then absorbs the rest, as it did
    before the prepayment: under daily interest the installment may not quite cover the term).

    A remainder no larger than one currency unit per period so far is rounding dust (each rounded
    payment errs by at most half a unit): the period that would leave it pays it instead.
    """
    rows: list[Period] = []
    number = first
    while balance:
        interest = accrual.interest(balance, number)
        principal = min(payment_for(interest) - interest, balance)
        if number == last or balance - principal <= accrual.terms.quantum * (len(rows) + 1):
            principal = balance  # the original last period, or rounding dust: cleared here
        elif principal <= 0:
            raise ValidationFailed("原月供不足以支付利息，无法缩短期限，请选择期限不变", field="mode")
        balance -= principal
        rows.append(Period(number, accrual.due(number), principal, interest, accrual.fee, balance))
        number += 1
    return rows
