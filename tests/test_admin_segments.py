"""Console pages and JSON API for tags and segments: the builder's preview (scoped, masked), saving,
Chinese refusals, CSRF on every form, role gates, and the documented API."""

import pytest
from sqlalchemy import select

from crm import auth_service, scope, tags
from crm.models import CustomerTag, Segment, Tag, TagGroup
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import bearer, console_client, log_in


@pytest.fixture
def world(session):
    org = make_org(session)
    admin_staff = make_staff(session, role="admin", department=org["company"])
    admin = scope.Viewer.of(admin_staff)
    sales = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_b"])
    group = tags.create_group(session, admin, "意向")
    hot = tags.create_tag(session, admin, group.id, "高意向")
    mine = make_customer(session, name="我的客户", phone="13812345678", owner=sales, region="上海", grade="A")
    theirs = make_customer(session, name="别人的客户", owner=other, region="上海", grade="A")
    tags.tag_customers(session, admin, [mine.id, theirs.id], [hot.id])
    return {"org": org, "admin": admin_staff, "sales": sales, "other": other, "group": group, "hot": hot,
            "mine": mine, "theirs": theirs}


def builder_form(csrf, **extra):
    data = {"csrf_token": csrf, "groups": "1", "top_op": "and", "g0_op": "and",
            "g0_field": ["region", "tags"], "g0_cmp": ["equals", "has_any"], "g0_value": ["上海", "高意向"],
            "action": "preview"}
    data.update(extra)
    return data


def test_the_builder_page_renders_for_a_salesperson(session, world):
    client = console_client()
    log_in(client, session, world["sales"])
    page = client.get("/console/segments/new")
    assert page.status_code == 200 and "新建分群" in page.text and 'name="g0_field"' in page.text


def test_preview_counts_only_the_salespersons_own_customers_with_masked_phones(session, world):
    client = console_client()
    csrf = log_in(client, session, world["sales"])
    page = client.post("/console/segments/build", data=builder_form(csrf))
    assert page.status_code == 200
    assert 'class="preview-total">1<' in page.text
    assert "我的客户" in page.text and "别人的客户" not in page.text
    assert "138****5678" in page.text and "13812345678" not in page.text


def test_preview_for_an_admin_counts_everyone(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    page = client.post("/console/segments/build", data=builder_form(csrf))
    assert 'class="preview-total">2<' in page.text


def test_a_bad_row_is_refused_in_chinese_on_the_page(session, world):
    client = console_client()
    csrf = log_in(client, session, world["sales"])
    page = client.post("/console/segments/build", data=builder_form(
        csrf, g0_field=["demand_amount"], g0_cmp=["between"], g0_value=["很多"]))
    assert page.status_code == 422 and "请按「最低-最高」填写金额" in page.text


def test_a_json_rule_previews_too(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    rule = '{"op": "or", "rules": [{"field": "grade", "cmp": "in", "value": ["A"]}]}'
    page = client.post("/console/segments/build", data={"csrf_token": csrf, "groups": "0", "use_json": "1",
                                                        "rule_json": rule, "action": "preview"})
    assert page.status_code == 200 and 'class="preview-total">2<' in page.text


def test_saving_from_the_builder_creates_the_segment_and_lists_it(session, world):
    client = console_client()
    csrf = log_in(client, session, world["sales"])
    response = client.post("/console/segments/build", data=builder_form(
        csrf, action="save", name="上海高意向", for_mass_message="1"))
    assert response.status_code == 303
    segment = session.scalar(select(Segment).where(Segment.name == "上海高意向"))
    assert segment.for_mass_message and segment.rule["rules"][1] == {
        "field": "tags", "cmp": "has_any", "value": [world["hot"].id]}
    listing = client.get("/console/segments").text
    assert "上海高意向" in listing
    edit = client.get(f"/console/segments/{segment.id}").text
    assert 'value="高意向"' in edit  # tag ids shown back as names


def test_the_builder_refuses_a_post_without_the_csrf_token(session, world):
    client = console_client()
    log_in(client, session, world["sales"])
    response = client.post("/console/segments/build", data=builder_form("", action="save", name="无令牌"))
    assert response.status_code == 403
    assert session.scalar(select(Segment).where(Segment.name == "无令牌")) is None


def test_tag_forms_refuse_a_post_without_the_csrf_token(session, world):
    client = console_client()
    log_in(client, session, world["admin"])
    response = client.post("/console/tags/groups", data={"csrf_token": "forged", "name": "伪造"})
    assert response.status_code == 403
    assert session.scalar(select(TagGroup).where(TagGroup.name == "伪造")) is None


def test_a_manager_adds_a_tag_from_the_library_page(session, world):
    manager = make_staff(session, role="manager", department=world["org"]["branch"])
    client = console_client()
    csrf = log_in(client, session, manager)
    response = client.post(f"/console/tags/groups/{world['group'].id}/tags", data={"csrf_token": csrf, "name": "已加微"})
    assert response.status_code == 303
    assert session.scalar(select(Tag).where(Tag.name == "已加微")) is not None
    assert "已加微" in client.get("/console/tags").text


def test_a_duplicate_tag_shows_the_chinese_refusal(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    response = client.post(f"/console/tags/groups/{world['group'].id}/tags", data={"csrf_token": csrf, "name": "高意向"})
    assert response.status_code == 409 and "已有标签「高意向」" in response.text


def test_a_salesperson_reads_the_library_but_may_not_change_it(session, world):
    client = console_client()
    csrf = log_in(client, session, world["sales"])
    assert client.get("/console/tags").status_code == 200
    response = client.post("/console/tags/groups", data={"csrf_token": csrf, "name": "销售建的"})
    assert response.status_code == 403


def test_a_grade_in_use_is_not_deleted_from_the_console(session, world):
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    response = client.post("/console/tags/grades/A/delete", data={"csrf_token": csrf})
    assert response.status_code == 409 and "仍有客户在使用" in response.text


# --- JSON API -------------------------------------------------------------------------------------

def token(session, staff):
    return auth_service.issue_api_token(session, staff.id, "测试", 30)[0]


def test_api_preview_is_scoped_and_masked(session, world):
    rule = {"op": "and", "rules": [{"field": "tags", "cmp": "has_any", "value": [world["hot"].id]}]}
    response = console_client().post("/api/v1/segments/preview", json={"rule": rule},
                                     headers=bearer(token(session, world["sales"])))
    body = response.json()
    assert response.status_code == 200 and body["total"] == 1
    assert body["members"][0]["phone_masked"] == "138****5678"


def test_api_refuses_an_unknown_operator_with_a_stable_code(session, world):
    rule = {"op": "and", "rules": [{"field": "grade", "cmp": "like", "value": ["A"]}]}
    response = console_client().post("/api/v1/segments/preview", json={"rule": rule},
                                     headers=bearer(token(session, world["sales"])))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_segment_rule" and "不支持比较方式「like」" in response.json()["message"]


def test_api_segment_crud(session, world):
    client, headers = console_client(), bearer(token(session, world["admin"]))
    rule = {"op": "and", "rules": [{"field": "region", "cmp": "equals", "value": "上海"}]}
    created = client.post("/api/v1/segments", json={"name": "上海", "rule": rule}, headers=headers)
    assert created.status_code == 201
    sid = created.json()["id"]
    assert client.get(f"/api/v1/segments/{sid}", headers=headers).json()["member_count"] == 2
    patched = client.patch(f"/api/v1/segments/{sid}", json={"for_group_routing": True}, headers=headers)
    assert patched.json()["for_group_routing"] is True
    assert [s["id"] for s in client.get("/api/v1/segments?purpose=group_routing", headers=headers).json()] == [sid]
    assert client.delete(f"/api/v1/segments/{sid}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/segments/{sid}", headers=headers).status_code == 404


def test_api_bulk_tagging_reports_customers_outside_the_scope(session, world):
    group = world["group"]
    new_tag = tags.create_tag(session, scope.Viewer.of(world["admin"]), group.id, "已加微")
    response = console_client().post("/api/v1/tags/customers", headers=bearer(token(session, world["sales"])),
                                     json={"customer_ids": [world["mine"].id, world["theirs"].id],
                                           "tag_ids": [new_tag.id]})
    assert response.status_code == 200
    assert response.json() == {"changed": 1, "customers": 1, "unchanged": 0, "skipped_ids": [world["theirs"].id]}
    assert session.scalar(select(CustomerTag).where(CustomerTag.tag_id == new_tag.id)).customer_id == world["mine"].id


def test_api_library_lists_groups_tags_and_usage(session, world):
    body = console_client().get("/api/v1/tags", headers=bearer(token(session, world["sales"]))).json()
    assert body[0]["name"] == "意向" and body[0]["tags"][0]["customers"] == 2


def test_the_api_is_documented(session):
    paths = console_client().get("/api/openapi.json").json()["paths"]
    assert {"/api/v1/segments/preview", "/api/v1/segments", "/api/v1/segments/{segment_id}", "/api/v1/tags",
            "/api/v1/tags/customers"} <= set(paths)
    assert "post" in paths["/api/v1/segments/preview"]
