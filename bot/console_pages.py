"""What the bot's own console pages share (channel codes, robots, mass messages, the simulator).

They are served by the bot because they call WeCom synchronously and admin may not import bot;
they render their own templates, link the console's CSS by URL, resolve the console's session
cookie through :func:`crm.auth_service.resolve_session`, check the role, and every form carries
the session's CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader

from core import clock, console_shell
from core.db import unit_of_work
from core.settings import get_settings
from crm import auth_service
from crm.scope import Viewer

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def make_env(time_format: str = "%Y-%m-%d %H:%M") -> Environment:
    env = Environment(loader=FileSystemLoader([Path(__file__).parent / "templates", console_shell.TEMPLATE_DIR]),
                      autoescape=True)
    env.filters["localtime"] = lambda v: clock.ensure_aware(v).astimezone(clock.BUSINESS_TZ).strftime(
        time_format) if v else "—"
    return env


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def staff_user(request: Request, roles: frozenset[str] | set[str], refusal: str) -> dict[str, Any]:
    """The console session's staff as plain values (the transaction is closed before any WeCom call)."""
    token = request.cookies.get(get_settings().session_cookie_name)
    with unit_of_work() as session:
        row = auth_service.resolve_session(session, token)
        if row is None:
            raise Denied(401, "请先登录")
        viewer = Viewer.of(row.staff)
        if viewer.role not in roles:
            raise Denied(403, refusal)
        return {"viewer": viewer, "staff_id": row.staff.id, "csrf": row.csrf_token,
                "name": row.staff.display_name}


def denied_response(exc: Denied) -> Response:
    if exc.status == 401:
        return RedirectResponse("/console/login", status_code=303)
    return HTMLResponse(f"<!doctype html><meta charset=utf-8><p>{exc.message}</p>", status_code=exc.status,
                        headers=SECURITY_HEADERS)
