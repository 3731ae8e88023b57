"""进件产品匹配: eligible products ranked by APR then monthly payment, exclusions with Chinese reasons."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core import clock
from core.errors import ValidationFailed
from lending import products
from lending.matching import Demand, Profile, match_products, profile_of
from lending.person import age_from_id_number, birth_date
from tests.factories import make_customer
from tests.lending_product_factories import id_number, make_funder, make_product


def names(result):
    return [m.product.code for m in result.matches]


def reasons_of(result, code):
    return next(e.reasons for e in result.excluded if e.product.code == code)


def test_age_from_the_id_number_turns_on_the_birthday():
    number = id_number(date(1990, 6, 15))
    assert birth_date(number) == date(1990, 6, 15)
    assert age_from_id_number(number, date(2026, 6, 14)) == 35
    assert age_from_id_number(number, date(2026, 6, 15)) == 36


def test_a_bad_id_number_is_refused_masked():
    with pytest.raises(ValidationFailed) as caught:
        age_from_id_number("440305199006151230")
    assert "199006" not in caught.value.message


def test_matches_are_ranked_by_apr(session):
    make_product(session, code="A15", annual_rate="0.15")
    make_product(session, code="B10", annual_rate="0.10")
    make_product(session, code="C10FEE", annual_rate="0.10", service_fee_rate="0.001")
    result = match_products(session, Demand(2_000_000, 12), Profile(age=30))
    assert names(result) == ["B10", "C10FEE", "A15"]


def test_equal_apr_is_ranked_by_the_lower_monthly_payment(session):
    # the same 12% cost; interest-first asks 200 yuan a month, the installment loan 1,776.98
    make_product(session, code="SHORT", terms_months=[12], annual_rate="0.12")
    make_product(session, code="LONG", terms_months=[12], annual_rate="0.12", repayment_method="interest_first")
    result = match_products(session, Demand(2_000_000, 12), Profile())
    assert names(result) == ["LONG", "SHORT"]  # interest-first: 200 yuan a month, same 12% APR
    assert result.matches[0].monthly_payment < result.matches[1].monthly_payment


def test_each_match_carries_payment_and_apr_from_the_engine(session):
    product = make_product(session, code="ONE")
    match = match_products(session, Demand(1_000_000, 12), Profile()).matches[0]
    version = products.get_version(session, product.current_version_id)
    expected = products.quote(version, 1_000_000, 12)
    assert (match.monthly_payment, match.quote.apr) == (expected.monthly_payment, expected.apr)
    assert match.monthly_payment == 88_849


def test_amount_and_term_outside_the_product_are_excluded_with_reasons(session):
    make_product(session, code="SMALL", max_amount=1_500_000)
    result = match_products(session, Demand(2_000_000, 36), Profile())
    reasons = reasons_of(result, "SMALL")
    assert any("不在" in r and "¥10,000.00" in r for r in reasons)
    assert any("期限 36 个月不可选" in r for r in reasons)
    assert result.matches == []


def test_age_region_type_and_income_exclusions(session):
    make_product(session, code="STRICT", min_age=22, max_age=55, regions=["广东"], customer_types=["mortgage"],
                 min_income_amount=800_000)
    result = match_products(session, Demand(2_000_000, 12, "credit"),
                            Profile(age=60, region="浙江杭州", income_monthly=500_000))
    reasons = " / ".join(reasons_of(result, "STRICT"))
    assert "年龄 60 周岁不符合要求" in reasons
    assert "地区「浙江杭州」不在产品范围内" in reasons
    assert "客户类型「信用贷」不适用" in reasons
    assert "月收入 ¥5,000.00 低于要求的 ¥8,000.00" in reasons


def test_region_prefix_admits_a_city_and_unknown_income_needs_info(session):
    make_product(session, code="GD", regions=["广东"], min_income_amount=800_000)
    result = match_products(session, Demand(2_000_000, 12), Profile(region="广东深圳"))
    assert names(result) == [] and result.excluded == []
    assert [m.product.code for m in result.needs_info] == ["GD"]
    assert result.needs_info[0].missing == ("月收入（要求不低于 ¥8,000.00）",)


def test_inactive_product_and_funder_are_excluded(session):
    funder = make_funder(session)
    off = make_product(session, code="OFF")
    make_product(session, code="FUNDEROFF", funder=funder)
    products.set_product_active(session, off.id, False)
    products.update_funder(session, funder.id, active=False)
    result = match_products(session, Demand(2_000_000, 12), Profile())
    assert "产品已停用" in reasons_of(result, "OFF")
    assert any("已停用" in r for r in reasons_of(result, "FUNDEROFF"))


def test_a_product_now_above_the_cap_is_excluded_with_the_engine_reason(session, monkeypatch):
    make_product(session, code="P12")
    monkeypatch.setattr("lending.schedule.cap.apr_cap", lambda: Decimal("0.10"))
    result = match_products(session, Demand(2_000_000, 12), Profile())
    assert any("超过上限" in r for r in reasons_of(result, "P12"))


def test_profile_of_a_customer_reads_the_age_from_the_sealed_id_number(session):
    clock.freeze(datetime(2026, 3, 1, 4, tzinfo=UTC))
    customer = make_customer(session, id_number=id_number(date(2000, 3, 2)), region="广东深圳")
    profile = profile_of(customer)
    assert (profile.age, profile.region) == (25, "广东深圳")


def test_missing_id_number_excludes_an_age_restricted_product(session):
    make_product(session, code="AGE", min_age=22)
    result = match_products(session, Demand(2_000_000, 12), Profile(age=None))
    assert "缺少身份证号" in reasons_of(result, "AGE")[0]


def test_bad_demand_is_refused(session):
    with pytest.raises(ValidationFailed):
        match_products(session, Demand(0, 12), Profile())


def test_demo_products_seed_once_and_match(session):
    from lending import product_demo

    assert product_demo.seed(session)
    assert product_demo.seed(session) == []
    facts = {"social_insurance_months": 24, "debt_monthly_amount": 200_000, "credit_level": "good",
             "credit_queries_6m": 2, "credit_overdue_count": 0, "industry": "制造业"}
    good = Profile(age=30, region="上海", income_monthly=1_000_000, facts=facts)
    result = match_products(session, Demand(5_000_000, 12, "credit"), good)
    assert names(result) == ["DEMO-XY", "DEMO-XF"]  # 10.8% before 15% plus a monthly fee
    assert {e.product.code for e in result.excluded} == {"DEMO-FD", "DEMO-JK"}  # mortgage only; 20,000 at most
    unknown = match_products(session, Demand(5_000_000, 12, "credit"), Profile(age=30, region="上海"))
    assert names(unknown) == [] and [m.product.code for m in unknown.needs_info] == ["DEMO-XY", "DEMO-XF"]
    risky = Profile(age=30, region="上海", income_monthly=1_000_000,
                    facts=facts | {"industry": "娱乐休闲", "credit_overdue_count": 3})
    excluded = match_products(session, Demand(5_000_000, 12, "credit"), risky)
    assert names(excluded) == [] and excluded.needs_info == []
    assert any("限制行业" in r for r in reasons_of(excluded, "DEMO-XY"))
    assert "近两年逾期 3 次，产品要求不超过 2 次" in reasons_of(excluded, "DEMO-XF")


def test_an_unknown_customer_type_is_a_note_not_an_exclusion(session):
    make_product(session, code="MORT", customer_types=["mortgage"])
    result = match_products(session, Demand(2_000_000, 12, "unknown"), Profile())
    assert names(result) == ["MORT"]
    assert any("需确认客户类型" in n and "房抵贷" in n for n in result.matches[0].notes)
