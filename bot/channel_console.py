"""渠道活码 pages: list with statistics, create, edit, delete, QR link.

Why in bot and not in admin: a channel code IS a WeCom object — creating one must call
``add_contact_way`` and store the ``config_id`` and QR URL WeCom answers, synchronously, or the code
is useless; admin may not import bot (channels never import each other), and splitting the data into
crm with a bot task doing the WeCom half would leave codes without a QR code until a task ran and
put WeCom vocabulary (config_id, state) into the domain. So the pages are served by the bot at
``/wecom/channels`` like the simulator and robot pages: own template, the console's CSS by URL, the
console's session cookie resolved through :func:`crm.auth_service.resolve_session`, admins and
managers only, every form carrying the session's CSRF token (checked in constant time). The admin
navigation links here by URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot import channel_codes, channel_qr
from bot.console_pages import SECURITY_HEADERS, make_env, staff_user
from bot.console_pages import Denied as _Denied
from bot.console_pages import denied_response as _denied
from bot.gateway import get_gateway
from core import audit
from core.db import unit_of_work
from core.errors import AppError, ValidationFailed
from core.security import constant_time_equals
from crm import org_service
from crm import tags as crm_tags
from crm.models import Staff
from crm.scope import Viewer

router = APIRouter(include_in_schema=False)
PAGE = "/wecom/channels"
_env = make_env()


def _user(request: Request) -> dict[str, Any]:
    return staff_user(request, channel_codes.MANAGERS, "渠道活码仅对管理员和经理开放")


def _choices(session: Any) -> dict[str, Any]:
    # Codes are answered by the staff who take customers (salespeople), each shown by name; a code made
    # earlier for someone else still shows that person's name in the list.
    staff = [s for s in org_service.owner_choices(session) if s.wecom_userid]
    everyone = session.execute(select(Staff.id, Staff.display_name, Staff.wecom_userid)).all()
    tags = [(t.id, f"{t.group.name} / {t.name}") for t in crm_tags.live_tags(session)]
    return {"staff": staff, "tags": tags, "staff_names": {i: n for i, n, _u in everyone},
            "userid_names": {u: n for _i, n, u in everyone if u}}


def _render(template: str, user: dict[str, Any], **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(me=user, csrf_token=user["csrf"], page=PAGE, **context)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


@router.get(PAGE)
def channels_page(request: Request, notice: str = "", error: str = "") -> Response:
    try:
        user = _user(request)
    except _Denied as exc:
        return _denied(exc)
    with unit_of_work() as session:
        codes = channel_codes.list_codes(session)
        stats = channel_codes.stats(session, [c.id for c in codes])
        choices = _choices(session)
        return _render("channels.html", user, codes=codes, stats=stats, code=None, notice=notice[:200],
                       error=error[:200], **choices)


@router.get(PAGE + "/{code_id}")
def channel_page(request: Request, code_id: int, error: str = "") -> Response:
    try:
        user = _user(request)
    except _Denied as exc:
        return _denied(exc)
    with unit_of_work() as session:
        try:
            code = channel_codes.get_code(session, code_id)
        except AppError as exc:
            return RedirectResponse(f"{PAGE}?error={quote(exc.message)}", status_code=303)
        stats = channel_codes.stats(session, [code.id])
        return _render("channel_edit.html", user, code=code, stats=stats[code.id], error=error[:200],
                       **_choices(session))


def _code_with_link(request: Request, code_id: int) -> tuple[Any, str, str] | Response:
    """The code, its WeCom link and the names of the staff answering it; or the refusal to send."""
    try:
        _user(request)
    except _Denied as exc:
        return _denied(exc)
    with unit_of_work() as session:
        try:
            code = channel_codes.get_code(session, code_id)
        except AppError as exc:
            return Response(exc.message, status_code=404, media_type="text/plain; charset=utf-8")
        if not code.qr_code:
            return Response("该渠道码没有二维码", status_code=404, media_type="text/plain; charset=utf-8")
        names = [n for n in session.scalars(select(Staff.display_name).where(Staff.id.in_(code.staff_ids)))]
        session.expunge(code)
        return code, code.qr_code, "、".join(names)


def _download_name(code: Any, suffix: str) -> str:
    return f"attachment; filename=\"channel-{code.id}.{suffix}\"; filename*=UTF-8''{quote(code.name)}.{suffix}"


@router.get(PAGE + "/{code_id}/qr.png")
def channel_qr_png(request: Request, code_id: int, download: bool = False) -> Response:
    found = _code_with_link(request, code_id)
    if isinstance(found, Response):
        return found
    code, link, _names = found
    headers = dict(SECURITY_HEADERS) | {"Cache-Control": "private, max-age=300"}
    if download:
        headers["Content-Disposition"] = _download_name(code, "png")
    return Response(channel_qr.png(link), media_type="image/png", headers=headers)


@router.get(PAGE + "/{code_id}/poster.svg")
def channel_poster(request: Request, code_id: int) -> Response:
    found = _code_with_link(request, code_id)
    if isinstance(found, Response):
        return found
    code, link, names = found
    svg = channel_qr.poster_svg(link, title=code.campaign or code.channel or code.name,
                                staff_line=f"您的专属顾问 {names}" if names else code.name)
    headers = dict(SECURITY_HEADERS) | {"Content-Disposition": _download_name(code, "svg")}
    return Response(svg, media_type="image/svg+xml", headers=headers)


def _ints(values: list[str]) -> list[int]:
    out = []
    for v in values:
        try:
            out.append(int(v))
        except ValueError as exc:
            raise ValidationFailed("选择的员工或标签不正确") from exc
    return out


def _input(form: Any) -> channel_codes.ChannelInput:
    cap = (form.get("daily_cap") or "").strip()
    try:
        daily_cap = int(cap) if cap else None
    except ValueError as exc:
        raise ValidationFailed("每日添加上限须为整数", field="daily_cap") from exc
    return channel_codes.ChannelInput(
        name=form.get("name", ""), channel=form.get("channel", ""), state=form.get("state") or None,
        campaign=form.get("campaign") or None, staff_ids=_ints(form.getlist("staff_ids")),
        backup_staff_ids=_ints(form.getlist("backup_staff_ids")), referrer_ref=form.get("referrer_ref") or None,
        welcome_text=form.get("welcome_text") or None, tag_ids=_ints(form.getlist("tag_ids")),
        daily_cap=daily_cap, skip_verify=form.get("skip_verify") == "on")


def _act(request: Request, form: Any, action: Any, back: str) -> Response:
    try:
        user = _user(request)
    except _Denied as exc:
        return _denied(exc)
    sent = form.get("csrf_token", "")
    if not isinstance(sent, str) or not sent or not constant_time_equals(sent, user["csrf"]):
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>页面已过期或请求来源无法验证，请刷新页面后重试</p>",
                            status_code=403, headers=SECURITY_HEADERS)
    audit.set_context(audit.Actor("staff", user["viewer"].staff_id, user["name"],
                                  request.client.host if request.client else None))
    try:
        # The access token first, outside our transaction: on SQLite (BEGIN IMMEDIATE) the gateway's
        # database token cache could not refresh while this request's unit of work holds the lock.
        get_gateway().access_token()
        with unit_of_work() as session:
            notice = action(session, user["viewer"])
    except AppError as exc:
        return RedirectResponse(f"{back}?error={quote(exc.message[:180])}", status_code=303)
    finally:
        audit.set_context(None)
    return RedirectResponse(f"{PAGE}?notice={quote(notice)}", status_code=303)


@router.post(PAGE)
async def create_channel(request: Request) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> str:
        code = channel_codes.create_code(session, viewer, _input(form))
        return f"渠道码「{code.name}」已创建"

    return await run_in_threadpool(_act, request, form, action, PAGE)


@router.post(PAGE + "/{code_id}")
async def update_channel(request: Request, code_id: int) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> str:
        code = channel_codes.update_code(session, viewer, code_id, _input(form))
        return f"渠道码「{code.name}」已保存"

    return await run_in_threadpool(_act, request, form, action, f"{PAGE}/{code_id}")


@router.post(PAGE + "/{code_id}/delete")
async def delete_channel(request: Request, code_id: int) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> str:
        channel_codes.delete_code(session, viewer, code_id)
        return "渠道码已删除（企业微信中的二维码同时失效）"

    return await run_in_threadpool(_act, request, form, action, PAGE)
