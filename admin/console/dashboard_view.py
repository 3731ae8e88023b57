"""The console home page (首页): the viewer's role dashboard from analytics, for a chosen period."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from analytics import dashboards, funnel, metrics, periods
from analytics.metrics import Filters
from core import clock

PERIODS = {k: periods.PERIODS[k] for k in ("month", "last_month", "7d", "30d", "90d", "quarter", "last_quarter",
                                           "year")}  # the home page's choices
DEFAULT_PERIOD = periods.DEFAULT
FUNNEL_MODES = funnel.MODES  # the funnel's switch: by cohort (the default) or by activity


def period_filters(period: str | None, today: date | None = None) -> tuple[str, Filters]:
    return periods.resolve(period if period in PERIODS else DEFAULT_PERIOD, today)


def funnel_mode(value: str | None) -> str:
    return value if value in FUNNEL_MODES else "cohort"


def duration_text(seconds: float | None) -> str:
    """A median time between steps: hours under a day (小时), days otherwise (天); — without one."""
    if seconds is None:
        return "—"
    hours = seconds / 3600
    if hours < 24:
        return f"{hours:.1f} 小时"
    return f"{hours / 24:.1f} 天"


def computed_text(at: datetime | None) -> str | None:
    """When cached figures were computed, Beijing time (HH:MM:SS); None for a live dashboard."""
    return None if at is None else clock.ensure_aware(at).astimezone(clock.BUSINESS_TZ).strftime("%H:%M:%S")


def show(value: int | Decimal | None, unit: str) -> str:
    """A figure as shown on a card: counts plain, money in yuan, rates in percent."""
    return metrics.display(value, unit)


def change_text(card: dashboards.Card) -> tuple[str, str] | None:
    """('+12.5%', 'up') for a count or an amount, ('+3.0 个百分点', 'down') for a rate; None without a base."""
    change = card.change
    if change is None:
        return None
    direction = "up" if change > 0 else "down" if change < 0 else "flat"
    if card.unit == "rate":
        return f"{change * 100:+.1f} 个百分点", direction
    return f"{change * 100:+.1f}%", direction


def chart_payload(board: dashboards.Dashboard) -> dict[str, Any]:
    """What the page's script draws (labels and plain numbers; money in yuan for the axis)."""
    out: dict[str, Any] = {}
    if board.funnel:
        out["funnel"] = {"title": "转化漏斗", "unit": "count",
                         "items": [{"name": c.label, "value": int(c.value or 0), "url": c.url} for c in board.funnel]}
    for name, chart in board.charts.items():
        if chart.get("kind") == "table":  # shown as a table only
            continue
        unit = {"fen": "yuan", "rate": "percent"}.get(chart["unit"], "count")

        def plain(value: Any, unit: str = unit) -> Any:
            """A figure as the chart's axis shows it: yuan for fen, percent for a rate (None stays a gap)."""
            if value is None:
                return None
            if unit == "yuan":
                return value / 100
            if unit == "percent":
                return float(Decimal(value) * 100)
            return value

        spec: dict[str, Any] = {"title": chart["title"], "unit": unit,
                                "items": [{"name": item[0], "value": plain(item[1]), "url": item[2]}
                                          for item in chart["items"]]}
        if chart.get("kind") == "line":
            spec |= {"kind": "line", "x": chart["x"],
                     "series": [{"name": s["name"], "data": [plain(v) for v in s["data"]],
                                 "urls": s.get("urls") or [None] * len(s["data"])} for s in chart["series"]]}
        out[name] = spec
    return out
