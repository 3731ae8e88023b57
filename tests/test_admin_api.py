"""The staff JSON API: bearer tokens, data scope, role gating, and the console token page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from crm import auth_service
from crm.models import ApiToken, Staff
from tests.factories import make_org, make_staff
from tests.test_admin_support import bearer, console_client, log_in


@pytest.fixture
def org(session):
    return make_org(session)


def _token(session, staff, ttl_days=30):
    return auth_service.issue_api_token(session, staff.id, "测试", ttl_days)[0]


def test_valid_token_reads_me(session, org):
    sales = make_staff(session, department=org["team_a"], username="me-sales", mobile="13800138009")
    response = console_client().get("/api/v1/me", headers=bearer(_token(session, sales)))
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "me-sales" and body["department_name"] == "一组"
    assert body["mobile_masked"] == "138****8009"
    assert "password_hash" not in body and "mobile_enc" not in body


@pytest.mark.parametrize("case", ["missing", "wrong", "revoked", "expired", "departed"])
def test_bad_tokens_get_401_json(session, org, case):
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    staff = make_staff(session, department=org["team_a"])
    token = _token(session, staff, ttl_days=1)
    headers = bearer(token)
    if case == "missing":
        headers = {}
    elif case == "wrong":
        headers = bearer(token[:-4] + "abcd")
    elif case == "revoked":
        row = session.scalar(select(ApiToken).where(ApiToken.staff_id == staff.id))
        auth_service.revoke_api_token(session, row.id, staff.id)
    elif case == "expired":
        clock.advance(timedelta(days=1, seconds=1))
    elif case == "departed":
        from crm import org_service

        org_service.mark_departed(session, staff.id)
    response = console_client().get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_token_is_valid_until_it_expires(session, org):
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    staff = make_staff(session, department=org["team_a"])
    token = _token(session, staff, ttl_days=1)
    clock.advance(timedelta(hours=23))
    assert console_client().get("/api/v1/me", headers=bearer(token)).status_code == 200


def test_staff_list_is_limited_to_the_callers_scope(session, org):
    supervisor = make_staff(session, role="supervisor", department=org["team_a"], username="sup")
    make_staff(session, department=org["team_a"], username="in-team")
    make_staff(session, department=org["team_b"], username="other-team")
    body = console_client().get("/api/v1/staff", headers=bearer(_token(session, supervisor))).json()
    assert {s["username"] for s in body["items"]} == {"sup", "in-team"}
    assert body["total"] == 2


def test_staff_list_filters_and_pages(session, org):
    admin = make_staff(session, role="admin", department=org["company"])
    for i in range(3):
        make_staff(session, role="risk", department=org["company"], username=f"risky{i}")
    client = console_client()
    body = client.get("/api/v1/staff", params={"role": "risk", "page_size": 2, "page": 2},
                      headers=bearer(_token(session, admin))).json()
    assert body["total"] == 3 and [s["username"] for s in body["items"]] == ["risky2"]


def test_staff_outside_scope_is_404(session, org):
    sales = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_a"])
    response = console_client().get(f"/api/v1/staff/{other.id}", headers=bearer(_token(session, sales)))
    assert response.status_code == 404 and response.json()["code"] == "out_of_scope"


def test_staff_in_scope_is_readable(session, org):
    manager = make_staff(session, role="manager", department=org["branch"])
    member = make_staff(session, department=org["team_b"], display_name="组员")
    response = console_client().get(f"/api/v1/staff/{member.id}", headers=bearer(_token(session, manager)))
    assert response.status_code == 200 and response.json()["display_name"] == "组员"


def _new_staff(org, **overrides):
    return {"username": "api-made", "display_name": "接口新建", "role": "sales",
            "department_id": org["team_a"].id, "password": "ApiMade123", **overrides}


def test_sales_may_not_create_staff(session, org):
    sales = make_staff(session, department=org["team_a"])
    response = console_client().post("/api/v1/staff", json=_new_staff(org), headers=bearer(_token(session, sales)))
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert session.scalar(select(Staff).where(Staff.username == "api-made")) is None


def test_manager_creates_staff_in_their_subtree(session, org):
    manager = make_staff(session, role="manager", department=org["branch"])
    response = console_client().post("/api/v1/staff", json=_new_staff(org, mobile="13700137000"),
                                     headers=bearer(_token(session, manager)))
    assert response.status_code == 201
    assert response.json()["mobile_masked"] == "137****7000"
    created = session.scalar(select(Staff).where(Staff.username == "api-made"))
    assert created.department_id == org["team_a"].id


def test_manager_cannot_create_staff_outside_their_subtree(session, org):
    manager = make_staff(session, role="manager", department=org["team_a"])
    response = console_client().post("/api/v1/staff", json=_new_staff(org, department_id=org["team_b"].id),
                                     headers=bearer(_token(session, manager)))
    assert response.status_code == 404
    assert session.scalar(select(Staff).where(Staff.username == "api-made")) is None


def test_creating_a_duplicate_username_is_409(session, org):
    admin = make_staff(session, role="admin", department=org["company"], username="taken")
    response = console_client().post("/api/v1/staff", json=_new_staff(org, username="taken"),
                                     headers=bearer(_token(session, admin)))
    assert response.status_code == 409 and response.json()["code"] == "username_taken"


def test_departments_are_limited_to_the_callers_scope(session, org):
    supervisor = make_staff(session, role="supervisor", department=org["team_b"])
    body = console_client().get("/api/v1/departments", headers=bearer(_token(session, supervisor))).json()
    assert [d["name"] for d in body] == ["二组"]


def test_openapi_documents_the_staff_api(session):
    paths = console_client().get("/api/openapi.json").json()["paths"]
    assert {"/api/v1/me", "/api/v1/staff", "/api/v1/staff/{staff_id}", "/api/v1/departments"} <= set(paths)
    assert not any(p.startswith("/console") for p in paths)


# --- the console page that issues and revokes tokens --------------------------------------------

def test_console_issues_a_token_shown_once_that_works_on_the_api(session, org):
    staff = make_staff(session, department=org["team_a"], username="tokenuser")
    client = console_client()
    csrf = log_in(client, session, staff)
    page = client.post("/console/tokens", data={"csrf_token": csrf, "name": "报表同步", "ttl_days": "30"})
    assert page.status_code == 200 and "仅显示这一次" in page.text
    token = re.search(r'<pre class="token">([^<]+)</pre>', page.text).group(1)
    assert client.get("/api/v1/me", headers=bearer(token)).json()["username"] == "tokenuser"
    listing = client.get("/console/tokens").text
    assert "报表同步" in listing and token not in listing and token[:12] in listing


def test_console_revokes_a_token(session, org):
    staff = make_staff(session, department=org["team_a"])
    token = _token(session, staff)
    row = session.scalar(select(ApiToken).where(ApiToken.staff_id == staff.id))
    client = console_client()
    csrf = log_in(client, session, staff)
    response = client.post(f"/console/tokens/{row.id}/revoke", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_console_cannot_revoke_someone_elses_token(session, org):
    owner = make_staff(session, department=org["team_a"])
    token = _token(session, owner)
    row = session.scalar(select(ApiToken).where(ApiToken.staff_id == owner.id))
    intruder = make_staff(session, role="admin", department=org["company"])
    client = console_client()
    csrf = log_in(client, session, intruder)
    assert client.post(f"/console/tokens/{row.id}/revoke", data={"csrf_token": csrf}).status_code == 404
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
