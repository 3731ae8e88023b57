"""Exact rounding of rational amounts.

Every schedule figure is first computed as an exact rational number of fen (``Fraction`` built
from integer fen and ``Decimal`` rates, never from a float), then rounded exactly once with the
product's rounding mode. Decimal division at a finite precision cannot promise that for
``(1 + i) ** n`` or ``/ 365``; an exact ratio can, and the result is the same as Decimal at
infinite precision.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from core.money import Rounding


def exact(value: Decimal | int) -> Fraction:
    """A Decimal or int as an exact Fraction (floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"exact() needs a Decimal or an int, got {type(value).__name__}")
    return Fraction(value)


def round_to(value: Fraction | int, rounding: Rounding, step: int = 1) -> int:
    """Round ``value`` (fen) to a whole multiple of ``step`` fen, once, half-up or half-even.

    Half-up rounds ties away from zero, as ``decimal.ROUND_HALF_UP`` does.
    """
    if step < 1:
        raise ValueError("step must be a positive number of fen")
    value = Fraction(value)
    if value < 0:
        return -round_to(-value, rounding, step)
    denominator = value.denominator * step
    quotient, remainder = divmod(value.numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (
        twice == denominator and (rounding is Rounding.HALF_UP or quotient % 2 == 1)
    ):
        quotient += 1
    return quotient * step
