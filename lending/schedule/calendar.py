"""Due dates and day counts."""

from __future__ import annotations

import calendar
from datetime import date
from fractions import Fraction

from lending.schedule.terms import DayBasis


def add_months(start: date, months: int) -> date:
    """The same day of the month ``months`` later, clamped to the month's end (Jan 31 → Feb 28)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def days_in_year(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def year_fraction(start: date, end: date, basis: DayBasis) -> Fraction:
    """The accrual fraction of a year between two dates (end exclusive of its own day's interest).

    360 and 365: actual days / 360 or 365. actual: the days falling in each calendar year over
    that year's length (365 or 366), summed — a period inside one year is simply days / its length.
    """
    if end < start:
        raise ValueError("end before start")
    if basis is DayBasis.D360:
        return Fraction((end - start).days, 360)
    if basis is DayBasis.D365:
        return Fraction((end - start).days, 365)
    fraction = Fraction(0)
    cursor = start
    while cursor < end:
        boundary = min(date(cursor.year + 1, 1, 1), end)
        fraction += Fraction((boundary - cursor).days, days_in_year(cursor.year))
        cursor = boundary
    return fraction
