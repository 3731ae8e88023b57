"""综合年化成本 (IRR method) and the cap that refuses a quote above it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.errors import AppError
from core.settings import reset_settings_cache
from lending.schedule.apr import annualised_cost, cash_flows, percent, period_irr
from lending.schedule.cap import AprAboveCap, apr_cap, check_apr_cap
from lending.schedule.engine import build_schedule
from lending.schedule.terms import LoanTerms

ONE_BASIS_POINT = Decimal("0.0001")  # 0.01%


def schedule_of(**overrides):
    values = dict(principal=1_000_000, annual_rate=Decimal("0.12"), periods=12, method="equal_installment",
                  start_date=date(2022, 11, 1))
    values.update(overrides)
    return build_schedule(LoanTerms(**values))


@pytest.mark.parametrize("method", ["equal_installment", "equal_principal", "interest_first", "bullet"])
@pytest.mark.parametrize("rate,periods", [("0.12", 12), ("0.0435", 36), ("0.2399", 6), ("0", 12)])
def test_without_fees_the_cost_is_the_nominal_rate(method, rate, periods):
    apr = annualised_cost(schedule_of(method=method, annual_rate=Decimal(rate), periods=periods))
    assert abs(apr - Decimal(rate)) < ONE_BASIS_POINT


def test_cash_flows_are_the_borrowers():
    flows = cash_flows(schedule_of(service_fee_amount=20_000, service_fee_timing="upfront", deposit=50_000))
    assert flows[0] == 930_000
    assert flows[1] == -88_849 and flows[12] == -88_847 + 50_000
    assert len(flows) == 13


def test_an_upfront_fee_raises_the_cost():
    base = annualised_cost(schedule_of())
    with_fee = annualised_cost(schedule_of(service_fee_amount=20_000, service_fee_timing="upfront"))
    assert with_fee > base + Decimal("0.03")  # 2% of the principal upfront on a 1-year amortising loan


def test_a_periodic_fee_raises_the_cost():
    apr = annualised_cost(schedule_of(service_fee_rate=Decimal("0.005")))
    assert Decimal("0.22") < apr < Decimal("0.23")  # 0.5% of the principal a month on a declining balance


def test_a_kept_deposit_costs_more_than_a_refunded_one():
    refunded = annualised_cost(schedule_of(deposit=100_000))
    kept = annualised_cost(schedule_of(deposit=100_000, deposit_refundable=False))
    assert Decimal("0.12") < refunded < kept


def test_bullet_with_a_365_day_term_at_annual_over_360():
    apr = annualised_cost(schedule_of(method="bullet", interest_period="daily", days_in_year="360"))
    assert percent(apr) == "12.17"


def test_period_irr_of_a_known_flow():
    assert abs(period_irr([100, -110]) - Decimal("0.1")) < Decimal("1e-15")
    assert period_irr([100, -100]) == 0


def test_percent_formats_two_places():
    assert percent(Decimal("0.126849")) == "12.68"
    assert percent(Decimal("0.24")) == "24.00"


def test_a_quote_within_the_cap_returns_its_cost():
    assert abs(check_apr_cap(schedule_of()) - Decimal("0.12")) < ONE_BASIS_POINT


def test_a_quote_above_the_cap_is_refused_with_the_reason():
    schedule = schedule_of(service_fee_rate=Decimal("0.01"))  # 1% of the principal a month on top of 12%
    with pytest.raises(AprAboveCap) as caught:
        check_apr_cap(schedule)
    error = caught.value
    assert isinstance(error, AppError) and error.code == "apr_above_cap"
    assert f"综合年化成本 {percent(annualised_cost(schedule))}%" in error.message
    assert "超过上限 24.00%" in error.message
    assert Decimal(error.details["apr"]) > Decimal("0.24")


def test_just_above_the_cap_shows_enough_places_to_be_truthful():
    with pytest.raises(AprAboveCap) as caught:
        check_apr_cap(schedule_of(annual_rate=Decimal("0.24")), cap=Decimal("0.24"))
    assert "24.0000%" not in caught.value.message and "超过上限 24.00%" in caught.value.message


@pytest.fixture
def cap_setting(monkeypatch):
    def set_cap(value: str) -> None:
        monkeypatch.setenv("SCRM_APR_CAP_RATE", value)
        reset_settings_cache()

    yield set_cap
    monkeypatch.delenv("SCRM_APR_CAP_RATE", raising=False)
    reset_settings_cache()


def test_the_cap_defaults_to_24_percent_and_is_a_setting(cap_setting):
    assert apr_cap() == Decimal("0.24")
    cap_setting("0.10")
    assert apr_cap() == Decimal("0.10")
    with pytest.raises(AprAboveCap) as caught:
        check_apr_cap(schedule_of())
    assert "超过上限 10.00%" in caught.value.message
