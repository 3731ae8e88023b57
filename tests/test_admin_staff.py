"""Console staff pages: data scope, role gating, create, edit, depart."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm import auth_service
from crm.models import Staff, StaffSession
from tests.factories import make_org, make_staff
from tests.test_admin_support import audit_count, console_client, log_in


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def admin(session, org):
    return make_staff(session, role="admin", department=org["company"], username="root", display_name="管理员")


def _client_for(session, staff):
    client = console_client()
    csrf = log_in(client, session, staff)
    return client, csrf


def test_staff_list_shows_the_masked_mobile_only(session, org, admin):
    make_staff(session, department=org["team_a"], display_name="手机员工", mobile="13800138001")
    client, _ = _client_for(session, admin)
    page = client.get("/console/staff").text
    assert "138****8001" in page
    assert "13800138001" not in page


def test_supervisor_sees_only_their_department_subtree_in_the_list(session, org):
    supervisor = make_staff(session, role="supervisor", department=org["team_a"], display_name="一组主管")
    make_staff(session, department=org["team_a"], display_name="一组销售")
    make_staff(session, department=org["team_b"], display_name="二组销售")
    client, _ = _client_for(session, supervisor)
    page = client.get("/console/staff").text
    assert "一组销售" in page and "一组主管" in page
    assert "二组销售" not in page


def test_staff_list_filters_by_role_and_search(session, org, admin):
    make_staff(session, role="risk", department=org["company"], display_name="风控甲")
    make_staff(session, role="sales", department=org["team_a"], display_name="销售乙")
    client, _ = _client_for(session, admin)
    by_role = client.get("/console/staff", params={"role": "risk"}).text
    assert "风控甲" in by_role and "销售乙" not in by_role
    by_search = client.get("/console/staff", params={"q": "销售乙"}).text
    assert "销售乙" in by_search and "风控甲" not in by_search


def test_staff_list_filters_by_department_subtree(session, org, admin):
    make_staff(session, department=org["team_a"], display_name="一组的人")
    make_staff(session, department=org["team_b"], display_name="二组的人")
    client, _ = _client_for(session, admin)
    page = client.get("/console/staff", params={"department_id": org["team_b"].id}).text
    assert "二组的人" in page and "一组的人" not in page


def test_staff_list_paginates(session, org, admin):
    for i in range(21):
        make_staff(session, department=org["team_a"], username=f"pager{i:02d}", display_name=f"分页{i:02d}")
    client, _ = _client_for(session, admin)
    first = client.get("/console/staff", params={"q": "分页"}).text
    second = client.get("/console/staff", params={"q": "分页", "page": 2}).text
    assert "分页00" in first and "分页20" not in first and "共 21 条" in first
    assert "分页20" in second and "分页00" not in second


def test_sales_cannot_open_another_staff_members_page(session, org):
    sales = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_a"], display_name="同组同事")
    client, _ = _client_for(session, sales)
    response = client.get(f"/console/staff/{other.id}")
    assert response.status_code == 404
    assert "同组同事" not in response.text
    assert "不在您的数据范围内" in response.text


def test_sales_can_open_their_own_page(session, org):
    sales = make_staff(session, department=org["team_a"], display_name="我自己")
    client, _ = _client_for(session, sales)
    response = client.get(f"/console/staff/{sales.id}")
    assert response.status_code == 200 and "我自己" in response.text


@pytest.mark.parametrize("url", ["/console/staff/new", "/console/audit"])
def test_sales_gets_a_chinese_refusal_on_management_pages(session, org, url):
    sales = make_staff(session, department=org["team_a"])
    client, _ = _client_for(session, sales)
    response = client.get(url)
    assert response.status_code == 403
    assert "您的角色（销售）无权访问此页面" in response.text


def test_navigation_depends_on_the_role(session, org, admin):
    sales = make_staff(session, department=org["team_a"])
    admin_page = _client_for(session, admin)[0].get("/console/").text
    sales_page = _client_for(session, sales)[0].get("/console/").text
    def item(label: str) -> str:  # a menu item's label (admin/templates/_sidebar.html)
        return f'<span class="nav-label">{label}</span></a>'

    for label in ("员工", "部门", "审计日志", "API 令牌"):
        assert item(label) in admin_page
    assert item("审计日志") not in sales_page and item("员工") not in sales_page
    assert item("API 令牌") in sales_page


def test_admin_creates_a_staff_member(session, org, admin):
    client, csrf = _client_for(session, admin)
    response = client.post("/console/staff/new", data={
        "csrf_token": csrf, "username": "newbie", "display_name": "新同事", "role": "sales", "data_scope": "",
        "department_id": str(org["team_b"].id), "wecom_userid": "XinTongShi", "region": "上海", "capacity": "50",
        "level": "2", "mobile": "13900139000", "password": "Onboard-7731"})
    assert response.status_code == 303
    created = session.scalar(select(Staff).where(Staff.username == "newbie"))
    assert response.headers["location"] == f"/console/staff/{created.id}?done=created"
    assert (created.department_id, created.capacity, created.level, created.data_scope) == (org["team_b"].id, 50, 2,
                                                                                            "own")
    assert created.mobile_masked == "139****9000"
    assert auth_service.authenticate(session, "newbie", "Onboard-7731").staff is not None


def test_create_form_with_a_weak_password_shows_the_error_and_creates_nothing(session, org, admin):
    client, csrf = _client_for(session, admin)
    response = client.post("/console/staff/new", data={
        "csrf_token": csrf, "username": "weakling", "display_name": "弱密码", "role": "sales",
        "department_id": str(org["team_b"].id), "capacity": "50", "level": "1", "password": "short"})
    assert response.status_code == 422
    assert "密码至少 10 位" in response.text
    assert 'value="weakling"' in response.text  # the form keeps what was typed
    assert session.scalar(select(Staff).where(Staff.username == "weakling")) is None


def test_edit_with_an_invalid_field_changes_nothing(session, org, admin):
    target = make_staff(session, department=org["team_a"], username="keepme", display_name="原名")
    client, csrf = _client_for(session, admin)
    response = client.post(f"/console/staff/{target.id}/edit", data={
        "csrf_token": csrf, "username": "keepme", "display_name": "新名字", "role": "sales",
        "department_id": str(org["team_a"].id), "capacity": "10", "level": "1", "password": "weak"})
    assert response.status_code == 422
    session.expire_all()
    assert session.get(Staff, target.id).display_name == "原名"


def test_admin_edits_a_staff_member_and_it_is_audited(session, org, admin):
    target = make_staff(session, department=org["team_a"], username="editme", display_name="旧名")
    client, csrf = _client_for(session, admin)
    response = client.post(f"/console/staff/{target.id}/edit", data={
        "csrf_token": csrf, "username": "editme", "display_name": "新名", "role": "supervisor",
        "data_scope": "department", "department_id": str(org["team_a"].id), "capacity": "10", "level": "1"})
    assert response.status_code == 303
    session.expire_all()
    edited = session.get(Staff, target.id)
    assert (edited.display_name, edited.role) == ("新名", "supervisor")
    assert audit_count(session, "staff.update") == 1


def test_staff_update_audit_entry_names_the_acting_staff(session, org, admin):
    from core.audit import AuditLog

    target = make_staff(session, department=org["team_a"], username="actor-check")
    client, csrf = _client_for(session, admin)
    client.post(f"/console/staff/{target.id}/depart", data={"csrf_token": csrf})
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "staff.depart"))
    assert (entry.actor_kind, entry.actor_id, entry.actor_label) == ("staff", admin.id, "管理员")


def test_mark_departed_ends_the_staff_members_sessions(session, org, admin):
    target = make_staff(session, department=org["team_a"])
    target_client, _ = _client_for(session, target)
    client, csrf = _client_for(session, admin)
    response = client.post(f"/console/staff/{target.id}/depart", data={"csrf_token": csrf})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Staff, target.id).status == "departed"
    assert session.scalar(select(StaffSession).where(StaffSession.staff_id == target.id)).revoked_at is not None
    assert target_client.get("/console/").status_code == 303


def test_manager_cannot_depart_staff_outside_their_subtree(session, org):
    manager = make_staff(session, role="manager", department=org["team_a"])
    outsider = make_staff(session, department=org["team_b"])
    client, csrf = _client_for(session, manager)
    assert client.post(f"/console/staff/{outsider.id}/depart", data={"csrf_token": csrf}).status_code == 404
    session.expire_all()
    assert session.get(Staff, outsider.id).status == "active"


def test_manager_cannot_grant_the_admin_role(session, org):
    manager = make_staff(session, role="manager", department=org["branch"])
    client, csrf = _client_for(session, manager)
    response = client.post("/console/staff/new", data={
        "csrf_token": csrf, "username": "sneaky", "display_name": "越权", "role": "admin",
        "department_id": str(org["team_a"].id), "capacity": "10", "level": "1", "password": "Sneaky1234"})
    assert response.status_code == 403
    assert "只有系统管理员可以授予管理员角色" in response.text
    assert session.scalar(select(Staff).where(Staff.username == "sneaky")) is None


def test_manager_form_does_not_offer_the_admin_role(session, org):
    manager = make_staff(session, role="manager", department=org["branch"])
    client, _ = _client_for(session, manager)
    page = client.get("/console/staff/new").text
    assert 'value="sales"' in page and 'value="admin"' not in page


def test_names_are_html_escaped(session, org, admin):
    make_staff(session, department=org["team_a"], display_name="<script>alert(1)</script>")
    client, _ = _client_for(session, admin)
    page = client.get("/console/staff").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_console_pages_forbid_framing_and_caching(session, admin):
    client, _ = _client_for(session, admin)
    response = client.get("/console/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
