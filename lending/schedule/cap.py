"""The comprehensive-cost cap: no product or quote above it (default 24% a year, a setting)."""

from __future__ import annotations

from decimal import Decimal

from core.errors import AppError
from core.money import parse_rate
from core.settings import get_settings
from lending.schedule.apr import annualised_cost, percent
from lending.schedule.engine import Schedule


class AprAboveCap(AppError):
    code = "apr_above_cap"
    message = "综合年化成本超过上限"


def apr_cap() -> Decimal:
    """The configured cap as a fraction (``SCRM_APR_CAP_RATE``, "0.24" by default)."""
    return parse_rate(get_settings().apr_cap_rate)


def _shown(rate: Decimal, cap: Decimal) -> str:
    """Two places, or four when two would make an APR just above the cap look equal to it."""
    return percent(rate, 4) if percent(rate) == percent(cap) and rate != cap else percent(rate)


def check_apr_cap(schedule: Schedule, cap: Decimal | None = None) -> Decimal:
    """The schedule's comprehensive annualised cost; refused with the reason when above the cap."""
    cap = apr_cap() if cap is None else cap
    apr = annualised_cost(schedule)
    if apr > cap:
        raise AprAboveCap(
            f"综合年化成本 {_shown(apr, cap)}% 超过上限 {percent(cap)}%，不能报价",
            apr=str(apr), cap=str(cap),
        )
    return apr
