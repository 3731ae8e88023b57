"""The console's 资质要求 on the product form (validated in Chinese, nothing saved on bad input), the
product page's 准入条件, and the Customer 360's 产品匹配 panel with its reasons."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm import qualification
from crm.scope import Viewer
from lending import products
from tests.factories import make_customer, make_org, make_staff
from tests.lending_product_factories import make_funder, make_product
from tests.test_admin_lending_products import product_form
from tests.test_admin_support import console_client, log_in


@pytest.fixture
def world(session):
    org = make_org(session)
    return {"admin": make_staff(session, role="admin", department=org["company"], data_scope="all"),
            "funder": make_funder(session, "乙银行")}


REQUIREMENTS = {"min_social_insurance_months": "12", "min_provident_fund_months": "6", "property_required": "1",
                "car_required": "", "max_debt_ratio": "45", "min_credit_level": "minor",
                "max_credit_overdue_count": "2", "max_credit_queries_6m": "6",
                "allowed_industries": ["制造业", "教育"], "excluded_industries": ["娱乐休闲"]}


def test_the_form_saves_the_requirements_and_the_product_page_shows_them(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    response = client.post("/console/lending/products/new", data=product_form(csrf, world["funder"].id,
                                                                               **REQUIREMENTS))
    assert response.status_code == 303
    _, version = products.list_products(session)[0]
    assert (version.min_social_insurance_months, version.min_provident_fund_months) == (12, 6)
    assert version.property_required is True and version.car_required is False
    assert version.max_debt_ratio == Decimal("0.45") and version.min_credit_level == "minor"
    assert (version.max_credit_overdue_count, version.max_credit_queries_6m) == (2, 6)
    assert version.allowed_industries == ["制造业", "教育"] and version.excluded_industries == ["娱乐休闲"]
    page = client.get(response.headers["location"]).text
    for shown in ("准入条件", "至少 12 个月", "须有房产", "不超过 45%", "不差于「有轻微逾期」", "不超过 2 次",
                  "制造业、教育", "娱乐休闲"):
        assert shown in page
    assert 'name="max_debt_ratio" type="text" value="45"' in page  # the edit form is filled from the version


@pytest.mark.parametrize(("change", "message"), [
    ({"min_social_insurance_months": "十二"}, "最低社保缴纳月数须是整数"),
    ({"min_provident_fund_months": "0"}, "最低公积金缴纳月数须在 1 到 600 之间"),
    ({"max_debt_ratio": "五成"}, "最高负债率格式不正确"),
    ({"max_debt_ratio": "0"}, "最高负债率须大于 0%"),
    ({"max_credit_overdue_count": "-1"}, "最多逾期次数须在 0 到 999 之间"),
    ({"property_required": "yes"}, "房产要求只能是：不限、须有"),
    ({"min_credit_level": "perfect"}, "征信要求只能是"),
    ({"allowed_industries": ["教育"], "excluded_industries": ["教育"]}, "行业不能既准入又限制：教育"),
    ({"excluded_industries": ["赌场"]}, "未知的行业：赌场"),
])
def test_the_form_refuses_bad_requirements_and_saves_nothing(session, world, change, message):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    page = client.post("/console/lending/products/new",
                       data=product_form(csrf, world["funder"].id, **(REQUIREMENTS | change)))
    assert page.status_code in (400, 422)
    assert message in page.text
    assert products.list_products(session) == []


def test_a_bad_edit_adds_no_version(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    page = client.post(f"/console/lending/products/{product.id}/edit",
                       data=product_form(csrf, world["funder"].id, max_debt_ratio="600"))
    assert "不超过 500%" in page.text
    assert [v.version for v in products.versions_of(session, product.id)] == [1]


def test_the_customer_360_shows_matches_missing_facts_and_reasons(session, world):
    customer = make_customer(session, owner=world["admin"], demand_amount=2_000_000, demand_term_months=12)
    make_product(session, code="FREE", name="无门槛贷")
    make_product(session, code="SOC", name="社保贷", min_social_insurance_months=12)
    make_product(session, code="CAR", name="车主贷", car_required=True)
    qualification.update(session, Viewer.of(world["admin"]), customer.id, {"social_insurance_months": "6"})
    client = console_client()
    log_in(client, session, world["admin"])
    page = client.get(f"/console/customers/{customer.id}").text
    panel = page[page.index('id="matching"'):page.index('id="custom-fields"')]
    assert "适合 1 个，需补充资料 1 个，不适合 1 个" in panel
    assert "无门槛贷" in panel
    assert "车主贷" in panel and "待补充：车辆情况（产品要求有车辆）" in panel
    assert "社保贷" in panel and "社保缴纳 6 个月，产品要求至少 12 个月" in panel


def test_the_customer_360_without_a_demand_says_what_to_fill(session, world):
    customer = make_customer(session, owner=world["admin"])
    client = console_client()
    log_in(client, session, world["admin"])
    page = client.get(f"/console/customers/{customer.id}").text
    assert "客户没有填写需求金额" in page[page.index('id="matching"'):]


def test_the_new_application_form_lists_products_needing_information(session, world):
    customer = make_customer(session, owner=world["admin"], demand_amount=2_000_000, demand_term_months=12)
    product = make_product(session, code="SOC", name="社保贷", min_social_insurance_months=12)
    client = console_client()
    log_in(client, session, world["admin"])
    page = client.get(f"/console/lending/applications/new?customer_id={customer.id}").text
    assert "需补充资料" in page and "待补充：社保缴纳月数（要求至少 12 个月）" in page
    assert f'value="{product.current_version_id}"' in page  # still selectable: the review checks the papers


def test_the_risk_test_form_takes_the_new_profile_facts(session, world):
    from tests.test_admin_lending_products import rules_form

    product = make_product(session, funder=world["funder"])
    risk = make_staff(session, role="risk", department=world["admin"].department)
    client = console_client()
    csrf = log_in(client, session, risk)
    data = rules_form(csrf, fact_age="30", fact_income_monthly="8000", fact_credit_overdue_count="4",
                      fact_credit_queries_6m="9", fact_industry="娱乐休闲")
    data["rule_name"][2], data["rule_outcome"][2] = "资质", "reject"
    data["rule_expression"][2] = 'credit_overdue_count > 3 and credit_queries_6m > 6 and industry == "娱乐休闲"'
    data["rule_reason"][2] = "逾期查询多且限制行业"
    page = client.post(f"/console/lending/risk/{product.id}/test", data=data)
    assert page.status_code == 200
    assert "试算结果" in page.text and "逾期查询多且限制行业" in page.text
    assert 'name="fact_industry" value="娱乐休闲"' in page.text
