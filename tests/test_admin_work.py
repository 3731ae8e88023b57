"""Work pages and the work API: follow-up form with CSRF, reminders, visits actions, rules editor, scope."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core import clock
from crm import followups, visits
from crm.models import AutomationRule, FollowUp, Visit
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import bearer, console_client, log_in
from tests.work_support import NOW, count, viewer


def _token(session, staff) -> str:
    from crm import auth_service

    token, _ = auth_service.issue_api_token(session, staff.id, "测试")
    return token


def test_the_followup_form_logs_and_returns_to_the_customer_page(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    csrf = log_in(client, session, sales)
    response = client.post(f"/console/work/customers/{c.id}/followups",
                           data={"csrf_token": csrf, "kind": "call", "content": "约了周五", "outcome": "已预约",
                                 "next_followup_at": "", "next": f"/console/customers/{c.id}"})
    assert response.status_code == 303 and response.headers["location"].startswith(f"/console/customers/{c.id}?")
    assert count(session, FollowUp, FollowUp.customer_id == c.id) == 1


def test_the_followup_form_without_csrf_is_refused(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    log_in(client, session, sales)
    response = client.post(f"/console/work/customers/{c.id}/followups", data={"kind": "call", "content": "x"})
    assert response.status_code == 403
    assert count(session, FollowUp) == 0


def test_an_invalid_followup_shows_the_chinese_error(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    csrf = log_in(client, session, sales)
    response = client.post(f"/console/work/customers/{c.id}/followups",
                           data={"csrf_token": csrf, "kind": "call", "content": " "})
    assert response.status_code == 422 and "请填写跟进内容" in response.text


def test_another_salespersons_customer_page_is_not_found(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=other)
    client = console_client()
    csrf = log_in(client, session, sales)
    assert client.get(f"/console/work/customers/{c.id}").status_code == 404
    response = client.post(f"/console/work/customers/{c.id}/followups",
                           data={"csrf_token": csrf, "kind": "call", "content": "越权"})
    assert response.status_code == 404 and count(session, FollowUp) == 0


def test_my_day_lists_overdue_items(session):
    clock.freeze(NOW)
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    followups.create_task(session, viewer(sales), title="补充流水材料", due_at=NOW - timedelta(days=1))
    client = console_client()
    log_in(client, session, sales)
    page = client.get("/console/work/today").text
    assert "补充流水材料" in page and "已逾期" in page


def test_visit_actions_from_the_list(session):
    clock.freeze(NOW)
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales, name="周九")
    v = visits.schedule_visit(session, c.id, NOW + timedelta(hours=2), department_id=org["branch"].id,
                              viewer=viewer(sales))
    client = console_client()
    csrf = log_in(client, session, sales)
    assert "周九" in client.get("/console/work/visits").text
    response = client.post(f"/console/work/visits/{v.id}/cancel", data={"csrf_token": csrf, "reason": ""})
    assert response.status_code == 422 and "请填写取消原因" in response.text
    response = client.post(f"/console/work/visits/{v.id}/arrived", data={"csrf_token": csrf})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Visit, v.id).status == "arrived"


def test_scheduling_an_overlapping_visit_in_the_console_is_refused(session):
    clock.freeze(NOW)
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    csrf = log_in(client, session, sales)
    form = {"csrf_token": csrf, "scheduled_at": "2026-03-11T15:00", "department_id": str(org["branch"].id)}
    assert client.post(f"/console/work/customers/{c.id}/visits", data=form).status_code == 303
    form["scheduled_at"] = "2026-03-11T15:30"
    response = client.post(f"/console/work/customers/{c.id}/visits", data=form)
    assert response.status_code == 409 and "已有预约" in response.text
    assert count(session, Visit) == 1


def test_a_manager_creates_a_rule_and_sales_may_not_open_the_editor(session):
    org = make_org(session)
    manager = make_staff(session, role="manager", department=org["company"])
    sales = make_staff(session, department=org["team_a"])
    client = console_client()
    csrf = log_in(client, session, manager)
    response = client.post("/console/work/rules", data={
        "csrf_token": csrf, "name": "A 类两小时回访", "trigger": "grade_changed", "cond_grade": "A",
        "action_type": "create_task", "title": "回访 {name}", "due_hours": "2"})
    assert response.status_code == 303
    rule = session.scalar(select(AutomationRule))
    assert rule.conditions == [{"field": "grade", "op": "eq", "value": "A"}]
    other = console_client()
    log_in(other, session, sales)
    assert other.get("/console/work/rules").status_code == 403


def test_api_logs_a_followup_and_lists_reminders(session):
    clock.freeze(NOW)
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    headers = bearer(_token(session, sales))
    nxt = (NOW + timedelta(hours=3)).isoformat()
    response = client.post(f"/api/v1/customers/{c.id}/followups", headers=headers,
                           json={"kind": "wechat", "content": "发了产品资料", "next_followup_at": nxt})
    assert response.status_code == 201, response.text
    body = client.get("/api/v1/reminders", headers=headers).json()
    assert [i["item_id"] for i in body["due_today"]] == [c.id] and body["overdue"] == []


def test_api_refuses_another_salespersons_customer_with_404(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_b"])
    c = make_customer(session, owner=other)
    client = console_client()
    response = client.post(f"/api/v1/customers/{c.id}/followups", headers=bearer(_token(session, sales)),
                           json={"kind": "call", "content": "越权"})
    assert response.status_code == 404 and response.json()["code"] == "customer_not_found"


def test_api_double_booking_is_a_409(session):
    clock.freeze(NOW)
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    headers = bearer(_token(session, sales))
    body = {"customer_id": c.id, "scheduled_at": (NOW + timedelta(days=1)).isoformat(),
            "department_id": org["branch"].id}
    assert client.post("/api/v1/visits", headers=headers, json=body).status_code == 201
    response = client.post("/api/v1/visits", headers=headers, json=body)
    assert response.status_code == 409 and response.json()["code"] == "visit_double_booked"


def test_the_work_api_is_in_the_openapi_document(session):
    paths = console_client().get("/api/openapi.json").json()["paths"]
    assert {"/api/v1/customers/{customer_id}/followups", "/api/v1/reminders", "/api/v1/visits",
            "/api/v1/visits/{visit_id}/cancel"} <= set(paths)


def test_the_customer_360_page_carries_the_followup_partial(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    csrf = log_in(client, session, sales)
    page = client.get(f"/console/customers/{c.id}").text
    assert f'action="/console/work/customers/{c.id}/followups"' in page and csrf in page


def test_adding_a_co_handler_from_the_customer_work_page(session):
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    helper = make_staff(session, department=org["team_b"], display_name="协作小王")
    c = make_customer(session, owner=sales)
    client = console_client()
    csrf = log_in(client, session, sales)
    assert "协作人" in client.get(f"/console/work/customers/{c.id}").text
    response = client.post(f"/console/work/customers/{c.id}/collaborators",
                           data={"csrf_token": csrf, "staff_id": str(helper.id), "role": "谈单"})
    assert response.status_code == 303
    assert "协作小王" in client.get(f"/console/work/customers/{c.id}").text


def test_api_owner_adds_a_cohandler_who_then_sees_the_customer_and_may_leave(session):
    org = make_org(session)
    owner = make_staff(session, department=org["team_a"])
    helper = make_staff(session, department=org["team_b"], display_name="二组协作")
    c = make_customer(session, owner=owner)
    client = console_client()
    as_owner, as_helper = bearer(_token(session, owner)), bearer(_token(session, helper))
    assert client.get(f"/api/v1/customers/{c.id}", headers=as_helper).status_code == 404
    added = client.post(f"/api/v1/customers/{c.id}/collaborators", headers=as_owner,
                        json={"staff_id": helper.id, "role": "谈单协作"})
    assert added.status_code == 201 and added.json()["display_name"] == "二组协作"
    again = client.post(f"/api/v1/customers/{c.id}/collaborators", headers=as_owner, json={"staff_id": helper.id})
    assert again.status_code == 409 and again.json()["code"] == "collaborator_exists"
    assert client.get(f"/api/v1/customers/{c.id}", headers=as_helper).status_code == 200
    listed = client.get(f"/api/v1/customers/{c.id}/collaborators", headers=as_helper).json()
    assert [(r["staff_id"], r["role"]) for r in listed] == [(helper.id, "谈单协作")]
    assert client.delete(f"/api/v1/customers/{c.id}/collaborators/{helper.id}", headers=as_helper).status_code == 204
    assert client.get(f"/api/v1/customers/{c.id}", headers=as_helper).status_code == 404


def test_api_a_cohandler_may_not_add_others(session):
    org = make_org(session)
    owner = make_staff(session, department=org["team_a"])
    helper, third = make_staff(session, department=org["team_b"]), make_staff(session, department=org["team_b"])
    c = make_customer(session, owner=owner)
    followups.add_collaborator(session, viewer(owner), c.id, helper.id)
    response = console_client().post(f"/api/v1/customers/{c.id}/collaborators",
                                     headers=bearer(_token(session, helper)), json={"staff_id": third.id})
    assert response.status_code == 403 and response.json()["code"] == "work_forbidden"


def test_the_visit_form_defaults_to_the_salespersons_branch(session):
    import re

    from crm import org_service
    from tests.factories import make_department

    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    other_branch = make_department(session, "杭州分部", "branch", org["center"])
    c = make_customer(session, owner=sales)
    client = console_client()
    log_in(client, session, sales)
    page = client.get(f"/console/work/customers/{c.id}").text
    selected = re.search(r'<select name="department_id">.*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="(\d+)" selected>', selected) == [str(org["branch"].id)]
    assert org_service.branch_of(session, org["team_a"].id).id == org["branch"].id
    assert org_service.branch_of(session, other_branch.id).id == other_branch.id
    assert org_service.branch_of(session, org["company"].id) is None


def test_my_tasks_name_the_customer_not_its_number(session):
    from crm import followups

    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales, name="钱多多")
    followups.create_task(session, viewer(sales), title="回电", customer_id=c.id, due_at=None)
    client = console_client()
    log_in(client, session, sales)
    page = client.get("/console/work/today").text
    assert f'<a href="/console/customers/{c.id}">钱多多</a>' in page and f"#{c.id}</a>" not in page


def test_a_task_picks_its_customer_by_the_phones_last_four_digits(session):
    from crm.models import WorkTask

    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales, name="孙小美", phone="13912345678")
    make_customer(session, owner=sales, name="周大力", phone="13900001111")
    client = console_client()
    csrf = log_in(client, session, sales)
    choices = client.get("/console/customers/pick", params={"q": "5678"}).text
    assert f'value="{c.id}"' in choices and "孙小美" in choices and "周大力" not in choices
    assert "没有找到" in client.get("/console/customers/pick", params={"q": "0000"}).text
    response = client.post("/console/work/tasks", data={"csrf_token": csrf, "title": "回电", "customer_q": "5678"})
    assert response.status_code == 303
    assert session.scalar(select(WorkTask.customer_id).where(WorkTask.title == "回电")) == c.id
    refused = client.post("/console/work/tasks", data={"csrf_token": csrf, "title": "再回电", "customer_q": "0000"})
    assert refused.status_code == 422 and "没有找到客户" in refused.text


def test_the_360_books_a_visit_at_the_salespersons_branch_and_shows_a_refusal_on_the_360(session):
    clock.freeze(NOW)
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    client = console_client()
    csrf = log_in(client, session, sales)
    page = client.get(f"/console/customers/{c.id}").text
    assert f'action="/console/work/customers/{c.id}/visits"' in page and "预约上门" in page
    assert f'<option value="{org["branch"].id}" selected>' in page
    form = {"csrf_token": csrf, "scheduled_at": "2026-03-11T15:00", "department_id": str(org["branch"].id),
            "next": f"/console/customers/{c.id}"}
    response = client.post(f"/console/work/customers/{c.id}/visits", data=form)
    assert response.status_code == 303 and response.headers["location"] == f"/console/customers/{c.id}?done=visit"
    form["scheduled_at"] = "2026-03-11T15:30"
    again = client.post(f"/console/work/customers/{c.id}/visits", data=form)
    assert again.status_code == 409 and "已有预约" in again.text and "客户 360" in again.text
    assert count(session, Visit) == 1


def test_the_360_tag_editor_adds_and_takes_off_tags(session):
    from crm import tags
    from tests.work_support import viewer as as_viewer

    org = make_org(session)
    manager = make_staff(session, role="manager", department=org["company"], data_scope="all")
    sales = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_a"])
    c = make_customer(session, owner=sales)
    group = tags.create_group(session, as_viewer(manager), "意向程度")
    high, low = (tags.create_tag(session, as_viewer(manager), group.id, n) for n in ("高意向", "低意向"))
    tags.tag_customer(session, as_viewer(manager), c.id, [low.id])
    client = console_client()
    csrf = log_in(client, session, sales)
    assert "编辑标签" in client.get(f"/console/customers/{c.id}").text
    response = client.post(f"/console/customers/{c.id}/tags", data={"csrf_token": csrf, "tag_ids": [str(high.id)]})
    assert response.status_code == 303
    session.expire_all()
    assert [t.name for t in tags.tags_of(session, c.id)] == ["高意向"]
    stranger = console_client()
    csrf = log_in(stranger, session, other)
    assert stranger.post(f"/console/customers/{c.id}/tags", data={"csrf_token": csrf}).status_code == 404
    assert [t.name for t in tags.tags_of(session, c.id)] == ["高意向"]
