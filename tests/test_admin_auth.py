"""Console login, its throttling (no lockout), logout and session cookies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import clock
from core.audit import AuditLog
from core.settings import get_settings
from core.web import create_app
from crm import auth_service
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


@pytest.fixture
def waits(monkeypatch):
    """The progressive delays the login asked for (recorded instead of slept)."""
    from admin.console import auth as console_auth

    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(console_auth, "_wait", record)
    return asked


def from_ip(ip: str) -> TestClient:
    return TestClient(create_app(start_tasks=False), follow_redirects=False, client=(ip, 50000))


def _same_answer(response) -> tuple[int, str]:
    match = re.search(r'class="error"[^>]*>([^<]+)<', response.text) or re.search(r"用户名或密码错误", response.text)
    return response.status_code, match.group(0) if match else ""


def test_unknown_name_wrong_password_and_an_attacked_account_get_the_same_answer(session, staff, waits):
    client = console_client()
    for _ in range(get_settings().login_max_failures + 2):  # alice is now under attack
        form_login(client, "alice", "wrong-password1")
    answers = {_same_answer(form_login(client, name, "wrong-password1")) for name in ("alice", "nobody")}
    for _ in range(get_settings().login_max_failures + 2):
        form_login(client, "ghost", "wrong-password1")
    answers.add(_same_answer(form_login(client, "ghost", "wrong-password1")))
    assert len(answers) == 1 and answers.pop()[0] == 401


def test_failures_never_lock_the_account_the_right_password_still_gets_in(session, staff, waits):
    for n in range(get_settings().login_max_failures * 3):  # an outsider from many addresses
        assert form_login(from_ip(f"203.0.113.{n}"), "alice", "wrong-password1").status_code == 401
    fresh_ip = from_ip("198.51.100.7")  # the real alice, elsewhere
    response = form_login(fresh_ip, "alice", PASSWORD)
    assert response.status_code == 303 and COOKIE in response.cookies
    session.refresh(staff)
    assert staff.locked_until is None


def test_attempts_after_the_failure_budget_wait_longer_each_time_from_any_ip(session, staff, waits):
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    max_failures = get_settings().login_max_failures
    for n in range(max_failures + 3):
        form_login(from_ip(f"203.0.113.{n}"), "alice", "wrong-password1")
    # No wait for the first max_failures attempts, then 1, 2, 4, 8 seconds.
    assert waits == [1.0, 2.0, 4.0]
    assert form_login(from_ip("198.51.100.7"), "alice", PASSWORD).status_code == 303
    assert waits[-1] == 8.0
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "auth.login").order_by(AuditLog.id.desc()))
    assert entry.detail == "delayed=8s"


def test_the_delay_is_capped_and_ends_when_the_failures_slide_out_of_the_window(session, staff, waits):
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    for _ in range(get_settings().login_max_failures + 12):
        clock.advance(timedelta(seconds=1))
        form_login(console_client(), "alice", "wrong-password1")
    assert max(waits) == get_settings().login_max_delay_seconds
    waits.clear()
    clock.advance(timedelta(minutes=31))
    assert form_login(console_client(), "alice", PASSWORD).status_code == 303
    assert waits == []


def test_one_ip_is_refused_after_its_sliding_window_of_attempts_whatever_the_names(session, staff, waits):
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    client = console_client()
    limit = auth_service.IP_LIMIT[0]
    codes = [form_login(client, f"name{n}", "wrong-password1").status_code for n in range(limit)]
    assert set(codes) == {401}
    refused = form_login(client, "alice", PASSWORD)  # even the right password, from this IP, for now
    assert refused.status_code == 429 and "登录失败次数过多" in refused.text and COOKIE not in refused.cookies
    assert audit_count(session, "auth.login_throttled") == 1
    clock.advance(timedelta(minutes=21))
    assert form_login(client, "alice", PASSWORD).status_code == 303


def test_successful_logins_from_one_office_ip_are_not_throttled(session, org_of_many, waits):
    office = from_ip("198.51.100.20")
    for staff in org_of_many:
        response = form_login(office, staff.username, PASSWORD)
        assert response.status_code == 303, staff.username
        office.cookies.clear()


@pytest.fixture
def org_of_many(session):
    return [make_staff(session, username=f"colleague{n}") for n in range(auth_service.IP_LIMIT[0] + 5)]


def test_failures_are_audited_with_the_ip_and_the_count(session, staff, waits):
    for _ in range(3):
        form_login(console_client(), "alice", "wrong-password1")
    form_login(console_client(), "nobody", "wrong-password1")
    entries = list(session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")))
    assert len(entries) == 4 and all(e.ip == "testclient" for e in entries)
    assert "recent failures=3" in entries[2].detail and entries[3].actor_id is None


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
