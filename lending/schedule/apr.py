"""综合年化成本: the comprehensive annualised cost of a schedule, by the IRR method.

The borrower's real cash flows, one per repayment period: at disbursement the money actually
received (principal − upfront fee − deposit), then every payment (principal, interest and periodic
fee), and the deposit back with the last payment if it is refundable. The period IRR solves
``Σ flow_k / (1 + r) ** k = 0``; the annualised cost is ``r × periods per year`` (12 for monthly
periods; 12 / term-in-months for a bullet loan's single period), as the PBoC rule states it.

Solved in Decimal (50 significant digits) by bisection to a tolerance of 1e-18 on the period rate:
no float anywhere. The result is returned as a fraction (0.1268 is 12.68%).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext

from core.errors import ValidationFailed
from lending.schedule.engine import Schedule

TOLERANCE = Decimal("1e-18")
PRECISION = 50
RESULT_PLACES = Decimal("1e-12")
_MAX_RATE = Decimal(10**6)


def cash_flows(schedule: Schedule) -> list[int]:
    """The borrower's flows in fen by period index (0 = disbursement): money in positive, out negative."""
    rows = schedule.periods
    flows = [0] * (rows[-1].number + 1)
    flows[0] = schedule.received
    for row in rows:
        flows[row.number] -= row.total
    if schedule.terms.deposit_refundable:
        flows[-1] += schedule.terms.deposit
    return flows


def period_irr(flows: Sequence[int], tolerance: Decimal = TOLERANCE) -> Decimal:
    """The rate per period at which the flows' present value is zero (money received first)."""
    if not flows or flows[0] <= 0:
        raise ValidationFailed("现金流须以实际到手金额开始", field="flows")
    with localcontext() as ctx:
        ctx.prec = PRECISION

        def npv(rate: Decimal) -> Decimal:
            discount = 1 / (1 + rate)
            value = Decimal(0)
            for flow in reversed(flows):
                value = value * discount + flow
            return value

        if npv(Decimal(0)) >= 0:  # paid back no more than received: no cost
            return Decimal(0)
        low, high = Decimal(0), Decimal(1)
        while npv(high) <= 0:
            low, high = high, high * 2
            if high > _MAX_RATE:
                raise ValidationFailed("综合年化成本过高，无法计算", field="flows")
        while high - low > tolerance:
            middle = (low + high) / 2
            if npv(middle) > 0:
                high = middle
            else:
                low = middle
        return (low + high) / 2


def annualised_cost(schedule: Schedule) -> Decimal:
    """综合年化成本 of the schedule as a fraction, to 12 decimal places."""
    rate = period_irr(cash_flows(schedule))
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return (rate * 12 / schedule.period_months).quantize(RESULT_PLACES, rounding=ROUND_HALF_UP)


def percent(rate: Decimal, places: int = 2) -> str:
    """A fraction as a percent string: Decimal("0.126812") -> "12.68"."""
    return str((rate * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
