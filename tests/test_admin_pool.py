"""Console pool pages and the pools JSON API: masked phones, CSRF, role gates, claim, release, rules."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm import auth_service, customers, pool_service
from crm.models import AllocationRule, Customer, CustomerStatus, Pool, PoolSetting, RecycleRule
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import bearer, console_client, log_in


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"], display_name="销售甲")


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"], display_name="经理")


def client_for(session, staff):
    client = console_client()
    return client, log_in(client, session, staff)


def test_pool_list_shows_masked_phones_only(session, sales):
    make_customer(session, phone="13912345678", name="公海客户")
    client, _ = client_for(session, sales)
    page = client.get("/console/pool").text
    assert "公海客户" in page and "139****5678" in page
    assert "13912345678" not in page


def test_claim_button_moves_the_customer_to_the_claimer(session, sales):
    c = make_customer(session)
    client, csrf = client_for(session, sales)
    response = client.post(f"/console/pool/customers/{c.id}/claim", data={"csrf_token": csrf, "pool_id": c.pool_id})
    assert response.status_code == 303
    session.refresh(c)
    assert c.owner_id == sales.id


def test_claim_without_csrf_is_refused_and_changes_nothing(session, sales):
    c = make_customer(session)
    client, _ = client_for(session, sales)
    response = client.post(f"/console/pool/customers/{c.id}/claim", data={})
    assert response.status_code == 403
    session.refresh(c)
    assert c.status == CustomerStatus.POOL


def test_bulk_claim_shows_why_some_were_not_claimed(session, sales, manager):
    ids = [make_customer(session).id for _ in range(2)]
    pool_id = session.get(Customer, ids[0]).pool_id
    pool_service.update_settings(session, Viewer.of(manager), pool_id, {
        "daily_claim_cap": 1, "cooldown_days": 7, "protection_days": 3})
    client, csrf = client_for(session, sales)
    page = client.post("/console/pool/claim", data={"csrf_token": csrf, "customer_ids": [str(i) for i in ids]}).text
    assert "成功领取 1 位客户" in page and "今日领取已达上限" in page


def test_release_from_the_customer_page_returns_it_to_the_pool(session, sales):
    c = make_customer(session, owner=sales)
    client, csrf = client_for(session, sales)
    response = client.post(f"/console/pool/customers/{c.id}/release", data={"csrf_token": csrf, "reason": "无需求"})
    assert response.status_code == 303 and response.headers["location"] == f"/console/customers/{c.id}?done=released"
    session.refresh(c)
    assert c.status == CustomerStatus.POOL and c.previous_owner_id == sales.id


def test_release_without_reason_is_refused(session, sales):
    c = make_customer(session, owner=sales)
    client, csrf = client_for(session, sales)
    response = client.post(f"/console/pool/customers/{c.id}/release", data={"csrf_token": csrf, "reason": ""})
    assert response.status_code == 422 and "请填写释放原因" in response.text
    session.refresh(c)
    assert c.owner_id == sales.id


def test_salesperson_cannot_open_pool_settings(session, sales):
    client, _ = client_for(session, sales)
    assert client.get("/console/pool/settings").status_code == 403


def test_manager_saves_pool_settings(session, manager):
    pool = customers.default_pool(session)
    client, csrf = client_for(session, manager)
    response = client.post(f"/console/pool/{pool.id}/settings", data={
        "csrf_token": csrf, "daily_claim_cap": "5", "cooldown_days": "3", "protection_days": "2",
        "check_private_cap": "on"})
    assert response.status_code == 303
    assert session.get(PoolSetting, pool.id).daily_claim_cap == 5


def test_manager_creates_a_recycle_rule_and_the_page_lists_it(session, manager):
    client, csrf = client_for(session, manager)
    response = client.post("/console/pool/recycle-rules", data={
        "csrf_token": csrf, "name": "三天未跟进", "combinator": "or", "no_followup_days": "3",
        "stages": ["lost"], "warn_hours": "12", "active": "on"})
    assert response.status_code == 303
    rule = session.scalars(select(RecycleRule)).one()
    assert (rule.combinator, rule.no_followup_days, rule.stages, rule.warn_hours) == ("or", 3, "lost", 12)
    assert "三天未跟进" in client.get("/console/pool/settings").text


def test_recycle_rule_without_conditions_shows_the_error(session, manager):
    client, csrf = client_for(session, manager)
    response = client.post("/console/pool/recycle-rules", data={"csrf_token": csrf, "name": "空规则",
                                                                "warn_hours": "24"})
    assert response.status_code == 422 and "请至少设置一个回收条件" in response.text
    assert session.scalars(select(RecycleRule)).first() is None


def test_manager_saves_an_allocation_rule(session, manager, sales):
    client, csrf = client_for(session, manager)
    response = client.post("/console/pool/allocation-rules", data={
        "csrf_token": csrf, "name": "抖音轮流", "mode": "round_robin", "source_pattern": "douyin*",
        "member_ids": [str(sales.id)], "priority": "10", "active": "on"})
    assert response.status_code == 303
    assert session.scalars(select(AllocationRule.name)).one() == "抖音轮流"
    assert "抖音轮流" in client.get("/console/pool/allocation").text


def test_manager_allocates_selected_customers_to_a_person(session, manager, sales):
    c = make_customer(session)
    client, csrf = client_for(session, manager)
    page = client.post("/console/pool/allocate", data={"csrf_token": csrf, "customer_ids": [str(c.id)],
                                                      "to_staff_id": str(sales.id)}).text
    assert "已分配 1 位客户" in page
    session.refresh(c)
    assert c.owner_id == sales.id


def test_the_staff_pickers_offer_only_the_staff_who_take_customers(session, org, manager, sales):
    make_customer(session)
    make_staff(session, role="risk", department=org["branch"], display_name="风控乙")
    make_staff(session, role="collector", department=org["branch"], display_name="催收丙")
    client, _ = client_for(session, manager)
    pool_id = session.scalar(select(Pool.id))
    for page in (client.get(f"/console/pool?pool_id={pool_id}").text, client.get("/console/pool/allocation").text):
        assert "销售甲" in page and "风控乙" not in page and "催收丙" not in page


# --- JSON API --------------------------------------------------------------------------------------

def token_for(session, staff):
    return bearer(auth_service.issue_api_token(session, staff.id, "测试")[0])


def test_api_lists_visible_pools_and_their_customers(session, sales):
    c = make_customer(session, phone="13912345678")
    client = console_client()
    headers = token_for(session, sales)
    pools = client.get("/api/v1/pools", headers=headers).json()
    default = next(p for p in pools if p["is_default"])
    assert default["waiting"] == 1
    page = client.get(f"/api/v1/pools/{default['id']}/customers", headers=headers).json()
    assert [i["id"] for i in page["items"]] == [c.id] and page["items"][0]["phone_masked"] == "139****5678"
    assert "13912345678" not in str(page)


def test_api_claim_then_second_claim_is_a_conflict(session, sales, org):
    other = make_staff(session, department=org["team_a"])
    c = make_customer(session)
    client = console_client()
    first = client.post(f"/api/v1/customers/{c.id}/claim", headers=token_for(session, sales))
    assert first.status_code == 200 and first.json()["owner_id"] == sales.id
    second = client.post(f"/api/v1/customers/{c.id}/claim", headers=token_for(session, other))
    assert second.status_code == 409 and second.json()["code"] == "claim_lost"


def test_api_release_needs_a_reason_and_then_releases(session, sales):
    c = make_customer(session, owner=sales)
    client = console_client()
    headers = token_for(session, sales)
    assert client.post(f"/api/v1/customers/{c.id}/release", headers=headers, json={}).status_code == 422
    response = client.post(f"/api/v1/customers/{c.id}/release", headers=headers, json={"reason": "无需求"})
    assert response.status_code == 200 and response.json()["status"] == "pool"


def test_pool_endpoints_are_documented_in_openapi():
    paths = console_client().get("/api/openapi.json").json()["paths"]
    assert {"/api/v1/pools", "/api/v1/pools/{pool_id}/customers", "/api/v1/customers/{customer_id}/claim",
            "/api/v1/customers/{customer_id}/release"} <= set(paths)


def test_api_manager_allocates_pool_customers_to_one_salesperson(session, sales, manager):
    a, b = make_customer(session), make_customer(session)
    client = console_client()
    response = client.post("/api/v1/pools/allocate", headers=token_for(session, manager),
                           json={"customer_ids": [a.id, b.id], "to_staff_id": sales.id})
    assert response.status_code == 200, response.text
    assert response.json()["allocated"] == 2
    session.refresh(a), session.refresh(b)
    assert (a.owner_id, b.owner_id, a.status) == (sales.id, sales.id, CustomerStatus.OWNED)


def test_api_allocation_is_for_managers_only(session, sales, org):
    c = make_customer(session)
    other = make_staff(session, department=org["team_a"])
    response = console_client().post("/api/v1/pools/allocate", headers=token_for(session, sales),
                                     json={"customer_ids": [c.id], "to_staff_id": other.id})
    assert response.status_code == 403
    session.refresh(c)
    assert c.status == CustomerStatus.POOL


def test_api_allocation_to_someone_outside_the_managers_scope_is_refused(session, manager, org):
    outsider = make_staff(session, department=make_org(session)["team_a"])
    c = make_customer(session)
    response = console_client().post("/api/v1/pools/allocate", headers=token_for(session, manager),
                                     json={"customer_ids": [c.id], "to_staff_id": outsider.id})
    assert response.status_code == 404 and response.json()["code"] == "staff_not_found"
    session.refresh(c)
    assert c.status == CustomerStatus.POOL


def test_api_manager_moves_a_waiting_customer_to_another_pool(session, manager, org, sales):
    target = pool_service.create_pool(session, Viewer.of(manager), "二号公海", org["branch"].id)
    c = make_customer(session)
    client = console_client()
    refused = client.post(f"/api/v1/customers/{c.id}/move", headers=token_for(session, sales),
                          json={"pool_id": target.id})
    assert refused.status_code == 403
    response = client.post(f"/api/v1/customers/{c.id}/move", headers=token_for(session, manager),
                           json={"pool_id": target.id, "reason": "按产品线整理"})
    assert response.status_code == 200 and response.json()["pool_id"] == target.id


def test_pool_management_endpoints_are_documented_in_openapi():
    paths = console_client().get("/api/openapi.json").json()["paths"]
    assert {"/api/v1/pools/allocate", "/api/v1/customers/{customer_id}/move"} <= set(paths)
