"""Login, logout and the dashboard (首页)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import company, nav
from admin.console import dashboard_view
from admin.deps import CsrfChecked, CsrfFailed, CurrentUser, client_ip, render
from analytics import dashboard_cache
from core.errors import RateLimited
from core.security import constant_time_equals, new_token, sign, unsign
from core.settings import get_settings
from core.web import SessionDep
from crm import auth_service
from crm.exceptions import LoginRefused

router = APIRouter()

# The login form has no session yet: its CSRF token is a random nonce kept in a cookie, and the
# form carries the same nonce signed (double submit). A forged form cannot read or sign the nonce.
LOGIN_CSRF_COOKIE = "scrm_login_csrf"
LOGIN_CSRF_SALT = "console-login"
LOGIN_CSRF_MAX_AGE = 2 * 60 * 60


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


def _login_page(request: Request, *, error: str | None = None, username: str = "", next_url: str = "",
                status_code: int = 200) -> Response:
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token(16)
    response = render(request, "login.html", {
        "error": error, "username": username, "next_url": _safe_next(next_url),
        "login_csrf": sign(nonce, LOGIN_CSRF_SALT),
    }, status_code=status_code)
    settings = get_settings()
    response.set_cookie(LOGIN_CSRF_COOKIE, nonce, max_age=LOGIN_CSRF_MAX_AGE, path="/console/login", httponly=True,
                        samesite="lax", secure=settings.cookie_secure)
    return response


@router.get("/login")
def login_form(request: Request, session: SessionDep,
               next_url: Annotated[str, Query(alias="next")] = "") -> Response:
    token = request.cookies.get(get_settings().session_cookie_name)
    if auth_service.resolve_session(session, token) is not None:
        return RedirectResponse(_safe_next(next_url), status_code=303)
    return _login_page(request, next_url=next_url)


async def _wait(seconds: float) -> None:
    """The progressive delay of a username under attack (tests replace it to see the waits asked for)."""
    await asyncio.sleep(seconds)


@router.post("/login")
async def login(request: Request, session: SessionDep, username: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
                next_url: Annotated[str, Form(alias="next")] = "") -> Response:
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    signed = unsign(csrf_token, LOGIN_CSRF_SALT, LOGIN_CSRF_MAX_AGE) if csrf_token else None
    if not nonce or signed is None or not constant_time_equals(signed, nonce):
        raise CsrfFailed()
    ip = client_ip(request)
    # Counted and read in their own units of work, before the request's transaction starts.
    try:
        await run_in_threadpool(auth_service.throttle_ip, ip)
    except RateLimited as exc:
        await run_in_threadpool(auth_service.record_throttled, session, username, ip)
        response = _login_page(request, error=exc.message, username=username, next_url=next_url, status_code=429)
        response.headers["Retry-After"] = str(exc.details.get("retry_after_seconds", 60))
        return response
    delay = await run_in_threadpool(auth_service.login_delay_seconds, username)
    if delay:
        await _wait(delay)  # asleep without holding a thread; the answer is then the same as ever
    result = await run_in_threadpool(auth_service.authenticate, session, username, password, ip, delay)
    if result.staff is None:
        # Returned, not raised: the failure counter and the audit entry are committed.
        error = result.error or LoginRefused()
        return _login_page(request, error=error.message, username=username, next_url=next_url,
                           status_code=error.status)
    token, _ = await run_in_threadpool(auth_service.open_session, session, result.staff, ip,
                                       request.headers.get("user-agent"))
    settings = get_settings()
    response = RedirectResponse(_safe_next(next_url), status_code=303)
    response.set_cookie(settings.session_cookie_name, token, max_age=settings.session_ttl_minutes * 60, path="/",
                        httponly=True, samesite="lax", secure=settings.cookie_secure)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    auth_service.close_session(session, request.cookies.get(get_settings().session_cookie_name))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(get_settings().session_cookie_name, path="/")
    return response


@router.get("/")
def dashboard(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    period, flt = dashboard_view.period_filters(request.query_params.get("period"))
    mode = dashboard_view.funnel_mode(request.query_params.get("funnel_mode"))
    board, computed_at = dashboard_cache.build(session, user.viewer, flt, mode, period=period)  # department / company scope: cached
    steps = company.checklist(session) if user.viewer.role in nav.ROLE_EDITORS else []
    return render(request, "dashboard.html", {
        "onboarding": steps if steps and company.show_checklist(user.staff, steps) else None, "steps": steps,
        "staff": user.staff, "department": user.staff.department, "board": board, "period": period,
        "periods": dashboard_view.PERIODS, "show": dashboard_view.show, "change_text": dashboard_view.change_text,
        "funnel_modes": dashboard_view.FUNNEL_MODES, "duration_text": dashboard_view.duration_text,
        "charts": dashboard_view.chart_payload(board),
        "computed_at": dashboard_view.computed_text(computed_at),
        "cache_seconds": get_settings().dashboard_cache_seconds,
    })
