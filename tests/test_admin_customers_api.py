"""The customer JSON API: scope, intake outcomes, yuan strings, PATCH validation, grade/stage/blacklist,
timeline, the audited reveal, OpenAPI."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm import auth_service
from crm.models import Collision, Customer
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import audit_count, bearer, console_client


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def people(session, org):
    return {
        "supervisor": make_staff(session, role="supervisor", department=org["team_a"], password=None),
        "sales_a": make_staff(session, department=org["team_a"], display_name="一组销售", password=None),
        "sales_b": make_staff(session, department=org["team_b"], display_name="二组销售", password=None),
    }


@pytest.fixture
def api(session):
    client = console_client()

    def call(method, url, staff, **kwargs):
        token = auth_service.issue_api_token(session, staff.id, "测试", 30)[0]
        return client.request(method, url, headers=bearer(token), **kwargs)

    return call


def test_list_is_scoped_and_paginated(session, people, api):
    for i in range(3):
        make_customer(session, owner=people["sales_a"], name=f"甲{i}", demand_amount=150_000_00)
    make_customer(session, owner=people["sales_b"], name="乙")
    body = api("GET", "/api/v1/customers", people["sales_a"], params={"page_size": 2}).json()
    assert body["total"] == 3 and len(body["items"]) == 2
    assert {i["name"] for i in body["items"]} <= {"甲0", "甲1", "甲2"}
    assert body["items"][0]["demand_amount"] == "150000.00"
    assert body["items"][0]["phone_masked"].count("*") == 4
    assert "phone" not in body["items"][0] and "phone_enc" not in body["items"][0]


def test_list_filters_and_searches_by_phone(session, people, api):
    make_customer(session, owner=people["sales_a"], name="目标", phone="13811112222", region="杭州")
    make_customer(session, owner=people["sales_a"], name="其他", region="上海")
    by_phone = api("GET", "/api/v1/customers", people["sales_a"], params={"q": "13811112222"}).json()
    assert [i["name"] for i in by_phone["items"]] == ["目标"]
    by_region = api("GET", "/api/v1/customers", people["sales_a"], params={"region": "杭州"}).json()
    assert [i["name"] for i in by_region["items"]] == ["目标"]


def test_list_refuses_an_unknown_stage(session, people, api):
    response = api("GET", "/api/v1/customers", people["sales_a"], params={"stage": "bogus"})
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"


def test_another_salespersons_customer_is_404(session, people, api):
    theirs = make_customer(session, owner=people["sales_b"])
    for method, url, body in (("GET", "", None), ("PATCH", "", {"name": "x"}), ("POST", "/grade", {"grade": "A"}),
                              ("GET", "/timeline", None), ("POST", "/reveal-phone", {})):
        response = api(method, f"/api/v1/customers/{theirs.id}{url}", people["sales_a"], json=body)
        assert response.status_code == 404, (method, url)
        assert response.json()["code"] == "customer_not_found"
    assert audit_count(session, "pii.reveal") == 0


def test_supervisor_reads_a_customer_of_their_team(session, people, api):
    c = make_customer(session, owner=people["sales_a"])
    assert api("GET", f"/api/v1/customers/{c.id}", people["supervisor"]).status_code == 200


def test_intake_creates_a_customer_owned_by_the_caller(session, people, api):
    response = api("POST", "/api/v1/customers", people["sales_a"], json={
        "name": "接口客户", "phone": "13900001234", "demand_amount": "300000.5", "region": "苏州"})
    assert response.status_code == 201
    body = response.json()
    assert body["outcome"] == "created"
    assert body["customer"]["owner_id"] == people["sales_a"].id
    assert body["customer"]["demand_amount"] == "300000.50"
    assert session.get(Customer, body["customer_id"]).demand_amount == 30_000_050


def test_intake_to_the_pool(session, people, api):
    body = api("POST", "/api/v1/customers", people["sales_a"], json={"phone": "13900001234", "to_pool": True}).json()
    assert body["outcome"] == "created" and session.get(Customer, body["customer_id"]).status == "pool"


def test_intake_of_someone_elses_customer_is_a_collision(session, people, api):
    make_customer(session, owner=people["sales_b"], phone="13900001234")
    response = api("POST", "/api/v1/customers", people["sales_a"], json={"phone": "139 0000 1234"})
    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "collision" and body["customer"] is None
    assert body["owner_name"] is None and body["customer_id"] is None  # outside sales_a's scope
    assert body["message"] == "撞单：该客户已有其他同事跟进，本次录入未改变归属"
    assert session.scalar(select(func.count()).select_from(Collision)) == 1


def test_intake_of_ones_own_customer_merges(session, people, api):
    make_customer(session, owner=people["sales_a"], phone="13900001234")
    body = api("POST", "/api/v1/customers", people["sales_a"], json={"phone": "13900001234", "region": "南京"}).json()
    assert body["outcome"] == "merged" and body["customer"]["region"] == "南京"


@pytest.mark.parametrize("amount", [123.45, "12.345", "-1", "abc", "1e3"])
def test_intake_refuses_bad_amounts_and_creates_nothing(session, people, api, amount):
    response = api("POST", "/api/v1/customers", people["sales_a"],
                   json={"phone": "13900001234", "demand_amount": amount})
    assert response.status_code == 422
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_intake_refuses_a_bad_phone_in_chinese(session, people, api):
    response = api("POST", "/api/v1/customers", people["sales_a"], json={"phone": "12345"})
    assert response.status_code == 422 and "手机号格式不正确" in response.json()["message"]


def test_patch_changes_only_the_fields_sent(session, people, api):
    c = make_customer(session, owner=people["sales_a"], name="原名", region="上海", demand_amount=100_00)
    response = api("PATCH", f"/api/v1/customers/{c.id}", people["sales_a"], json={"demand_amount": "2500.10"})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["region"], body["demand_amount"]) == ("原名", "上海", "2500.10")


@pytest.mark.parametrize("payload, status", [
    ({"demand_amount": 1.5}, 422), ({"demand_amount": "一百"}, 422), ({"customer_type": "spaceship"}, 422),
    ({"demand_term_months": 0}, 422), ({"owner_id": 5}, 422), ({}, 422), ({"phone": "123"}, 422),
])
def test_patch_validation_refuses_and_changes_nothing(session, people, api, payload, status):
    c = make_customer(session, owner=people["sales_a"], name="原名", demand_amount=100_00, customer_type="credit")
    response = api("PATCH", f"/api/v1/customers/{c.id}", people["sales_a"], json=payload)
    assert response.status_code == status
    session.expire_all()
    row = session.get(Customer, c.id)
    assert (row.name, row.demand_amount, row.customer_type) == ("原名", 100_00, "credit")


def test_patch_to_another_customers_phone_is_refused(session, people, api):
    make_customer(session, owner=people["sales_a"], phone="13900000001")
    c = make_customer(session, owner=people["sales_a"], phone="13900000002")
    response = api("PATCH", f"/api/v1/customers/{c.id}", people["sales_a"], json={"phone": "13900000001"})
    assert response.status_code == 422 and "另一位客户" in response.json()["message"]


def test_grade_and_stage(session, people, api):
    c = make_customer(session, owner=people["sales_a"])
    assert api("POST", f"/api/v1/customers/{c.id}/grade", people["sales_a"], json={"grade": "A"}).json()["grade"] == "A"
    body = api("POST", f"/api/v1/customers/{c.id}/stage", people["sales_a"], json={"stage": "intent"}).json()
    assert body["stage"] == "intent" and body["stage_label"] == "有意向"
    bad = api("POST", f"/api/v1/customers/{c.id}/grade", people["sales_a"], json={"grade": "Z"})
    assert bad.status_code == 422 and "未知的客户等级" in bad.json()["message"]


def test_blacklist_is_for_managers_and_needs_a_reason(session, people, api):
    c = make_customer(session, owner=people["sales_a"])
    url = f"/api/v1/customers/{c.id}/blacklist"
    assert api("POST", url, people["sales_a"], json={"reason": "骗贷"}).status_code == 403
    assert api("POST", url, people["supervisor"], json={"reason": ""}).status_code == 422
    response = api("POST", url, people["supervisor"], json={"reason": "骗贷"})
    assert response.status_code == 200 and response.json()["status"] == "blacklist"
    assert audit_count(session, "customer.blacklist") == 1


def test_timeline_lists_events_newest_first(session, people, api):
    c = make_customer(session, owner=people["sales_a"])
    api("POST", f"/api/v1/customers/{c.id}/grade", people["sales_a"], json={"grade": "B"})
    kinds = [e["kind"] for e in api("GET", f"/api/v1/customers/{c.id}/timeline", people["sales_a"]).json()]
    assert kinds == ["grade", "created"]


def test_reveal_phone_returns_it_and_is_audited(session, people, api):
    c = make_customer(session, owner=people["sales_a"], phone="13912345678")
    response = api("POST", f"/api/v1/customers/{c.id}/reveal-phone", people["sales_a"], json={"reason": "回访"})
    assert response.status_code == 200 and response.json()["phone"] == "13912345678"
    assert response.headers["cache-control"] == "no-store"
    assert audit_count(session, "pii.reveal") == 1


def test_openapi_documents_the_customer_endpoints(session):
    paths = console_client().get("/api/openapi.json").json()["paths"]
    for path in ("/api/v1/customers", "/api/v1/customers/{customer_id}", "/api/v1/customers/{customer_id}/grade",
                 "/api/v1/customers/{customer_id}/stage", "/api/v1/customers/{customer_id}/blacklist",
                 "/api/v1/customers/{customer_id}/timeline", "/api/v1/customers/{customer_id}/reveal-phone"):
        assert path in paths, path
    assert "patch" in paths["/api/v1/customers/{customer_id}"]
    assert not any(p.startswith("/console/customers") for p in paths)
