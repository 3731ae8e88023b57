"""What every console route shares: templates, the logged-in staff member, CSRF and role gates."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin import audit_text, nav
from core import audit, clock
from core.db import unit_of_work
from core.errors import AppError, NotAuthenticated, PermissionDenied
from core.security import constant_time_equals
from core.settings import get_settings
from core.web import SessionDep
from crm import auth_service, permissions, sources
from crm.models import DATA_SCOPE_LABELS, DEPARTMENT_KIND_LABELS, Staff
from crm.permissions import Permission
from crm.scope import Viewer

T = TypeVar("T")

STATUS_LABELS = {"active": "在职", "departed": "已离职"}


class CsrfFailed(AppError):
    code = "csrf_failed"
    status = 403
    message = "页面已过期或请求来源无法验证，请刷新页面后重试"


def _localtime(value: datetime | None) -> str:
    if value is None:
        return "—"
    return clock.ensure_aware(value).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def _pretty_json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)


def _make_templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
    env.filters.update(
        localtime=_localtime, pretty_json=_pretty_json,
        role_label=permissions.role_label, scope_label=lambda v: DATA_SCOPE_LABELS.get(v, v),
        status_label=lambda v: STATUS_LABELS.get(v, v), kind_label=lambda v: DEPARTMENT_KIND_LABELS.get(v, v),
        source_label=sources.label,
    )
    env.filters.update(audit_actor=audit_text.actor_label, audit_action=audit_text.action_label)
    return Jinja2Templates(env=env)


templates = _make_templates()


def compile_templates() -> None:
    """Compile every console template now (a served process's warm-up, ``core.web.warm_up``), not on the first
    request that needs each one."""
    for name in templates.env.list_templates(extensions=["html"]):
        templates.env.get_template(name)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleUser:
    """The logged-in staff member. Templates use ``viewer`` and ``csrf_token`` (plain values that
    stay readable after the request's session has closed, e.g. on an error page)."""

    staff: Staff
    viewer: Viewer
    csrf_token: str


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200) -> Response:
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    ctx: dict[str, Any] = {
        "me": user.viewer if user else None,
        "csrf_token": user.csrf_token if user else "",
        **menu_context(user.viewer.role if user else None, request.url.path),
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def menu_context(role: str | None, path: str) -> dict[str, Any]:
    """What base.html's menu needs: the role's items, grouped, and the one the path belongs to."""
    items = nav.nav_for(role) if role else []
    top, groups = nav.grouped_nav_for(role) if role else ([], [])
    return {"nav": items, "nav_top": top, "nav_groups": groups, "nav_active": nav.active_item(items, path),
            "path": path}


def _load_user(session: Any, token: str | None) -> ConsoleUser | None:
    row = auth_service.resolve_session(session, token)
    if row is None:
        return None
    return ConsoleUser(row.staff, Viewer.of(row.staff), row.csrf_token)


def load_console_user(request: Request) -> ConsoleUser | None:
    """The session cookie's staff member, outside a route (error pages); None when not logged in."""
    with unit_of_work() as session:
        user = _load_user(session, request.cookies.get(get_settings().session_cookie_name))
        if user is not None:
            session.expunge_all()
        return user


async def console_user(request: Request, session: SessionDep) -> ConsoleUser:
    """The staff member of the session cookie; NotAuthenticated (→ login page) otherwise.

    Async on purpose: the audit actor set here must be visible to the (threaded) endpoint.
    """
    token = request.cookies.get(get_settings().session_cookie_name)
    user = await run_in_threadpool(_load_user, session, token)
    if user is None:
        raise NotAuthenticated()
    audit.set_context(audit.Actor("staff", user.viewer.staff_id, user.viewer.display_name, client_ip(request)),
                      getattr(request.state, "request_id", None))
    request.state.console_user = user
    return user


CurrentUser = Annotated[ConsoleUser, Depends(console_user)]


def has_staff_session(request: Request) -> bool:
    """A live console session on the request (for pages outside the console, e.g. the API docs)."""
    token = request.cookies.get(get_settings().session_cookie_name)
    if not token:
        return False
    with unit_of_work() as session:
        return auth_service.resolve_session(session, token) is not None


def current_session_id(request: Request, session: Session) -> int | None:
    """The id of the request's own console session (kept when its user changes a password)."""
    row = auth_service.resolve_session(session, request.cookies.get(get_settings().session_cookie_name))
    return row.id if row is not None else None


async def verify_csrf(request: Request, user: CurrentUser) -> None:
    """Every logged-in form posts the session's CSRF token in the hidden field ``csrf_token``."""
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not sent or not constant_time_equals(sent, user.csrf_token):
        raise CsrfFailed()


CsrfChecked = Depends(verify_csrf)


async def _form_fields(request: Request) -> dict[str, str]:
    """Every text field of the posted form (for forms whose field names are data: custom fields, 资质)."""
    form = await request.form()
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


FormFields = Annotated[dict[str, str], Depends(_form_fields)]


def require_roles(roles: Iterable[str]) -> Callable[[ConsoleUser], ConsoleUser]:
    allowed = roles if isinstance(roles, Permission) else frozenset(str(r) for r in roles)

    def check(user: CurrentUser) -> ConsoleUser:
        if user.viewer.role not in allowed:
            label = permissions.role_label(user.viewer.role)
            raise PermissionDenied(f"您的角色（{label}）无权访问此页面，如需开通请联系系统管理员")
        return user

    return check


def parse_int(value: str | None, *, default: int | None = None) -> int | None:
    if value is None or not str(value).strip():
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def attempt(session: Session, action: Callable[[], T]) -> tuple[T | None, AppError | None]:
    """Run a service call in a savepoint: a refusal to show on the form undoes everything it did.

    Not-found and out-of-scope refusals are not form errors; they propagate to the error page.
    """
    try:
        with session.begin_nested():
            return action(), None
    except AppError as exc:
        if exc.status == 404:
            raise
        return None, exc
