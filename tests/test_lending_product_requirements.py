"""准入条件 on the qualification profile: each requirement excludes with its Chinese reason, a fact the
profile lacks lists the product as 需补充资料, and bad requirement values are refused, nothing saved."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm import qualification
from crm.scope import Viewer
from lending import products
from lending.matching import Demand, Profile, match_products, profile_of
from lending.models import ProductVersion
from lending.product_exceptions import InvalidProductTerms
from tests.factories import make_customer, make_staff
from tests.lending_product_factories import make_product, terms

DEMAND = Demand(2_000_000, 12)
FULL = {"income_monthly_amount": 1_000_000, "debt_monthly_amount": 200_000, "social_insurance_months": 24,
        "provident_fund_months": 36, "property_status": "mortgage", "car_status": "full", "credit_level": "good",
        "credit_overdue_count": 0, "credit_queries_6m": 2, "industry": "制造业"}

# requirement -> (a profile change that fails it, the reason, the fact that is missing when removed)
CASES = {
    "social": ({"min_social_insurance_months": 12}, {"social_insurance_months": 6},
               "社保缴纳 6 个月，产品要求至少 12 个月", "social_insurance_months", "社保缴纳月数（要求至少 12 个月）"),
    "fund": ({"min_provident_fund_months": 24}, {"provident_fund_months": 12},
             "公积金缴纳 12 个月，产品要求至少 24 个月", "provident_fund_months", "公积金缴纳月数（要求至少 24 个月）"),
    "property": ({"property_required": True}, {"property_status": "none"},
                 "无房产，产品要求有房产", "property_status", "房产情况（产品要求有房产）"),
    "car": ({"car_required": True}, {"car_status": "none"}, "无车辆，产品要求有车辆", "car_status",
            "车辆情况（产品要求有车辆）"),
    "debt": ({"max_debt_ratio": Decimal("0.3")}, {"debt_monthly_amount": 350_000},
             "负债率 35%（月还款/月收入），产品要求不超过 30%", "debt_monthly_amount",
             "每月还款额（用于核对负债率不超过 30%）"),
    "credit": ({"min_credit_level": "blank"}, {"credit_level": "minor"},
               "征信情况「有轻微逾期」，产品要求不差于「白户」", "credit_level", "征信情况（要求不差于「白户」）"),
    "overdue": ({"max_credit_overdue_count": 2}, {"credit_overdue_count": 3},
                "近两年逾期 3 次，产品要求不超过 2 次", "credit_overdue_count", "近两年逾期次数（要求不超过 2 次）"),
    "queries": ({"max_credit_queries_6m": 6}, {"credit_queries_6m": 7},
                "近半年征信查询 7 次，产品要求不超过 6 次", "credit_queries_6m", "近半年征信查询次数（要求不超过 6 次）"),
    "allowed": ({"allowed_industries": ["教育", "制造业"]}, {"industry": "互联网"},
                "所属行业「互联网」不在产品准入行业内（仅限：制造业、教育）", "industry", "所属行业（仅限：制造业、教育）"),
    "excluded": ({"excluded_industries": ["建筑"]}, {"industry": "建筑装修"}, "所属行业「建筑装修」属于产品限制行业（建筑）",
                 "industry", "所属行业（不接受：建筑）"),
}


def profile(facts):
    return Profile(income_monthly=facts.get("income_monthly_amount"), facts=facts)


@pytest.mark.parametrize("case", CASES)
def test_each_requirement_admits_a_profile_that_meets_it(session, case):
    requirement, *_ = CASES[case]
    make_product(session, code="REQ", **requirement)
    result = match_products(session, DEMAND, profile(FULL))
    assert [m.product.code for m in result.matches] == ["REQ"]


@pytest.mark.parametrize("case", CASES)
def test_each_requirement_excludes_with_its_reason(session, case):
    requirement, change, reason, _, _ = CASES[case]
    make_product(session, code="REQ", **requirement)
    result = match_products(session, DEMAND, profile(FULL | change))
    assert result.matches == [] and result.needs_info == []
    assert result.excluded[0].reasons == (reason,)


@pytest.mark.parametrize("case", CASES)
def test_a_missing_fact_lists_the_product_as_needing_information(session, case):
    requirement, _, _, fact, missing = CASES[case]
    make_product(session, code="REQ", **requirement)
    facts = {k: v for k, v in FULL.items() if k != fact}
    result = match_products(session, DEMAND, profile(facts))
    assert result.matches == [] and result.excluded == []
    [pending] = result.needs_info
    assert pending.missing == (missing,)
    assert pending.quote.monthly_payment > 0  # quoted like a match
    assert result.as_dict()["needs_info"][0]["missing"] == [missing]


def test_a_failed_requirement_excludes_even_when_other_facts_are_missing(session):
    make_product(session, code="REQ", min_social_insurance_months=12, car_required=True)
    result = match_products(session, DEMAND, profile({"social_insurance_months": 3}))
    [excluded] = result.excluded
    assert excluded.reasons == ("社保缴纳 3 个月，产品要求至少 12 个月",)
    assert excluded.missing == ("车辆情况（产品要求有车辆）",)


def test_a_product_without_requirements_matches_an_empty_profile(session):
    make_product(session, code="FREE")
    result = match_products(session, DEMAND, Profile())
    assert [m.product.code for m in result.matches] == ["FREE"]


def test_the_customer_profile_feeds_the_matching(session):
    staff = make_staff(session, role="admin")
    customer = make_customer(session)
    make_product(session, code="REQ", min_social_insurance_months=12, excluded_industries=["娱乐休闲"])
    assert [m.product.code for m in match_products(session, DEMAND, profile_of(customer)).needs_info] == ["REQ"]
    qualification.update(session, Viewer.of(staff), customer.id, {"social_insurance_months": "6",
                                                                   "industry": "娱乐休闲 KTV"})
    result = match_products(session, DEMAND, profile_of(customer))
    assert result.excluded[0].reasons == ("社保缴纳 6 个月，产品要求至少 12 个月",
                                          "所属行业「娱乐休闲 KTV」属于产品限制行业（娱乐休闲）")


BAD = [
    ({"min_social_insurance_months": 0}, "min_social_insurance_months", "最低社保缴纳月数须在 1 到 600 之间"),
    ({"min_provident_fund_months": "十二"}, "min_provident_fund_months", "最低公积金缴纳月数必须是整数"),
    ({"max_debt_ratio": Decimal("0")}, "max_debt_ratio", "最高负债率须大于 0%"),
    ({"max_debt_ratio": Decimal("6")}, "max_debt_ratio", "不超过 500%"),
    ({"max_debt_ratio": 0.5}, "max_debt_ratio", "不能是浮点数"),
    ({"min_credit_level": "excellent"}, "min_credit_level", "征信要求只能是"),
    ({"max_credit_overdue_count": -1}, "max_credit_overdue_count", "最多逾期次数须在 0 到 999 之间"),
    ({"max_credit_queries_6m": 1000}, "max_credit_queries_6m", "近半年最多查询次数须在 0 到 999 之间"),
    ({"allowed_industries": ["炼金术"]}, "allowed_industries", "未知的行业：炼金术"),
    ({"allowed_industries": ["教育"], "excluded_industries": ["教育"]}, "excluded_industries", "行业不能既准入又限制：教育"),
    ({"property_required": "yes"}, "property_required", "是否要求房产必须是是/否"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD)
def test_bad_requirements_are_refused_and_nothing_is_saved(session, change, field, message):
    product = make_product(session, code="REQ")
    before = session.scalar(select(func.count()).select_from(ProductVersion))
    with pytest.raises(InvalidProductTerms) as caught:
        products.edit_product(session, product.id, terms(**change))
    assert caught.value.details["field"] == field and message in caught.value.message
    assert session.scalar(select(func.count()).select_from(ProductVersion)) == before


def test_requirements_are_stored_on_a_new_version_and_unchanged_ones_add_none(session):
    product = make_product(session, code="REQ")
    version = products.edit_product(session, product.id, terms(max_debt_ratio="0.45", allowed_industries=["教育"]))
    assert version.version == 2 and version.max_debt_ratio == Decimal("0.45")
    assert version.allowed_industries == ["教育"] and version.property_required is False
    again = products.edit_product(session, product.id, products.ProductTerms.of(version))
    assert again.id == version.id
