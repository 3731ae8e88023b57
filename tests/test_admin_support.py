"""Helpers shared by the console and staff API tests (no tests here)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.settings import get_settings
from core.web import create_app
from crm import auth_service
from crm.models import Staff

_HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_client() -> TestClient:
    return TestClient(create_app(start_tasks=False), follow_redirects=False)


def log_in(client: TestClient, session: Session, staff: Staff) -> str:
    """Open a console session for ``staff`` on ``client``; returns the session's CSRF token."""
    token, row = auth_service.open_session(session, staff)
    client.cookies.set(get_settings().session_cookie_name, token)
    return row.csrf_token


def login_csrf(client: TestClient) -> str:
    """GET the login page (which sets the CSRF cookie) and return the form's signed token."""
    page = client.get("/console/login")
    match = _HIDDEN_CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def form_login(client: TestClient, username: str, password: str) -> object:
    return client.post("/console/login", data={"username": username, "password": password,
                                               "csrf_token": login_csrf(client)})


def audit_count(session: Session, action: str | None = None) -> int:
    stmt = select(func.count()).select_from(AuditLog)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return session.scalar(stmt) or 0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
