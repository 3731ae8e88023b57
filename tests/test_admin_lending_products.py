"""Console pages (产品 / 风控规则) and the JSON API for products, quotes and matching."""

from __future__ import annotations

from datetime import date

import pytest

from admin.nav import nav_for
from crm import auth_service
from lending import products
from lending.risk import rules as rule_sets
from tests.factories import make_customer, make_org, make_staff
from tests.lending_product_factories import id_number, make_funder, make_product
from tests.test_admin_support import bearer, console_client, log_in


@pytest.fixture
def world(session):
    org = make_org(session)
    return {
        "admin": make_staff(session, role="admin", department=org["company"], data_scope="all"),
        "risk": make_staff(session, role="risk", department=org["company"]),
        "sales": make_staff(session, department=org["team_a"]),
        "funder": make_funder(session, "甲银行"),
    }


def product_form(csrf, funder_id, **changes):
    data = {"csrf_token": csrf, "code": "XY12", "name": "信用贷", "funder_id": str(funder_id),
            "min_amount": "10000", "max_amount": "100000", "terms_months": "12, 24",
            "repayment_method": "equal_installment", "annual_rate": "12", "interest_method": "declining",
            "interest_period": "same", "days_in_year": "360", "currency_digits": "2", "rounding": "half_up",
            "installment_multiple_amount": "1", "grace_principal_periods": "0", "grace_interest_periods": "0",
            "penalty_rate": "0.05", "penalty_basis": "daily", "service_fee_rate": "0", "service_fee_amount": "0",
            "service_fee_timing": "per_period", "deposit_rate": "0", "deposit_amount": "0",
            "deposit_refundable": "1", "regions": "广东，上海", "customer_types": ["credit", "business"]}
    data.update(changes)
    return data


def test_nav_shows_products_and_rules_to_risk_staff_only():
    assert {"lending_products", "lending_risk"} <= {i.key for i in nav_for("risk")}
    assert "lending_products" not in {i.key for i in nav_for("sales")}


def test_product_pages_are_refused_to_sales(session, world):
    client = console_client()
    log_in(client, session, world["sales"])
    assert client.get("/console/lending/products").status_code == 403


def test_creating_a_product_from_the_form_converts_yuan_and_percent(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    response = client.post("/console/lending/products/new", data=product_form(csrf, world["funder"].id))
    assert response.status_code == 303
    product, version = products.list_products(session)[0]
    assert (version.min_amount, version.max_amount, version.terms_months) == (1_000_000, 10_000_000, [12, 24])
    assert str(version.annual_rate.normalize()) == "0.12"
    assert str(version.penalty_rate.normalize()) == "0.0005"
    assert version.regions == ["上海", "广东"] and version.customer_types == ["business", "credit"]
    page = client.get(response.headers["location"])
    assert "v1" in page.text and "产品已创建" in page.text


def test_a_version_above_the_cap_is_refused_on_the_form_with_the_reason(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    page = client.post("/console/lending/products/new",
                       data=product_form(csrf, world["funder"].id, annual_rate="30"))
    assert page.status_code == 400
    assert "超过上限 24.00%" in page.text
    assert 'value="30"' in page.text  # the form keeps what was typed
    assert products.list_products(session) == []


def test_the_form_without_csrf_is_refused(session, world):
    client = console_client()
    log_in(client, session, world["admin"])
    form = product_form("", world["funder"].id)
    assert client.post("/console/lending/products/new", data=form).status_code == 403


def test_editing_saves_a_new_version(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    response = client.post(f"/console/lending/products/{product.id}/edit",
                           data=product_form(csrf, world["funder"].id, annual_rate="10", note="降价"))
    assert response.status_code == 303 and "done=version" in response.headers["location"]
    assert [v.version for v in products.versions_of(session, product.id)] == [2, 1]


def test_risk_staff_read_products_but_cannot_edit(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    csrf = log_in(client, session, world["risk"])
    page = client.get(f"/console/lending/products/{product.id}")
    assert page.status_code == 200 and "保存为新版本" not in page.text
    edit = client.post(f"/console/lending/products/{product.id}/edit", data=product_form(csrf, world["funder"].id))
    assert edit.status_code == 403


def test_live_preview_renders_the_schedule_and_apr(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    params = product_form(csrf, world["funder"].id, preview_amount="10000", preview_term="12",
                          preview_start="2026-01-01")
    params.pop("csrf_token")
    page = client.get("/console/lending/products/preview", params=params)
    assert page.status_code == 200
    assert "888.49" in page.text and "888.47" in page.text  # the reference schedule's first and last payment
    assert "12.00%" in page.text
    assert "<html" not in page.text  # a fragment for the form


def test_live_preview_shows_the_cap_refusal(session, world):
    client = console_client()
    log_in(client, session, world["admin"])
    params = product_form("", world["funder"].id, annual_rate="36")
    page = client.get("/console/lending/products/preview", params=params)
    assert "超过上限" in page.text


def test_funders_are_added_from_the_product_page(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    response = client.post("/console/lending/products/funders",
                           data={"csrf_token": csrf, "name": "乙消费金融", "funder_type": "consumer_finance"})
    assert response.status_code == 303
    assert "乙消费金融" in client.get("/console/lending/products").text


# --- risk rules console ----------------------------------------------------------------------------------


def rules_form(csrf, **extra):
    data = {"csrf_token": csrf, "rule_order": ["10", "20", "30"], "rule_name": ["年龄", "黑名单", ""],
            "rule_expression": ["age < 22 or age > 55", "blacklisted", ""],
            "rule_outcome": ["reject", "reject", "reject"], "rule_reason": ["年龄不符", "黑名单客户", ""],
            "credit_limit_expression": "min(income_monthly * 12, 200000_00)"}
    data.update(extra)
    return data


def test_saving_rules_from_the_console_makes_a_version(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    csrf = log_in(client, session, world["risk"])
    response = client.post(f"/console/lending/risk/{product.id}", data=rules_form(csrf))
    assert response.status_code == 303
    version = rule_sets.current_rule_version(session, product.id)
    assert [r["name"] for r in version.rules] == ["年龄", "黑名单"]
    assert "v1" in client.get(f"/console/lending/risk/{product.id}").text


def test_a_bad_expression_is_shown_in_chinese_and_nothing_saved(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    csrf = log_in(client, session, world["risk"])
    page = client.post(f"/console/lending/risk/{product.id}",
                       data=rules_form(csrf, rule_expression=["age.real > 1", "blacklisted", ""]))
    assert page.status_code == 422
    assert "第 1 条规则「年龄」" in page.text and "属性访问" in page.text
    assert rule_sets.current_rule_version(session, product.id) is None


def test_the_test_form_shows_hits_and_outcome_without_saving(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    csrf = log_in(client, session, world["risk"])
    page = client.post(f"/console/lending/risk/{product.id}/test",
                       data=rules_form(csrf, fact_age="60", fact_income_monthly="5000"))
    assert page.status_code == 200
    assert "试算结果" in page.text and "拒绝" in page.text and "年龄不符" in page.text
    assert "¥60,000.00" in page.text or "60000.00" in page.text  # credit limit 12 × 5,000 yuan
    assert rule_sets.current_rule_version(session, product.id) is None


# --- JSON API ---------------------------------------------------------------------------------------------


def api_token(session, staff):
    return auth_service.issue_api_token(session, staff.id, "测试")[0]


def terms_body(**changes):
    body = {"min_amount": 1_000_000, "max_amount": 10_000_000, "terms_months": [12, 24],
            "repayment_method": "equal_installment", "annual_rate": "0.12"}
    body.update(changes)
    return body


def test_api_creates_a_product_and_a_new_version(session, world):
    client = console_client()
    headers = bearer(api_token(session, world["admin"]))
    created = client.post("/api/v1/lending/products", headers=headers,
                          json={"code": "API1", "name": "接口产品", "funder_id": world["funder"].id, "terms": terms_body()})
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    edited = client.post(f"/api/v1/lending/products/{product_id}/versions", headers=headers,
                         json={"terms": terms_body(annual_rate="0.10")})
    assert edited.status_code == 201 and edited.json()["version"] == 2
    versions = client.get(f"/api/v1/lending/products/{product_id}/versions", headers=headers).json()
    assert [(v["version"], v["annual_rate"]) for v in versions] == [(2, "0.10000000"), (1, "0.12000000")]


def test_api_refuses_a_version_above_the_cap_with_the_reason(session, world):
    client = console_client()
    headers = bearer(api_token(session, world["admin"]))
    response = client.post("/api/v1/lending/products", headers=headers,
                           json={"code": "HI", "name": "高", "funder_id": world["funder"].id,
                                 "terms": terms_body(annual_rate="0.30")})
    assert response.status_code == 400
    assert response.json()["code"] == "apr_above_cap" and "超过上限" in response.json()["message"]


def test_api_product_writes_are_for_admins_and_managers(session, world):
    client = console_client()
    headers = bearer(api_token(session, world["sales"]))
    response = client.post("/api/v1/lending/products", headers=headers,
                           json={"code": "S", "name": "s", "funder_id": world["funder"].id, "terms": terms_body()})
    assert response.status_code == 403


def test_api_quote_matches_the_service(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    headers = bearer(api_token(session, world["sales"]))
    body = client.post("/api/v1/lending/quote", headers=headers,
                       json={"version_id": product.current_version_id, "amount": 1_000_000, "term_months": 12,
                             "start_date": "2026-01-01"}).json()
    assert body["monthly_payment"] == 88_849 and body["apr_percent"] == "12.00"
    assert len(body["periods"]) == 12 and body["periods"][-1]["balance"] == 0


def test_api_quote_refuses_an_amount_out_of_range(session, world):
    product = make_product(session, funder=world["funder"])
    client = console_client()
    headers = bearer(api_token(session, world["sales"]))
    response = client.post("/api/v1/lending/quote", headers=headers,
                           json={"version_id": product.current_version_id, "amount": 100, "term_months": 12})
    assert response.status_code == 422 and response.json()["code"] == "amount_out_of_range"


def test_api_match_for_a_customer_in_scope(session, world):
    make_product(session, funder=world["funder"], code="YOUNG", max_age=30)
    make_product(session, funder=world["funder"], code="ANY")
    customer = make_customer(session, owner=world["sales"], id_number=id_number(date(1980, 1, 1)))
    client = console_client()
    headers = bearer(api_token(session, world["sales"]))
    body = client.post("/api/v1/lending/match", headers=headers,
                       json={"amount": 2_000_000, "term_months": 12, "customer_id": customer.id}).json()
    assert [m["product_code"] for m in body["matches"]] == ["ANY"]
    assert "不符合要求" in body["excluded"][0]["reasons"][0]


def test_api_match_refuses_a_customer_outside_the_scope(session, world):
    other = make_staff(session)
    customer = make_customer(session, owner=other)
    client = console_client()
    headers = bearer(api_token(session, world["sales"]))
    response = client.post("/api/v1/lending/match", headers=headers,
                           json={"amount": 2_000_000, "term_months": 12, "customer_id": customer.id})
    assert response.status_code == 404


def test_the_product_list_shows_the_current_version_and_its_highest_apr(session, world):
    make_product(session, funder=world["funder"], code="LIST1", service_fee_rate="0.001")
    client = console_client()
    log_in(client, session, world["risk"])
    page = client.get("/console/lending/products")
    assert "LIST1" in page.text and "甲银行" in page.text and "v1" in page.text
    assert "14." in page.text  # 12% plus 0.1% a month of fees: about 14.2% a year


def test_the_rules_page_lists_stored_evaluations_masked(session, world):
    from lending.risk.credit import FakeCreditProvider
    from lending.risk.evaluate import Applicant, evaluate_applicant

    product = make_product(session, funder=world["funder"])
    number = id_number(date(1990, 6, 15))
    customer = make_customer(session, owner=world["sales"], id_number=number)
    evaluate_applicant(session, product_version_id=product.current_version_id, customer_id=customer.id,
                       applicant=Applicant(amount=2_000_000, term=12), credit_provider=FakeCreditProvider("timeout"))
    client = console_client()
    log_in(client, session, world["risk"])
    page = client.get(f"/console/lending/risk/{product.id}")
    assert "转人工审核" in page.text and "超时" in page.text
    assert customer.id_number_masked in page.text and number not in page.text


def test_api_funders_are_listed_and_created_by_managers(session, world):
    client = console_client()
    admin_headers = bearer(api_token(session, world["admin"]))
    created = client.post("/api/v1/lending/funders", headers=admin_headers,
                          json={"name": "丙担保", "funder_type": "guarantee"})
    assert created.status_code == 201 and created.json()["funder_type"] == "guarantee"
    duplicate = client.post("/api/v1/lending/funders", headers=admin_headers, json={"name": "丙担保"})
    assert duplicate.status_code == 409
    sales_headers = bearer(api_token(session, world["sales"]))
    names = [f["name"] for f in client.get("/api/v1/lending/funders", headers=sales_headers).json()]
    assert set(names) == {"甲银行", "丙担保"}


def test_api_match_uses_the_customers_recorded_demand(session, world):
    make_product(session, funder=world["funder"], code="D12", terms_months=[12])
    make_product(session, funder=world["funder"], code="D24", terms_months=[24])
    customer = make_customer(session, owner=world["sales"], demand_amount=3_000_000, demand_term_months=24)
    client = console_client()
    headers = bearer(api_token(session, world["sales"]))
    body = client.post("/api/v1/lending/match", headers=headers, json={"customer_id": customer.id}).json()
    assert [m["product_code"] for m in body["matches"]] == ["D24"]


def test_api_match_without_amount_or_customer_is_refused(session, world):
    client = console_client()
    headers = bearer(api_token(session, world["sales"]))
    response = client.post("/api/v1/lending/match", headers=headers, json={"term_months": 12})
    assert response.status_code == 422 and "申请金额" in response.json()["message"]
