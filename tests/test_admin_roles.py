"""设置 → 角色权限 and 公司设置 over HTTP: the role editor, a custom role's menu and API refusals, the integration
states without secrets, the onboarding checklist on the admin's home page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.settings import reset_settings_cache
from crm import auth_service, roles
from crm.models import CustomRole, Staff
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import audit_count, bearer, console_client, log_in

PAGE = "/console/settings/roles"


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def admin(session, org):
    return make_staff(session, role="admin", department=org["company"], display_name="管理员")


def _client(session, staff):
    client = console_client()
    return client, log_in(client, session, staff)


def test_admin_creates_a_role_from_a_copied_preset_and_sees_it_listed(session, admin):
    client, csrf = _client(session, admin)
    form = client.get(PAGE, params={"from": "sales"}).text
    assert "销售（自定义）" in form and 'value="tags.use" checked' in form and "复制自内置角色：销售" in form
    response = client.post(PAGE, data={"csrf_token": csrf, "name": "电销专员", "description": "只打电话",
                                       "data_scope": "own", "based_on": "sales",
                                       "permissions": ["customers.own", "customers.import"]})
    assert response.status_code == 303 and response.headers["location"] == f"{PAGE}?done=created"
    row = session.scalar(select(CustomRole).where(CustomRole.name == "电销专员"))
    assert row.permissions == ["customers.import", "customers.own"] and row.based_on == "sales"
    page = client.get(PAGE + "?done=created").text
    assert "电销专员" in page and "批量导入、接待客户" in page and "角色已创建" in page
    assert audit_count(session, "role.create") == 1


def test_a_bad_form_is_refused_with_a_message_and_nothing_saved(session, admin):
    client, csrf = _client(session, admin)
    response = client.post(PAGE, data={"csrf_token": csrf, "name": "空权限", "data_scope": "own"})
    assert response.status_code == 422 and "请至少选择一项权限" in response.text
    assert session.scalar(select(CustomRole.id)) is None


def test_only_admins_open_the_role_editor(session, org, admin):
    manager = make_staff(session, role="manager", department=org["branch"])
    client, _ = _client(session, manager)
    assert client.get(PAGE).status_code == 403


def test_a_role_in_use_shows_no_delete_and_its_delete_is_refused(session, org, admin):
    role = roles.create_role(session, Viewer.of(admin), roles.RoleInput("质检", ["audit.read"], "all"))
    make_staff(session, role=role.key, department=org["company"], display_name="质检员")
    client, csrf = _client(session, admin)
    page = client.get(PAGE).text
    assert f"{PAGE}/{role.id}/delete" not in page and "使用中" in page
    response = client.post(f"{PAGE}/{role.id}/delete", data={"csrf_token": csrf})
    assert response.status_code == 409 and "仍有 1 名员工在使用" in response.text
    assert session.get(CustomRole, role.id) is not None


def test_admin_gives_a_staff_member_the_custom_role_on_the_staff_form(session, org, admin):
    role = roles.create_role(session, Viewer.of(admin), roles.RoleInput("电销专员", ["customers.own"], "own"))
    client, csrf = _client(session, admin)
    assert f'value="{role.key}"' in client.get("/console/staff/new").text
    response = client.post("/console/staff/new", data={
        "csrf_token": csrf, "username": "dianxiao1", "display_name": "电销一号", "role": role.key,
        "department_id": str(org["team_a"].id), "password": "Dianxiao-Demo-2026!", "capacity": "100", "level": "1"})
    assert response.status_code == 303, response.text
    staff = session.scalar(select(Staff).where(Staff.username == "dianxiao1"))
    assert staff.role == role.key and staff.data_scope == "own"
    assert "电销专员" in client.get("/console/staff").text


def test_a_custom_role_without_a_permission_is_refused_and_does_not_see_the_menu_item(session, org, admin):
    role = roles.create_role(session, Viewer.of(admin), roles.RoleInput("导入员", ["customers.import"], "department"))
    holder = make_staff(session, role=role.key, department=org["team_a"], display_name="导入员甲")
    client, _ = _client(session, holder)
    home = client.get("/console/").text
    assert 'href="/console/imports"' in home and "导入员" in home
    assert 'href="/console/staff"' not in home and 'href="/console/audit"' not in home
    assert client.get("/console/imports").status_code == 200
    refused = client.get("/console/staff/new")
    assert refused.status_code == 403 and "导入员" in refused.text
    assert client.get("/console/audit").status_code == 403
    # the staff JSON API, by bearer token: the same permission checks
    token = auth_service.issue_api_token(session, holder.id, "测试", 30)[0]
    api = console_client()
    assert api.get("/api/v1/outbox", headers=bearer(token)).status_code == 403
    assert api.get("/api/v1/me", headers=bearer(token)).status_code == 200


def test_the_same_custom_role_with_the_permission_is_let_in(session, org, admin):
    role = roles.create_role(session, Viewer.of(admin), roles.RoleInput("质检", ["audit.read", "staff.manage"], "all"))
    holder = make_staff(session, role=role.key, department=org["company"])
    client, _ = _client(session, holder)
    home = client.get("/console/").text
    assert 'href="/console/audit"' in home and 'href="/console/staff"' in home
    assert client.get("/console/audit").status_code == 200
    assert client.get("/console/staff/new").status_code == 200


def test_company_page_shows_states_and_never_a_secret(session, admin, monkeypatch):
    monkeypatch.setenv("SCRM_WECOM_CORP_ID", "ww1234567890abcdef")
    monkeypatch.setenv("SCRM_WECOM_SECRET", "super-secret-value-123")
    monkeypatch.setenv("SCRM_WECOM_TOKEN", "tok-secret-xyz")
    monkeypatch.setenv("SCRM_WECOM_AES_KEY", "a" * 43)
    monkeypatch.setenv("SCRM_WECOM_API_BASE", "https://qyapi.weixin.qq.com")
    reset_settings_cache()
    try:
        client, _ = _client(session, admin)
        page = client.get("/console/settings/company").text
    finally:
        monkeypatch.undo()
        reset_settings_cache()
    assert "企业微信" in page and "已连接" in page and "ww12…ef" in page
    assert "微信支付" in page and "模拟器" in page and "外呼" in page and "微信小程序" in page
    for secret in ("super-secret-value-123", "tok-secret-xyz", "a" * 43, "ww1234567890abcdef"):
        assert secret not in page


def test_salespeople_may_not_open_the_company_page(session, org):
    client, _ = _client(session, make_staff(session, role="sales", department=org["team_a"]))
    assert client.get("/console/settings/company").status_code == 403


def test_onboarding_checklist_ticks_from_data_and_can_be_dismissed(session, org, admin):
    client, csrf = _client(session, admin)
    home = client.get("/console/").text
    assert 'id="onboarding"' in home
    assert 'class="done" data-step="departments"' in home and 'class="todo" data-step="staff"' in home
    assert 'class="todo" data-step="import"' in home and 'class="todo" data-step="product"' in home
    assert 'class="todo" data-step="wecom"' in home  # the simulator is not a connection
    make_customer(session, owner=make_staff(session, department=org["team_a"]))
    home = client.get("/console/").text
    assert 'class="done" data-step="import"' in home and 'class="done" data-step="staff"' in home
    response = client.post("/console/settings/company/onboarding/dismiss", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert 'id="onboarding"' not in client.get("/console/").text
    assert "开通向导已关闭" in client.get("/console/settings/company").text


def test_other_roles_do_not_get_the_checklist(session, org):
    manager = make_staff(session, role="manager", department=org["branch"])
    client, _ = _client(session, manager)
    assert 'id="onboarding"' not in client.get("/console/").text


def test_pool_allocation_picker_offers_only_staff_who_take_customers(session, org, admin):
    make_customer(session)  # a pool with a customer shows the allocate controls
    taker = roles.create_role(session, Viewer.of(admin), roles.RoleInput("电销", ["customers.own"], "own"))
    make_staff(session, role="sales", department=org["team_a"], display_name="销售甲")
    make_staff(session, role=taker.key, department=org["team_a"], display_name="电销乙")
    make_staff(session, role="risk", department=org["company"], display_name="风控丙")
    make_staff(session, role="collector", department=org["company"], display_name="催收丁")
    client, _ = _client(session, admin)
    page = client.get("/console/pool").text
    picker = page.split('name="to_staff_id"', 1)[1].split("</select>", 1)[0]
    assert "销售甲" in picker and "电销乙" in picker
    assert "风控丙" not in picker and "催收丁" not in picker and "管理员" not in picker


def test_the_staff_api_names_a_custom_role(session, org, admin):
    role = roles.create_role(session, Viewer.of(admin), roles.RoleInput("电销专员", ["customers.own"], "own"))
    holder = make_staff(session, role=role.key, department=org["team_a"])
    token = auth_service.issue_api_token(session, holder.id, "测试", 30)[0]
    body = console_client().get("/api/v1/me", headers=bearer(token)).json()
    assert body["role"] == role.key and body["role_label"] == "电销专员"
