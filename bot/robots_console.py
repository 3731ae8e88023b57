"""群机器人 page: managers keep their departments' group robots and post team announcements.

Served by the bot at ``/wecom/robots`` (admin may not be imported from bot, so the page renders its
own template and links the console's CSS by URL, like the simulator's console). The console's
session cookie is resolved through :func:`crm.auth_service.resolve_session`; admins and managers
only; every form carries the session's CSRF token, checked in constant time.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from bot import robots
from bot.console_pages import SECURITY_HEADERS, make_env, staff_user
from bot.console_pages import Denied as _Denied
from bot.console_pages import denied_response as _denied
from core import audit
from core.db import unit_of_work
from core.errors import AppError
from core.security import constant_time_equals
from crm.models import Department
from crm.scope import Viewer, department_filter

router = APIRouter(include_in_schema=False)
PAGE = "/wecom/robots"
_env = make_env()


def _user(request: Request) -> dict[str, Any]:
    return staff_user(request, robots.MANAGERS, "群机器人仅对管理员和经理开放")


@router.get(PAGE)
def robots_page(request: Request, notice: str = "", error: str = "") -> Response:
    try:
        user = _user(request)
    except _Denied as exc:
        return _denied(exc)
    viewer: Viewer = user["viewer"]
    with unit_of_work() as session:
        rows = robots.list_robots(session, viewer)
        departments = session.execute(select(Department.id, Department.name).where(
            department_filter(viewer, Department.path)).order_by(Department.path)).all()
    html = _env.get_template("robots.html").render(
        me=user, csrf_token=user["csrf"], robots=rows, departments=departments, page=PAGE,
        notice=notice[:200], error=error[:200])
    return HTMLResponse(html, headers=SECURITY_HEADERS)


async def _form(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def _act(request: Request, form: dict[str, str], action: Any) -> Response:
    try:
        user = _user(request)
    except _Denied as exc:
        return _denied(exc)
    sent = form.get("csrf_token", "")
    if not sent or not constant_time_equals(sent, user["csrf"]):
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>页面已过期或请求来源无法验证，请刷新页面后重试</p>",
                            status_code=403, headers=SECURITY_HEADERS)
    actor = audit.Actor("staff", user["viewer"].staff_id, user["name"], request.client.host if request.client else None)
    audit.set_context(actor)  # this worker thread's context: audit rows name the manager
    try:
        notice = action(user["viewer"], actor)
    except AppError as exc:
        return RedirectResponse(f"{PAGE}?error={quote(exc.message[:180])}", status_code=303)
    finally:
        audit.set_context(None)
    return RedirectResponse(f"{PAGE}?notice={quote(notice)}", status_code=303)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise robots.RobotInvalid("参数不正确") from None


@router.post(PAGE)
async def add_robot(request: Request) -> Response:
    form = await _form(request)

    def action(viewer: Viewer, actor: audit.Actor) -> str:
        with unit_of_work() as session:
            robot = robots.add_robot(session, viewer, name=form.get("name", ""),
                                     department_id=_int(form.get("department_id")), webhook=form.get("webhook", ""))
            return f"已添加群机器人「{robot.name}」"

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_act, request, form, action)


@router.post(PAGE + "/{robot_id}/delete")
async def delete_robot(request: Request, robot_id: int) -> Response:
    form = await _form(request)

    def action(viewer: Viewer, actor: audit.Actor) -> str:
        with unit_of_work() as session:
            robots.delete_robot(session, viewer, robot_id)
        return "已删除群机器人"

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_act, request, form, action)


@router.post(PAGE + "/{robot_id}/post")
async def post_announcement(request: Request, robot_id: int) -> Response:
    form = await _form(request)

    def action(viewer: Viewer, actor: audit.Actor) -> str:
        robots.post_announcement(robot_id, form.get("content", ""), msgtype=form.get("msgtype") or "markdown",
                                 viewer=viewer, actor=actor)
        return "公告已发送到群聊"

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_act, request, form, action)
