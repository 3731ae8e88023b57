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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from fractions import Fraction

from core.errors import ValidationFailed
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
from lending.schedule.terms import RepaymentMethod, coerce_enum


class PrepaymentMode(StrEnum):
    KEEP_INSTALLMENT = "keep_installment"  # 月供不变，缩短期限
    KEEP_TERM = "keep_term"  # 期限不变，减少月供


def prepay(schedule: Schedule, *, after_period: int, amount: int, mode: PrepaymentMode | str) -> Schedule:
    """The schedule after a partial prepayment of ``amount`` fen on period ``after_period``'s due date."""
    terms = schedule.terms
    mode = coerce_enum(PrepaymentMode, mode, "mode", "提前还款方式")
    if terms.method is RepaymentMethod.BULLET:
        raise ValidationFailed("一次性还本付息没有中间还款日，不支持部分提前还款", field="method")
    if terms.method is RepaymentMethod.INTEREST_FIRST and mode is PrepaymentMode.KEEP_INSTALLMENT:
        raise ValidationFailed("先息后本只能保持期限不变（减少每期利息）", field="mode")
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
    accrual = Accrual(terms, flat_base=balance)
    first = after_period + 1
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
