"""The pool setup JSON API (managers): pools, pool settings, recycle rules, allocation rules and a
salesperson's allocation profile. Same services as the console; refusals write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm import allocation, auth_service, customers, pool_service
from crm.models import AllocationMember, AllocationRule, Pool, PoolSetting, RecycleRule, StaffSkill
from crm.scope import Viewer
from tests.factories import make_org, make_staff
from tests.test_admin_support import bearer, console_client
from tests.work_support import count


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"], display_name="销售甲")


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["branch"], display_name="经理")


@pytest.fixture
def client():
    return console_client()


def token_for(session, staff):
    return bearer(auth_service.issue_api_token(session, staff.id, "测试")[0])


def _pool(session, manager, name="二号公海", department=None):
    return pool_service.create_pool(session, Viewer.of(manager), name, department.id if department else None)


# --- pools -----------------------------------------------------------------------------------------

def test_manager_creates_a_pool_and_then_sees_it_listed(session, client, manager, org):
    headers = token_for(session, manager)
    response = client.post("/api/v1/pools", headers=headers, json={"name": "浦东公海", "department_id": org["branch"].id})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["department_id"], body["is_default"], body["waiting"]) == (
        "浦东公海", org["branch"].id, False, 0)
    assert session.get(Pool, body["id"]).name == "浦东公海"
    assert body["id"] in [p["id"] for p in client.get("/api/v1/pools", headers=headers).json()]


def test_salesperson_may_not_create_a_pool(session, client, sales):
    response = client.post("/api/v1/pools", headers=token_for(session, sales), json={"name": "自建公海"})
    assert response.status_code == 403
    assert count(session, Pool, Pool.name == "自建公海") == 0


def test_duplicate_or_empty_pool_name_is_refused_and_nothing_written(session, client, manager):
    _pool(session, manager, "二号公海")
    before = count(session, Pool)
    headers = token_for(session, manager)
    dup = client.post("/api/v1/pools", headers=headers, json={"name": "二号公海"})
    assert dup.status_code == 422 and dup.json()["message"] == "已有同名公海"
    empty = client.post("/api/v1/pools", headers=headers, json={"name": "  "})
    assert empty.status_code == 422 and "公海名称不能为空" in empty.json()["message"]
    assert count(session, Pool) == before


def test_pool_for_a_department_outside_the_managers_scope_is_refused(session, client, manager):
    elsewhere = make_org(session)["branch"]
    response = client.post("/api/v1/pools", headers=token_for(session, manager),
                           json={"name": "别处公海", "department_id": elsewhere.id})
    assert response.status_code == 404 and response.json()["code"] == "department_not_found"
    assert count(session, Pool, Pool.name == "别处公海") == 0


# --- pool settings ---------------------------------------------------------------------------------

def test_manager_reads_the_defaults_then_changes_one_setting(session, client, manager, org):
    pool = _pool(session, manager, department=org["branch"])
    headers = token_for(session, manager)
    defaults = client.get(f"/api/v1/pools/{pool.id}/settings", headers=headers).json()
    assert defaults == {"pool_id": pool.id, "daily_claim_cap": 20, "cooldown_days": 7, "protection_days": 3,
                        "check_private_cap": True, "saved": False}
    response = client.patch(f"/api/v1/pools/{pool.id}/settings", headers=headers,
                            json={"daily_claim_cap": 5, "check_private_cap": False})
    assert response.status_code == 200, response.text
    assert response.json() == {"pool_id": pool.id, "daily_claim_cap": 5, "cooldown_days": 7, "protection_days": 3,
                               "check_private_cap": False, "saved": True}
    row = session.get(PoolSetting, pool.id)
    assert (row.daily_claim_cap, row.cooldown_days, row.check_private_cap) == (5, 7, False)


def test_salesperson_may_neither_read_nor_change_pool_settings(session, client, sales):
    pool_id = customers.default_pool(session).id
    headers = token_for(session, sales)
    assert client.get(f"/api/v1/pools/{pool_id}/settings", headers=headers).status_code == 403
    response = client.patch(f"/api/v1/pools/{pool_id}/settings", headers=headers, json={"daily_claim_cap": 999})
    assert response.status_code == 403
    assert session.get(PoolSetting, pool_id) is None


def test_out_of_range_setting_is_refused_and_leaves_the_saved_settings_alone(session, client, manager, org):
    pool = _pool(session, manager, department=org["branch"])
    pool_service.update_settings(session, Viewer.of(manager), pool.id, {
        "daily_claim_cap": 10, "cooldown_days": 5, "protection_days": 2, "check_private_cap": True})
    headers = token_for(session, manager)
    response = client.patch(f"/api/v1/pools/{pool.id}/settings", headers=headers,
                            json={"cooldown_days": 1, "daily_claim_cap": 5000})
    assert response.status_code == 422
    assert response.json()["message"] == "每日领取上限必须是 0–1000 之间的整数"
    assert response.json()["details"]["field"] == "daily_claim_cap"
    nulled = client.patch(f"/api/v1/pools/{pool.id}/settings", headers=headers, json={"cooldown_days": None})
    assert nulled.status_code == 422 and nulled.json()["details"]["field"] == "cooldown_days"
    session.expire_all()
    row = session.get(PoolSetting, pool.id)
    assert (row.daily_claim_cap, row.cooldown_days, row.protection_days) == (10, 5, 2)


def test_settings_of_a_pool_outside_the_managers_scope_are_not_found(session, client, manager):
    other_org = make_org(session)
    admin = make_staff(session, role="admin", department=other_org["company"])
    foreign = _pool(session, admin, "外地公海", other_org["branch"])
    headers = token_for(session, manager)
    assert client.get(f"/api/v1/pools/{foreign.id}/settings", headers=headers).status_code == 404
    response = client.patch(f"/api/v1/pools/{foreign.id}/settings", headers=headers, json={"daily_claim_cap": 1})
    assert response.status_code == 404
    assert session.get(PoolSetting, foreign.id) is None


# --- recycle rules ---------------------------------------------------------------------------------

def test_manager_creates_an_or_recycle_rule_and_changes_it_to_and(session, client, manager, org):
    headers = token_for(session, manager)
    response = client.post("/api/v1/recycle-rules", headers=headers, json={
        "name": "久未跟进或低等级", "combinator": "or", "no_followup_days": 7, "grades": ["C", "D"],
        "department_id": org["branch"].id, "warn_hours": 12})
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["combinator"], created["no_followup_days"], created["grades"], created["warn_hours"],
            created["active"]) == ("or", 7, ["C", "D"], 12, True)
    rule = session.get(RecycleRule, created["id"])
    assert (rule.combinator, rule.grades) == ("or", "C,D")
    assert [r["id"] for r in client.get("/api/v1/recycle-rules", headers=headers).json()] == [rule.id]

    changed = client.patch(f"/api/v1/recycle-rules/{rule.id}", headers=headers,
                           json={"combinator": "and", "no_followup_days": None, "stages": ["new"]})
    assert changed.status_code == 200, changed.text
    session.expire_all()
    rule = session.get(RecycleRule, created["id"])
    assert (rule.combinator, rule.no_followup_days, rule.grades, rule.stages, rule.warn_hours,
            rule.department_id) == ("and", None, "C,D", "new", 12, org["branch"].id)


def test_salesperson_may_not_list_create_or_change_recycle_rules(session, client, manager, sales):
    rule = pool_service.save_recycle_rule(session, Viewer.of(manager),
                                          pool_service.RecycleRuleInput(name="七天", no_followup_days=7))
    headers = token_for(session, sales)
    assert client.get("/api/v1/recycle-rules", headers=headers).status_code == 403
    assert client.post("/api/v1/recycle-rules", headers=headers,
                       json={"name": "一天", "no_followup_days": 1}).status_code == 403
    assert client.patch(f"/api/v1/recycle-rules/{rule.id}", headers=headers,
                        json={"no_followup_days": 1}).status_code == 403
    session.expire_all()
    assert count(session, RecycleRule) == 1 and session.get(RecycleRule, rule.id).no_followup_days == 7


def test_invalid_recycle_rules_are_refused_and_nothing_written(session, client, manager):
    headers = token_for(session, manager)
    no_condition = client.post("/api/v1/recycle-rules", headers=headers, json={"name": "空规则"})
    assert no_condition.status_code == 422
    assert no_condition.json() == {"code": "invalid_pool_rule", "message": "请至少设置一个回收条件",
                                   "details": {"field": "conditions"}}
    xor = client.post("/api/v1/recycle-rules", headers=headers,
                      json={"name": "异或", "combinator": "xor", "no_followup_days": 3})
    assert xor.status_code == 422 and xor.json()["details"]["field"] == "combinator"
    assert count(session, RecycleRule) == 0


def test_invalid_change_of_a_recycle_rule_leaves_it_unchanged(session, client, manager):
    rule = pool_service.save_recycle_rule(session, Viewer.of(manager),
                                          pool_service.RecycleRuleInput(name="七天", no_followup_days=7))
    headers = token_for(session, manager)
    response = client.patch(f"/api/v1/recycle-rules/{rule.id}", headers=headers,
                            json={"name": "改名", "grades": ["Z"]})
    assert response.status_code == 422 and response.json()["message"] == "未知的客户等级：Z"
    missing = client.patch("/api/v1/recycle-rules/999999", headers=headers, json={"name": "无"})
    assert missing.status_code == 404 and missing.json()["code"] == "recycle_rule_not_found"
    session.expire_all()
    assert (session.get(RecycleRule, rule.id).name, session.get(RecycleRule, rule.id).grades) == ("七天", None)


# --- allocation rules ------------------------------------------------------------------------------

def test_manager_creates_an_allocation_rule_and_changes_its_priority(session, client, manager, sales, org):
    pool = _pool(session, manager, department=org["branch"])
    headers = token_for(session, manager)
    response = client.post("/api/v1/allocation-rules", headers=headers, json={
        "name": "二号公海轮流", "mode": "round_robin", "pool_id": pool.id, "member_ids": [sales.id]})
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["mode"], created["pool_id"], created["member_ids"], created["priority"]) == (
        "round_robin", pool.id, [sales.id], 100)
    assert allocation.rule_members(session, created["id"]) == [sales.id]
    assert [r["id"] for r in client.get("/api/v1/allocation-rules", headers=headers).json()] == [created["id"]]

    changed = client.patch(f"/api/v1/allocation-rules/{created['id']}", headers=headers, json={"priority": 5})
    assert changed.status_code == 200, changed.text
    assert changed.json()["member_ids"] == [sales.id]
    session.expire_all()
    rule = session.get(AllocationRule, created["id"])
    assert (rule.priority, rule.mode, rule.pool_id) == (5, "round_robin", pool.id)
    assert allocation.rule_members(session, rule.id) == [sales.id]


def test_salesperson_may_not_list_create_or_change_allocation_rules(session, client, manager, sales):
    rule = allocation.save_rule(session, Viewer.of(manager),
                                allocation.AllocationRuleInput(name="抖音", mode="round_robin", source_pattern="douyin*"))
    headers = token_for(session, sales)
    assert client.get("/api/v1/allocation-rules", headers=headers).status_code == 403
    assert client.post("/api/v1/allocation-rules", headers=headers, json={
        "name": "给我", "mode": "manual", "source_pattern": "*", "target_staff_id": sales.id}).status_code == 403
    assert client.patch(f"/api/v1/allocation-rules/{rule.id}", headers=headers,
                        json={"priority": -1000}).status_code == 403
    session.expire_all()
    assert count(session, AllocationRule) == 1 and session.get(AllocationRule, rule.id).priority == 100


def test_invalid_allocation_rules_are_refused_and_nothing_written(session, client, manager):
    headers = token_for(session, manager)
    manual = client.post("/api/v1/allocation-rules", headers=headers,
                         json={"name": "指定", "mode": "manual", "source_pattern": "web*"})
    assert manual.status_code == 422 and manual.json()["message"] == "指定人员分配需要选择员工"
    nothing = client.post("/api/v1/allocation-rules", headers=headers, json={"name": "无匹配", "mode": "weighted"})
    assert nothing.status_code == 422 and nothing.json()["details"]["field"] == "source_pattern"
    outsider = make_staff(session, department=make_org(session)["team_a"])
    foreign = client.post("/api/v1/allocation-rules", headers=headers, json={
        "name": "外人", "mode": "round_robin", "source_pattern": "*", "member_ids": [outsider.id]})
    assert foreign.status_code == 404 and foreign.json()["code"] == "staff_not_found"
    assert count(session, AllocationRule) == 0 and count(session, AllocationMember) == 0


def test_invalid_change_of_an_allocation_rule_leaves_it_and_its_members_unchanged(session, client, manager, sales):
    rule = allocation.save_rule(session, Viewer.of(manager), allocation.AllocationRuleInput(
        name="抖音", mode="round_robin", source_pattern="douyin*", member_ids=[sales.id]))
    headers = token_for(session, manager)
    response = client.patch(f"/api/v1/allocation-rules/{rule.id}", headers=headers,
                            json={"member_ids": [], "mode": "lottery"})
    assert response.status_code == 422 and response.json()["message"] == "未知的分配方式：lottery"
    missing = client.patch("/api/v1/allocation-rules/999999", headers=headers, json={"priority": 1})
    assert missing.status_code == 404 and missing.json()["code"] == "allocation_rule_not_found"
    session.expire_all()
    assert session.get(AllocationRule, rule.id).mode == "round_robin"
    assert allocation.rule_members(session, rule.id) == [sales.id]


# --- a salesperson's allocation profile --------------------------------------------------------------

def test_manager_reads_and_sets_a_salespersons_skills_and_capacity(session, client, manager, sales):
    headers = token_for(session, manager)
    first = client.get(f"/api/v1/staff/{sales.id}/allocation", headers=headers)
    assert first.status_code == 200, first.text
    assert (first.json()["customer_types"], first.json()["capacity"], first.json()["owned"]) == ([], 200, 0)
    response = client.patch(f"/api/v1/staff/{sales.id}/allocation", headers=headers,
                            json={"customer_types": ["mortgage", "credit"], "capacity": 50})
    assert response.status_code == 200, response.text
    assert (response.json()["customer_types"], response.json()["capacity"], response.json()["level"]) == (
        ["credit", "mortgage"], 50, 1)
    session.expire_all()
    assert sorted(session.scalars(select(StaffSkill.customer_type).where(StaffSkill.staff_id == sales.id))) == [
        "credit", "mortgage"]
    assert session.get(type(sales), sales.id).capacity == 50


def test_salesperson_may_not_read_or_set_allocation_profiles_even_their_own(session, client, sales):
    headers = token_for(session, sales)
    assert client.get(f"/api/v1/staff/{sales.id}/allocation", headers=headers).status_code == 403
    response = client.patch(f"/api/v1/staff/{sales.id}/allocation", headers=headers,
                            json={"capacity": 100000, "customer_types": ["credit"]})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(type(sales), sales.id).capacity == 200
    assert count(session, StaffSkill, StaffSkill.staff_id == sales.id) == 0


def test_invalid_allocation_profile_is_refused_and_nothing_of_it_written(session, client, manager, sales):
    allocation.set_skills(session, Viewer.of(manager), sales.id, ["car"])
    headers = token_for(session, manager)
    bad_type = client.patch(f"/api/v1/staff/{sales.id}/allocation", headers=headers,
                            json={"capacity": 50, "customer_types": ["credit", "yacht"]})
    assert bad_type.status_code == 422 and bad_type.json()["message"] == "未知的客户类型：yacht"
    bad_capacity = client.patch(f"/api/v1/staff/{sales.id}/allocation", headers=headers,
                                json={"capacity": -1, "customer_types": ["credit"]})
    assert bad_capacity.status_code == 422 and bad_capacity.json()["details"]["field"] == "capacity"
    session.expire_all()
    assert session.get(type(sales), sales.id).capacity == 200
    assert list(session.scalars(select(StaffSkill.customer_type).where(StaffSkill.staff_id == sales.id))) == ["car"]


def test_allocation_profile_of_someone_outside_the_managers_scope_is_not_found(session, client, manager):
    outsider = make_staff(session, department=make_org(session)["team_a"])
    headers = token_for(session, manager)
    assert client.get(f"/api/v1/staff/{outsider.id}/allocation", headers=headers).status_code == 404
    response = client.patch(f"/api/v1/staff/{outsider.id}/allocation", headers=headers, json={"capacity": 1})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(type(outsider), outsider.id).capacity == 200


def test_pool_setup_endpoints_are_documented_in_openapi():
    paths = console_client().get("/api/openapi.json").json()["paths"]
    expected = {("/api/v1/pools", "post"), ("/api/v1/pools/{pool_id}/settings", "get"),
                ("/api/v1/pools/{pool_id}/settings", "patch"), ("/api/v1/recycle-rules", "get"),
                ("/api/v1/recycle-rules", "post"), ("/api/v1/recycle-rules/{rule_id}", "patch"),
                ("/api/v1/allocation-rules", "get"), ("/api/v1/allocation-rules", "post"),
                ("/api/v1/allocation-rules/{rule_id}", "patch"), ("/api/v1/staff/{staff_id}/allocation", "get"),
                ("/api/v1/staff/{staff_id}/allocation", "patch")}
    documented = {(p, m) for p, ops in paths.items() for m in ops}
    assert expected <= documented
    assert all(paths[p][m]["summary"] for p, m in expected)


def test_a_wrong_json_type_gets_a_chinese_422_with_a_stable_code_and_changes_nothing(session, client, manager, org):
    pool = _pool(session, manager, department=org["branch"])
    headers = token_for(session, manager)
    response = client.patch(f"/api/v1/pools/{pool.id}/settings", headers=headers,
                            json={"daily_claim_cap": "很多", "cooldown_days": 3})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["details"]["errors"] == [{"field": "daily_claim_cap", "message": "每日领取上限应为整数"}]
    assert body["message"] == "每日领取上限应为整数"
    session.expire_all()
    assert session.get(PoolSetting, pool.id) is None
