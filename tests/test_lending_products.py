"""Products: immutable versions, sample quotes against the cap, quotes through the engine."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.errors import ValidationFailed
from core.settings import get_settings, reset_settings_cache
from lending import products
from lending.models import ProductVersion
from lending.product_exceptions import (
    AmountOutOfRange,
    FunderNameTaken,
    InvalidProductTerms,
    ProductCodeTaken,
    ProductInactive,
    TermNotAllowed,
)
from lending.schedule.apr import annualised_cost
from lending.schedule.cap import AprAboveCap
from lending.schedule.engine import build_schedule
from lending.schedule.terms import LoanTerms
from tests.lending_product_factories import make_funder, make_product, terms


def test_create_product_makes_version_one_with_the_highest_sample_apr(session):
    product = make_product(session)
    version = products.get_version(session, product.current_version_id)
    assert version.version == 1
    assert version.terms_months == [12, 24]
    # 12% a year, no fees: the comprehensive cost is the nominal rate (to the engine's precision)
    assert abs(version.max_apr_rate - Decimal("0.12")) < Decimal("0.0001")


def test_edit_adds_a_new_version_and_leaves_the_old_one_unchanged(session):
    product = make_product(session)
    first_id = product.current_version_id
    version = products.edit_product(session, product.id, terms(annual_rate="0.15"), note="调价")
    session.expire_all()
    old = session.get(ProductVersion, first_id)
    assert (version.version, version.annual_rate) == (2, Decimal("0.15"))
    assert old.annual_rate == Decimal("0.12") and old.version == 1
    assert products.get_product(session, product.id).current_version_id == version.id


def test_edit_with_unchanged_terms_adds_no_version(session):
    product = make_product(session)
    same = products.edit_product(session, product.id, terms(), name="新名称")
    assert same.id == product.current_version_id
    assert len(products.versions_of(session, product.id)) == 1
    assert product.name == "新名称"


def test_stored_version_refuses_an_update(session):
    product = make_product(session)
    version = products.get_version(session, product.current_version_id)
    version.annual_rate = Decimal("0.2")
    with pytest.raises(RuntimeError, match="immutable"):
        session.flush()


def test_version_above_the_cap_is_refused_with_the_reason(session):
    funder = make_funder(session)
    with pytest.raises(AprAboveCap) as caught:
        products.create_product(session, code="HIGH", name="高息", funder_id=funder.id,
                                terms=terms(annual_rate="0.18", service_fee_rate="0.005"))
    assert "超过上限 24.00%" in caught.value.message
    assert "期限 12 个月" in caught.value.message
    assert products.list_products(session) == []


def test_upfront_fee_counts_towards_the_cap(session):
    # 20% nominal plus an upfront fee of 5% of the principal: above 24% on a 12-month loan
    with pytest.raises(AprAboveCap):
        make_product(session, annual_rate="0.20", service_fee_rate="0.05", service_fee_timing="upfront")


def test_cap_follows_the_setting(session, monkeypatch):
    monkeypatch.setenv("SCRM_APR_CAP_RATE", "0.10")
    reset_settings_cache()
    try:
        assert get_settings().apr_cap_rate == "0.10"
        with pytest.raises(AprAboveCap):
            make_product(session)
    finally:
        monkeypatch.delenv("SCRM_APR_CAP_RATE")
        reset_settings_cache()


def test_edit_above_the_cap_keeps_the_current_version(session):
    product = make_product(session)
    with pytest.raises(AprAboveCap):
        products.edit_product(session, product.id, terms(annual_rate="0.30"))
    assert len(products.versions_of(session, product.id)) == 1


def test_terms_the_engine_refuses_are_refused(session):
    # 3 months with 3 grace periods leaves nothing to amortise
    with pytest.raises(InvalidProductTerms, match="期限 3 个月：宽限期"):
        make_product(session, terms_months=[3, 12], grace_principal_periods=3)


@pytest.mark.parametrize(("changes", "field"), [
    ({"min_amount": 500_000, "max_amount": 100_000}, "max_amount"),
    ({"terms_months": []}, "terms_months"),
    ({"terms_months": [0]}, "terms_months"),
    ({"annual_rate": 0.12}, "annual_rate"),
    ({"repayment_method": "monthly"}, "repayment_method"),
    ({"customer_types": ["vip"]}, "customer_types"),
    ({"min_age": 40, "max_age": 30}, "max_age"),
])
def test_invalid_terms_are_refused_with_the_field(session, changes, field):
    with pytest.raises(ValidationFailed) as caught:
        make_product(session, **changes)
    assert caught.value.details.get("field") == field


def test_duplicate_code_and_funder_name_are_refused(session):
    funder = make_funder(session, "甲银行")
    make_product(session, funder=funder, code="DUP")
    with pytest.raises(ProductCodeTaken):
        make_product(session, funder=funder, code="DUP")
    with pytest.raises(FunderNameTaken):
        make_funder(session, "甲银行")


def test_quote_matches_the_engine(session):
    product = make_product(session, service_fee_rate="0.001", deposit_rate="0.01", deposit_refundable=True)
    version = products.get_version(session, product.current_version_id)
    start = date(2026, 1, 15)
    q = products.quote(version, 5_000_000, 12, start)
    expected = build_schedule(LoanTerms(principal=5_000_000, annual_rate=Decimal("0.12"), periods=12,
                                        method="equal_installment", start_date=start,
                                        service_fee_rate=Decimal("0.001"), deposit=50_000))
    assert q.schedule == expected
    assert q.apr == annualised_cost(expected)
    assert q.monthly_payment == expected.periods[0].total


def test_quote_reference_example(session):
    # /work/shared/reference/loan-schedules.md: 10,000.00 at 12% over 12 months pays 888.49
    product = make_product(session, min_amount=1_000_000)
    q = products.quote(products.get_version(session, product.current_version_id), 1_000_000, 12, date(2026, 1, 1))
    assert q.monthly_payment == 88_849
    assert q.schedule.totals.interest == 66_186


def test_quote_refuses_an_amount_out_of_range(session):
    version = products.get_version(session, make_product(session).current_version_id)
    with pytest.raises(AmountOutOfRange, match="不在产品允许的"):
        products.quote(version, 999_999, 12)
    with pytest.raises(AmountOutOfRange):
        products.quote(version, 10_000_001, 12)


def test_quote_refuses_a_term_not_allowed(session):
    version = products.get_version(session, make_product(session).current_version_id)
    with pytest.raises(TermNotAllowed, match="可选：12、24"):
        products.quote(version, 2_000_000, 18)


def test_old_version_still_quotes_its_own_terms(session):
    product = make_product(session)
    old = products.get_version(session, product.current_version_id)
    products.edit_product(session, product.id, terms(annual_rate="0.10"))
    assert products.quote(old, 2_000_000, 12).apr > Decimal("0.119")


def test_inactive_product_has_no_current_version_for_new_business(session):
    product = make_product(session)
    products.set_product_active(session, product.id, False)
    with pytest.raises(ProductInactive):
        products.current_version(session, product.id)


def test_bullet_product_quotes_one_period(session):
    product = make_product(session, repayment_method="bullet", terms_months=[6])
    q = products.quote(products.get_version(session, product.current_version_id), 1_000_000, 6, date(2026, 1, 1))
    assert len(q.schedule.periods) == 1
    assert q.monthly_payment == 1_060_000


def test_versions_are_listed_newest_first(session):
    product = make_product(session)
    products.edit_product(session, product.id, terms(annual_rate="0.11"))
    products.edit_product(session, product.id, terms(annual_rate="0.10"))
    numbers = [v.version for v in products.versions_of(session, product.id)]
    assert numbers == [3, 2, 1]
    assert session.scalar(select(ProductVersion.annual_rate).where(ProductVersion.version == 1,
                                                                   ProductVersion.product_id == product.id)) \
        == Decimal("0.12")


def test_two_simultaneous_edits_make_two_consecutive_versions(committed):
    import threading

    from core.db import unit_of_work

    with unit_of_work() as s:
        product_id = make_product(s).id
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def edit(rate: str) -> None:
        barrier.wait()
        try:
            with unit_of_work() as s:
                products.edit_product(s, product_id, terms(annual_rate=rate))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(rate,)) for rate in ("0.10", "0.11")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with unit_of_work() as s:
        versions = products.versions_of(s, product_id)
        assert [v.version for v in versions] == [3, 2, 1]
        assert products.get_product(s, product_id).current_version_id == versions[0].id


def test_the_database_itself_refuses_to_change_a_version(session):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    version_id = make_product(session).current_version_id
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("UPDATE lending_product_version SET annual_rate = 0.2 WHERE id = :id"), {"id": version_id})
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("DELETE FROM lending_product_version WHERE id = :id"), {"id": version_id})
