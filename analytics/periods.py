"""Named statistics periods (统计区间) — 本月, 上月, 近 7 天, 本季度, 本年 … — as the business dates they cover on a
given day (the ones up to today end today: 本季度 is the quarter to date, 本年 the year to date).
The home dashboard offers some of them; a saved report keeps one by name, so a report pushed every morning always
covers, say, yesterday."""

from __future__ import annotations

from datetime import date, timedelta

from analytics.metrics import Filters
from core import clock

__all__ = ["DEFAULT", "PERIODS", "resolve"]

PERIODS = {"month": "本月", "last_month": "上月", "7d": "近 7 天", "30d": "近 30 天", "yesterday": "昨日",
           "today": "今日", "week": "本周", "last_week": "上周", "quarter": "本季度", "last_quarter": "上季度",
           "year": "本年", "90d": "近 90 天"}  # keys fit analytics_report.period (12 characters)
DEFAULT = "month"


def resolve(period: str | None, today: date | None = None) -> tuple[str, Filters]:
    """(the period's name, its dates); an unknown name is the default period."""
    today = today or clock.today()
    period = period if period in PERIODS else DEFAULT
    monday = today - timedelta(days=today.weekday())
    if period == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return period, Filters(start=end.replace(day=1), end=end)
    if period == "7d":
        return period, Filters(start=today - timedelta(days=6), end=today)
    if period == "30d":
        return period, Filters(start=today - timedelta(days=29), end=today)
    if period == "yesterday":
        return period, Filters(start=today - timedelta(days=1), end=today - timedelta(days=1))
    if period == "today":
        return period, Filters(start=today, end=today)
    if period == "week":
        return period, Filters(start=monday, end=today)
    if period == "last_week":
        return period, Filters(start=monday - timedelta(days=7), end=monday - timedelta(days=1))
    if period == "quarter":
        return period, Filters(start=_quarter_start(today), end=today)
    if period == "last_quarter":
        end = _quarter_start(today) - timedelta(days=1)
        return period, Filters(start=_quarter_start(end), end=end)
    if period == "year":
        return period, Filters(start=today.replace(month=1, day=1), end=today)
    if period == "90d":
        return period, Filters(start=today - timedelta(days=89), end=today)
    return period, Filters.this_month(today)


def _quarter_start(day: date) -> date:
    return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
