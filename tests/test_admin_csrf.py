"""Every console form refuses a missing or wrong CSRF token with a 403 page and changes nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from crm import auth_service
from crm.models import Department, Staff, StaffSession
from tests.factories import PASSWORD, make_org, make_staff
from tests.test_admin_support import audit_count, console_client, log_in


@pytest.fixture
def world(session):
    org = make_org(session)
    admin = make_staff(session, role="admin", department=org["company"], username="root")
    target = make_staff(session, role="sales", department=org["team_a"], username="target")
    _, token = auth_service.issue_api_token(session, admin.id, "同步")
    return {"org": org, "admin": admin, "target": target, "token": token}


def _forms(w):
    """(URL, form fields without csrf_token) of every logged-in console form."""
    t, team = w["target"], w["org"]["team_a"]
    staff_fields = {"username": "changed", "display_name": "改名", "role": "sales",
                    "department_id": str(team.id), "capacity": "10", "level": "1"}
    return {
        "logout": ("/console/logout", {}),
        "staff_create": ("/console/staff/new", {**staff_fields, "password": "Newpass123"}),
        "staff_edit": (f"/console/staff/{t.id}/edit", staff_fields),
        "staff_depart": (f"/console/staff/{t.id}/depart", {}),
        "department_create": ("/console/departments", {"parent_id": str(w["org"]["branch"].id), "name": "三组",
                                                       "kind": "team"}),
        "department_rename": (f"/console/departments/{team.id}/rename", {"name": "新一组"}),
        "token_issue": ("/console/tokens", {"name": "新令牌", "ttl_days": "30"}),
        "token_revoke": (f"/console/tokens/{w['token'].id}/revoke", {}),
    }


def _state(session):
    session.expire_all()
    return (
        audit_count(session),
        session.scalar(select(func.count()).select_from(Staff)),
        session.scalar(select(func.count()).select_from(Department)),
        session.scalar(select(func.count()).select_from(StaffSession).where(StaffSession.revoked_at.is_(None))),
        sorted((s.username, s.display_name, s.status) for s in session.scalars(select(Staff))),
        sorted(d.name for d in session.scalars(select(Department))),
    )


FORM_NAMES = ["logout", "staff_create", "staff_edit", "staff_depart", "department_create", "department_rename",
              "token_issue", "token_revoke"]


@pytest.mark.parametrize("bad_token", [None, "wrong-token"], ids=["missing", "wrong"])
@pytest.mark.parametrize("form", FORM_NAMES)
def test_console_form_without_valid_csrf_is_refused_and_changes_nothing(session, world, form, bad_token):
    client = console_client()
    log_in(client, session, world["admin"])
    url, fields = _forms(world)[form]
    before = _state(session)
    data = dict(fields) if bad_token is None else {**fields, "csrf_token": bad_token}
    response = client.post(url, data=data)
    assert response.status_code == 403
    assert "请刷新页面后重试" in response.text
    assert _state(session) == before


@pytest.mark.parametrize("form", FORM_NAMES)
def test_console_form_with_the_session_csrf_token_is_accepted(session, world, form):
    """The counterpart of the refusal test: the same request with the right token does change state."""
    client = console_client()
    csrf = log_in(client, session, world["admin"])
    url, fields = _forms(world)[form]
    before = _state(session)
    response = client.post(url, data={**fields, "csrf_token": csrf})
    assert response.status_code in (200, 303), response.text
    assert _state(session) != before


def test_csrf_token_of_another_session_is_refused(session, world):
    client = console_client()
    log_in(client, session, world["admin"])
    other_csrf = log_in(console_client(), session, world["target"])
    url, fields = _forms(world)["staff_depart"]
    assert client.post(url, data={**fields, "csrf_token": other_csrf}).status_code == 403


@pytest.mark.parametrize("case", ["missing", "wrong", "unsigned_cookie_value", "no_cookie"])
def test_login_without_valid_csrf_is_refused_and_changes_nothing(session, world, case):
    client = console_client()
    page = client.get("/console/login")
    nonce = client.cookies.get("scrm_login_csrf")
    assert nonce and page.status_code == 200
    data = {"username": "root", "password": PASSWORD}
    if case == "wrong":
        data["csrf_token"] = "wrong.token"
    elif case == "unsigned_cookie_value":
        data["csrf_token"] = nonce
    elif case == "no_cookie":
        data["csrf_token"] = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.cookies.clear()
    before = _state(session)
    response = client.post("/console/login", data=data)
    assert response.status_code == 403
    assert "scrm_session" not in response.cookies
    assert _state(session) == before
