"""The automation rules JSON API (managers): list, create, change, activate and deactivate; refusals write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import clock
from crm import auth_service, automation, customers
from crm.models import AutomationRule, WorkTask
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import bearer, console_client
from tests.work_support import NOW, count, viewer


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["company"])


@pytest.fixture
def sales(session, org):
    return make_staff(session, department=org["team_a"])


@pytest.fixture
def client():
    return console_client()


def token_for(session, staff):
    return bearer(auth_service.issue_api_token(session, staff.id, "测试")[0])


A_GRADE_TASK = {"name": "A 类两小时回访", "trigger": "grade_changed",
                "conditions": [{"field": "grade", "op": "eq", "value": "A"}],
                "action": {"type": "create_task", "title": "回访 {name}", "due_hours": 2}}


def _rule(session, manager, **overrides):
    fields = {"name": "七天未跟进提醒", "trigger": "no_followup_for", "trigger_value": 7,
              "action": {"type": "notify", "target": "owner", "title": "该跟进了"}, **overrides}
    return automation.create_rule(session, viewer(manager), **fields)


def test_manager_creates_a_rule_that_then_fires(session, client, manager, sales, task_runner):
    clock.freeze(NOW)
    headers = token_for(session, manager)
    response = client.post("/api/v1/automation-rules", headers=headers, json=A_GRADE_TASK)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["trigger"], body["conditions"], body["action"], body["active"], body["created_by"]) == (
        "grade_changed", [{"field": "grade", "op": "eq", "value": "A"}],
        {"type": "create_task", "title": "回访 {name}", "due_hours": 2}, True, manager.id)
    assert body["description"] == automation.describe(session.get(AutomationRule, body["id"]))
    assert [r["id"] for r in client.get("/api/v1/automation-rules", headers=headers).json()] == [body["id"]]

    c = make_customer(session, owner=sales, name="钱七")
    customers.set_grade(session, viewer(sales), c.id, "A")
    session.commit()
    task_runner.drain()
    assert session.scalar(select(WorkTask.title).where(WorkTask.customer_id == c.id)) == "回访 钱七"


def test_manager_changes_only_the_fields_sent(session, client, manager):
    rule = _rule(session, manager)
    response = client.patch(f"/api/v1/automation-rules/{rule.id}", headers=token_for(session, manager),
                            json={"trigger_value": 3, "action": {"type": "set_grade", "grade": "C"}})
    assert response.status_code == 200, response.text
    session.expire_all()
    rule = session.get(AutomationRule, rule.id)
    assert (rule.name, rule.trigger, rule.trigger_value, rule.action) == (
        "七天未跟进提醒", "no_followup_for", 3, {"type": "set_grade", "grade": "C"})


def test_manager_deactivates_and_reactivates_a_rule(session, client, manager):
    rule = _rule(session, manager)
    headers = token_for(session, manager)
    off = client.post(f"/api/v1/automation-rules/{rule.id}/deactivate", headers=headers)
    assert off.status_code == 200 and off.json()["active"] is False
    session.expire_all()
    assert session.get(AutomationRule, rule.id).active is False
    on = client.post(f"/api/v1/automation-rules/{rule.id}/activate", headers=headers)
    assert on.status_code == 200 and on.json()["active"] is True
    session.expire_all()
    assert session.get(AutomationRule, rule.id).active is True


def test_salesperson_may_not_list_create_change_or_toggle_rules(session, client, manager, sales):
    rule = _rule(session, manager)
    headers = token_for(session, sales)
    assert client.get("/api/v1/automation-rules", headers=headers).status_code == 403
    assert client.post("/api/v1/automation-rules", headers=headers, json=A_GRADE_TASK).status_code == 403
    assert client.patch(f"/api/v1/automation-rules/{rule.id}", headers=headers,
                        json={"name": "改掉"}).status_code == 403
    assert client.post(f"/api/v1/automation-rules/{rule.id}/deactivate", headers=headers).status_code == 403
    session.expire_all()
    assert count(session, AutomationRule) == 1
    assert (session.get(AutomationRule, rule.id).name, session.get(AutomationRule, rule.id).active) == (
        "七天未跟进提醒", True)


def test_invalid_rules_are_refused_with_a_chinese_message_and_nothing_written(session, client, manager):
    headers = token_for(session, manager)
    unknown_trigger = client.post("/api/v1/automation-rules", headers=headers, json={**A_GRADE_TASK,
                                                                                     "trigger": "moon_phase"})
    assert unknown_trigger.status_code == 422
    assert unknown_trigger.json() == {"code": "invalid_rule", "message": "未知的触发条件：moon_phase",
                                      "details": {"field": "trigger"}}
    bad_grade = client.post("/api/v1/automation-rules", headers=headers, json={
        **A_GRADE_TASK, "conditions": [{"field": "grade", "op": "eq", "value": "Z"}]})
    assert bad_grade.status_code == 422 and bad_grade.json()["message"] == "条件「等级」的取值不正确：Z"
    no_staff = client.post("/api/v1/automation-rules", headers=headers, json={
        **A_GRADE_TASK, "action": {"type": "notify", "target": "staff", "title": "看看"}})
    assert no_staff.status_code == 422 and no_staff.json()["message"] == "指定的通知员工不存在或已离职"
    assert count(session, AutomationRule) == 0


def test_invalid_change_leaves_the_rule_unchanged(session, client, manager):
    rule = _rule(session, manager)
    headers = token_for(session, manager)
    response = client.patch(f"/api/v1/automation-rules/{rule.id}", headers=headers,
                            json={"name": "改名", "trigger_value": 400})
    assert response.status_code == 422 and response.json()["message"] == "请填写 1–365 天"
    nulled = client.patch(f"/api/v1/automation-rules/{rule.id}", headers=headers, json={"action": None})
    assert nulled.status_code == 422 and nulled.json()["details"]["field"] == "action"
    missing = client.patch("/api/v1/automation-rules/999999", headers=headers, json={"name": "无"})
    assert missing.status_code == 404 and missing.json()["code"] == "rule_not_found"
    assert client.post("/api/v1/automation-rules/999999/activate", headers=headers).status_code == 404
    session.expire_all()
    rule = session.get(AutomationRule, rule.id)
    assert (rule.name, rule.trigger_value) == ("七天未跟进提醒", 7)


def test_automation_rule_endpoints_are_documented_in_openapi():
    paths = console_client().get("/api/openapi.json").json()["paths"]
    expected = {("/api/v1/automation-rules", "get"), ("/api/v1/automation-rules", "post"),
                ("/api/v1/automation-rules/{rule_id}", "patch"),
                ("/api/v1/automation-rules/{rule_id}/activate", "post"),
                ("/api/v1/automation-rules/{rule_id}/deactivate", "post")}
    assert expected <= {(p, m) for p, ops in paths.items() for m in ops}
    assert all(paths[p][m]["summary"] for p, m in expected)
