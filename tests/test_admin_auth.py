"""Console login, lockout, logout and session cookies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.audit import AuditLog
from core.settings import get_settings
from crm.models import StaffSession
from tests.factories import PASSWORD, make_staff
from tests.test_admin_support import audit_count, console_client, form_login, log_in, login_csrf

COOKIE = get_settings().session_cookie_name


@pytest.fixture
def staff(session):
    return make_staff(session, username="alice", display_name="爱丽丝")


def test_login_with_right_password_sets_a_session_cookie_and_lands_on_the_dashboard(session, staff):
    client = console_client()
    response = form_login(client, "alice", PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "爱丽丝" in client.get("/console/").text


def test_login_with_wrong_password_shows_the_error_and_records_the_failure(session, staff):
    response = form_login(console_client(), "alice", "wrong-password1")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert COOKIE not in response.cookies
    session.refresh(staff)
    assert staff.failed_logins == 1
    assert audit_count(session, "auth.login_failed") == 1


def test_login_of_unknown_user_shows_the_same_error(session):
    response = form_login(console_client(), "nobody", "whatever123")
    assert response.status_code == 401 and "用户名或密码错误" in response.text


def test_account_locks_after_max_failures_and_refuses_the_right_password(session, staff):
    client = console_client()
    max_failures = get_settings().login_max_failures
    for _ in range(max_failures - 1):
        assert "用户名或密码错误" in form_login(client, "alice", "wrong-password1").text
    locking = form_login(client, "alice", "wrong-password1")
    assert locking.status_code == 423 and "账号已临时锁定" in locking.text
    refused = form_login(client, "alice", PASSWORD)
    assert refused.status_code == 423 and "账号已临时锁定" in refused.text
    assert COOKIE not in refused.cookies
    assert audit_count(session, "auth.login_failed") == max_failures
    assert audit_count(session, "auth.login_locked") == 1
    assert audit_count(session, "auth.login") == 0


def test_lockout_ends_after_the_lockout_period(session, staff):
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    client = console_client()
    for _ in range(get_settings().login_max_failures):
        form_login(client, "alice", "wrong-password1")
    clock.advance(timedelta(minutes=get_settings().login_lockout_minutes + 1))
    assert form_login(client, "alice", PASSWORD).status_code == 303


def test_successful_login_is_audited_with_the_ip(session, staff):
    form_login(console_client(), "alice", PASSWORD)
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "auth.login"))
    assert entry.actor_id == staff.id and entry.ip == "testclient"


def test_console_page_without_session_redirects_to_login(session):
    response = console_client().get("/console/staff")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/staff"


def test_forged_session_cookie_redirects_to_login(session, staff):
    client = console_client()
    client.cookies.set(COOKIE, "forged-token-value")
    response = client.get("/console/")
    assert response.status_code == 303 and response.headers["location"].startswith("/console/login")


def test_expired_session_redirects_to_login(session, staff):
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    client = console_client()
    log_in(client, session, staff)
    assert client.get("/console/").status_code == 200
    clock.advance(timedelta(minutes=get_settings().session_ttl_minutes + 1))
    response = client.get("/console/")
    assert response.status_code == 303 and response.headers["location"].startswith("/console/login")


def test_logout_revokes_the_session(session, staff):
    client = console_client()
    csrf = log_in(client, session, staff)
    token = client.cookies.get(COOKIE)
    response = client.post("/console/logout", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    row = session.scalar(select(StaffSession).where(StaffSession.staff_id == staff.id))
    session.refresh(row)
    assert row.revoked_at is not None
    client.cookies.set(COOKIE, token)  # replaying the old cookie does not work either
    assert client.get("/console/").status_code == 303


def test_login_redirects_only_inside_the_console(session, staff):
    client = console_client()
    response = client.post("/console/login", data={"username": "alice", "password": PASSWORD,
                                                    "csrf_token": login_csrf(client), "next": "//evil.example/"})
    assert response.headers["location"] == "/console/"


def test_departed_staff_cannot_log_in(session, staff):
    from crm import org_service

    org_service.mark_departed(session, staff.id)
    response = form_login(console_client(), "alice", PASSWORD)
    assert response.status_code == 401 and "用户名或密码错误" in response.text
