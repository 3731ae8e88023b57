"""The arithmetic of servicing, pure (no database): penalty interest, overdue buckets, the write-off split.

- 罚息 penalty interest of one installment as of a business date ``T``: for every day ``d`` after the due
  date up to ``T``, the principal of the installment still unpaid at the start of ``d`` (repayments value-dated
  before ``d``) × the daily penalty rate of ``d``; summed exactly (``Fraction``) and rounded ONCE with the
  product's rounding and currency digits. A bill cleared (principal, interest and fee) within the grace days
  carries no penalty; one still unpaid after them carries penalty from the day after its due date.
  Because the figure is recomputed from the repayments, a re-run for the same day gives the same fen:
  there is nothing to add twice.
- The daily rate: ``penalty_rate`` itself (basis ``daily``, 万分之五 = 0.0005) or ``penalty_rate / N``
  (basis ``annual``) with N = 360, 365, or 365/366 by the calendar year of the day (``actual``).
- Buckets: C current, M1 1–30 days, M2 31–60, M3 61–90, M3+ over 90.
- Write-off (冲销): installments oldest first; inside one, the product's order (default penalty → fee →
  interest → principal).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from core.money import Rounding
from lending.models import WriteOffOrder
from lending.schedule.exact import round_to

COMPONENTS = ("penalty", "fee", "interest", "principal")
DAY = timedelta(days=1)


@dataclass(frozen=True)
class ServicingTerms:
    """What servicing needs of a contract's frozen terms (``Contract.snapshot["terms"]``)."""

    penalty_rate: Decimal = Decimal(0)
    penalty_basis: str = "daily"
    days_in_year: str = "360"
    rounding: Rounding = Rounding.HALF_UP
    currency_digits: int = 2
    grace_days: int = 0
    write_off_order: tuple[str, ...] = WriteOffOrder.PENALTY_FEE_INTEREST_PRINCIPAL.components

    @classmethod
    def of_snapshot(cls, snapshot: Mapping[str, Any] | None) -> ServicingTerms:
        terms = dict((snapshot or {}).get("terms") or {})
        order = WriteOffOrder(terms.get("write_off_order") or WriteOffOrder.PENALTY_FEE_INTEREST_PRINCIPAL)
        return cls(penalty_rate=Decimal(str(terms.get("penalty_rate") or 0)),
                   penalty_basis=str(terms.get("penalty_basis") or "daily"),
                   days_in_year=str(terms.get("days_in_year") or "360"),
                   rounding=Rounding(terms.get("rounding") or Rounding.HALF_UP),
                   currency_digits=int(terms.get("currency_digits", 2)),
                   grace_days=int(terms.get("overdue_grace_days") or 0),
                   write_off_order=order.components)

    @property
    def quantum(self) -> int:
        """The rounding step in fen: 1 (to the fen), 10 (to the jiao) or 100 (to the yuan)."""
        return 10 ** (2 - self.currency_digits)

    def overdue_on(self, due_date: date, day: date) -> bool:
        """Is a bill due on ``due_date`` and still unpaid overdue on ``day``? (After the grace days.)"""
        return day > due_date + timedelta(days=self.grace_days)


def _rate_days(terms: ServicingTerms, first: date, last: date) -> Fraction:
    """Σ of the daily penalty rate over the days first..last (inclusive); 0 when last < first."""
    if last < first or not terms.penalty_rate:
        return Fraction(0)
    rate = Fraction(terms.penalty_rate)
    days = (last - first).days + 1
    if terms.penalty_basis == "daily":
        return rate * days
    if terms.days_in_year in ("360", "365"):
        return rate * days / int(terms.days_in_year)
    total = Fraction(0)  # actual: each calendar year's days at annual / its length
    start = first
    while start <= last:
        year_end = min(last, date(start.year, 12, 31))
        total += rate * ((year_end - start).days + 1) / (366 if calendar.isleap(start.year) else 365)
        start = year_end + DAY
    return total


def penalty_exact(terms: ServicingTerms, *, principal: int, due_date: date, as_of: date,
                  principal_paid: Iterable[tuple[date, int]], cleared_date: date | None) -> Fraction:
    """The exact penalty (fen, unrounded) of one installment as of ``as_of``.

    ``principal_paid``: (value date, fen) of the principal written off this installment by repayments that
    stand (reversed ones left out). ``cleared_date``: when principal, interest and fee were all paid, if so.
    """
    if not terms.overdue_on(due_date, as_of):
        return Fraction(0)
    if cleared_date is not None and not terms.overdue_on(due_date, cleared_date):
        return Fraction(0)  # cleared within the grace days
    payments = sorted(principal_paid)
    start = due_date + DAY
    outstanding = principal - sum(fen for day, fen in payments if day < start)
    total = Fraction(0)
    for day, fen in payments:
        if day < start:
            continue
        if day >= as_of:
            break
        # days start..day still carry the principal unpaid before them; the payment counts from day + 1
        total += outstanding * _rate_days(terms, start, day)
        outstanding -= fen
        start = day + DAY
    total += outstanding * _rate_days(terms, start, as_of)
    return total


def penalty_amount(terms: ServicingTerms, **kwargs: Any) -> int:
    """:func:`penalty_exact` rounded once to the product's currency digits with its rounding mode."""
    return round_to(penalty_exact(terms, **kwargs), terms.rounding, terms.quantum)


def bucket(overdue_days: int) -> str:
    if overdue_days <= 0:
        return "C"
    if overdue_days <= 30:
        return "M1"
    if overdue_days <= 60:
        return "M2"
    if overdue_days <= 90:
        return "M3"
    return "M3+"


@dataclass(frozen=True)
class Due:
    """What one installment still asks for, per component (fen)."""

    installment_id: int
    number: int
    outstanding: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.outstanding.values())


def allocate(amount: int, dues: Sequence[Due], order: Sequence[str]) -> list[tuple[int, str, int]]:
    """Split ``amount`` fen over the installments (in the order given: oldest first) and, inside one,
    over the components in ``order``. Returns (installment_id, component, fen) with fen > 0.
    ``amount`` must not exceed the total of ``dues`` (the caller refuses an overpayment first)."""
    if sorted(order) != sorted(COMPONENTS):
        raise ValueError(f"write-off order must name each of {COMPONENTS} once: {order}")
    left = amount
    out: list[tuple[int, str, int]] = []
    for due in dues:
        for component in order:
            if left == 0:
                return out
            take = min(left, due.outstanding.get(component, 0))
            if take > 0:
                out.append((due.installment_id, component, take))
                left -= take
    if left:
        raise ValueError("amount exceeds what is due")
    return out
