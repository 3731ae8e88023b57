"""The agency portal (委外机构工作台, /agency): where an outsourcing agency's people work the cases handed to
their agency, and nothing else.

Agency users are not staff: they log in here with their own accounts (``postloan.agency.service``), and
carry a signed cookie of their own (``scrm_agency``, 8 hours) that the console does not accept. Every
page shows masked data only (name, phone), lists only the agency's active cases, and answers 404 for any
other case (recalled ones included); every list, view, refusal and action is written to the audit log, and
so is every login, failed ones included.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin.deps import client_ip, render
from core import security
from core.db import unit_of_work
from core.errors import AppError, RateLimited
from core.settings import get_settings
from core.web import SessionDep
from crm import auth_service
from postloan.agency import service
from postloan.exceptions import CaseNotFound
from postloan.models import ACTION_KIND_LABELS

router = APIRouter(prefix="/agency", include_in_schema=False)
COOKIE = "scrm_agency"
SALT, CSRF_SALT = "agency-portal", "agency-portal-csrf"
MAX_AGE = 8 * 3600


def _who(request: Request, session: SessionDep) -> service.PortalUser | None:
    raw = request.cookies.get(COOKIE)
    user_id = security.unsign(raw, SALT, MAX_AGE) if raw else None
    if not user_id or not user_id.isdigit():
        return None
    return service.portal_user(session, int(user_id), client_ip(request))


def _csrf(who: service.PortalUser) -> str:
    return security.sign(str(who.id), CSRF_SALT)


def _csrf_ok(who: service.PortalUser, token: str) -> bool:
    return security.unsign(token or "", CSRF_SALT, MAX_AGE) == str(who.id)


def _page(request: Request, name: str, context: dict, status_code: int = 200) -> Response:
    response = render(request, name, {"agency_portal": True, **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_redirect() -> Response:
    return RedirectResponse("/agency/login", status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    return _page(request, "agency/login.html", {"error": None})


async def _wait(seconds: float) -> None:
    """The progressive delay of a username under attack (tests replace it to see the waits asked for)."""
    await asyncio.sleep(seconds)


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "") -> Response:
    """Throttled as the console's login is (crm.auth_service, realm "agency"): too many failures from one client
    → 429 before any password is checked; a username under attack waits 1, 2, 4 … s, never locked out."""
    ip = client_ip(request)
    try:
        await run_in_threadpool(auth_service.throttle_ip, ip, service.LOGIN_REALM)
    except RateLimited as exc:
        response = _page(request, "agency/login.html", {"error": exc.message}, status_code=429)
        response.headers["Retry-After"] = str(exc.details.get("retry_after_seconds", 60))
        return response
    delay = await run_in_threadpool(auth_service.login_delay_seconds, username, service.LOGIN_REALM)
    if delay:
        await _wait(delay)
    user = await run_in_threadpool(_authenticate, username, password, ip)
    if user is None:
        return _page(request, "agency/login.html", {"error": "登录名或密码不正确，或账号已停用"}, status_code=401)
    response = RedirectResponse("/agency/", status_code=303)
    response.set_cookie(COOKIE, security.sign(str(user), SALT), max_age=MAX_AGE, httponly=True, samesite="lax",
                        secure=get_settings().cookie_secure, path="/agency")
    return response


def _authenticate(username: str, password: str, ip: str | None) -> int | None:
    with unit_of_work() as session:  # committed before the answer: the login time or the failure, and its count
        user = service.authenticate(session, username, password, ip)
        if user is None:
            return None
        who = service.portal_user(session, user.id, ip)
        service.log_access(session, who, "portal.login")
        return user.id


@router.post("/logout")
def logout() -> Response:
    response = _login_redirect()
    response.delete_cookie(COOKIE, path="/agency")
    return response


@router.get("/")
def cases(request: Request, session: SessionDep) -> Response:
    who = _who(request, session)
    if who is None:
        return _login_redirect()
    return _page(request, "agency/cases.html", {"who": who, "rows": service.cases_for(session, who)})


def _case_page(request: Request, session: SessionDep, who: service.PortalUser, case_id: int, *,
               error: AppError | None = None, notice: str | None = None, status_code: int = 200) -> Response:
    try:
        found = service.case_for(session, who, case_id)
    except CaseNotFound:
        return _page(request, "agency/not_found.html", {"who": who}, status_code=404)
    return _page(request, "agency/case.html", {
        "who": who, "item": found, "history": service.history_for(session, case_id, found.assigned_at),
        "kinds": service.PORTAL_KINDS, "kind_labels": ACTION_KIND_LABELS, "agency_csrf": _csrf(who),
        "error": error, "portal_notice": notice}, status_code=status_code)


@router.get("/cases/{case_id}")
def case(request: Request, session: SessionDep, case_id: int) -> Response:
    who = _who(request, session)
    if who is None:
        return _login_redirect()
    return _case_page(request, session, who, case_id, notice="催收记录已保存" if request.query_params.get("done") else None)


@router.post("/cases/{case_id}/action")
def action(request: Request, session: SessionDep, case_id: int, kind: Annotated[str, Form()] = "note",
           note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    who = _who(request, session)
    if who is None:
        return _login_redirect()
    if not _csrf_ok(who, csrf):
        return _page(request, "agency/not_found.html", {"who": who, "message": "页面已过期，请刷新后重试"},
                     status_code=403)
    try:
        with session.begin_nested():
            service.record_action(session, who, case_id, kind=kind, note=note)
    except CaseNotFound:
        service.log_access(session, who, "portal.denied", case_id=case_id)
        return _page(request, "agency/not_found.html", {"who": who}, status_code=404)
    except AppError as exc:
        return _case_page(request, session, who, case_id, error=exc, status_code=exc.status)
    return RedirectResponse(f"/agency/cases/{case_id}?done=1", status_code=303)
