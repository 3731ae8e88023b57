"""群发 / 客户群 / 企微标签同步 pages, served by the bot (admin may not import bot).

Like :mod:`bot.channel_console`: own templates, the console's CSS by URL, the console session
resolved through :func:`crm.auth_service.resolve_session`, role checks, every form carrying the
session's CSRF token (compared in constant time). The admin navigation links here by URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot import group_routes, mass_messages, tag_sync
from bot.console_pages import SECURITY_HEADERS, make_env, staff_user
from bot.console_pages import Denied as _Denied
from bot.console_pages import denied_response as _denied
from core import audit, outbox
from core.db import unit_of_work
from core.errors import AppError, ValidationFailed
from core.security import constant_time_equals
from crm import segments
from crm import tags as crm_tags
from crm.models import Segment
from crm.scope import Viewer

router = APIRouter(include_in_schema=False)
MASS, GROUPS, TAGS = "/wecom/mass", "/wecom/groups", "/wecom/tags"
_env = make_env()


def _user(request: Request, roles: frozenset[str], what: str) -> dict[str, Any]:
    who = "管理员、经理和主管" if "supervisor" in roles else "管理员和经理"
    return staff_user(request, roles, f"{what}仅对{who}开放")


def _render(template: str, user: dict[str, Any], page: str, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(me=user, csrf_token=user["csrf"], page=page, **context)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


def _page(request: Request, roles: frozenset[str], what: str, body: Callable[[dict[str, Any]], Response]) -> Response:
    try:
        user = _user(request, roles, what)
    except _Denied as exc:
        return _denied(exc)
    return body(user)


def _act(request: Request, form: Any, roles: frozenset[str], what: str,
         action: Callable[[Any, Viewer], tuple[str, str]], back: str) -> Response:
    try:
        user = _user(request, roles, what)
    except _Denied as exc:
        return _denied(exc)
    sent = form.get("csrf_token", "")
    if not isinstance(sent, str) or not sent or not constant_time_equals(sent, user["csrf"]):
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>页面已过期或请求来源无法验证，请刷新页面后重试</p>",
                            status_code=403, headers=SECURITY_HEADERS)
    audit.set_context(audit.Actor("staff", user["viewer"].staff_id, user["name"],
                                  request.client.host if request.client else None))
    try:
        with unit_of_work() as session:
            target, notice = action(session, user["viewer"])
    except AppError as exc:
        return RedirectResponse(f"{back}?error={quote(exc.message[:180])}", status_code=303)
    finally:
        audit.set_context(None)
    return RedirectResponse(f"{target}?notice={quote(notice[:180])}", status_code=303)


def _int(value: Any, what: str) -> int:
    try:
        return int(str(value or "").strip())
    except ValueError as exc:
        raise ValidationFailed(f"请选择{what}") from exc


# --- 群发 ------------------------------------------------------------------------------------------

@router.get(MASS)
def mass_list(request: Request, notice: str = "", error: str = "") -> Response:
    def body(user: dict[str, Any]) -> Response:
        with unit_of_work() as session:
            messages = mass_messages.list_messages(session)
            names = dict(session.execute(select(Segment.id, Segment.name)).all())
            counts = {m.id: mass_messages.recipient_counts(session, m.id) for m in messages}
            return _render("mass_list.html", user, MASS, messages=messages, names=names, counts=counts,
                           segments=segments.list_segments(session), labels=mass_messages.MESSAGE_LABELS,
                           notice=notice[:200], error=error[:200])
    return _page(request, mass_messages.SENDERS, "群发", body)


@router.post(MASS)
async def mass_create(request: Request) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> tuple[str, str]:
        attachments = []
        if (form.get("link_url") or "").strip():
            attachments.append({"msgtype": "link", "link": {"title": (form.get("link_title") or "").strip()[:64],
                                                             "url": (form.get("link_url") or "").strip()}})
        message = mass_messages.create_message(session, viewer, mass_messages.MassInput(
            title=form.get("title", ""), segment_id=_int(form.get("segment_id"), "客户分群"),
            text=form.get("text", ""), attachments=attachments))
        return f"{MASS}/{message.id}", "群发草稿已创建，请核对接收人数后发送"

    return await run_in_threadpool(_act, request, form, mass_messages.SENDERS, "群发", action, MASS)


@router.get(MASS + "/{message_id}")
def mass_detail(request: Request, message_id: int, status: str = "", p: int = 1, notice: str = "",
                error: str = "") -> Response:
    def body(user: dict[str, Any]) -> Response:
        with unit_of_work() as session:
            try:
                message = mass_messages.get_message(session, message_id)
            except AppError as exc:
                return RedirectResponse(f"{MASS}?error={quote(exc.message)}", status_code=303)
            segment = session.get(Segment, message.segment_id)
            preview = mass_messages.preview(session, user["viewer"], message) if message.status == "draft" else None
            return _render("mass_detail.html", user, MASS, message=message, segment=segment, preview=preview,
                           counts=mass_messages.recipient_counts(session, message.id),
                           sends=mass_messages.sends_of(session, message.id),
                           rows=mass_messages.recipients(session, message.id, status=status or None, page=p),
                           status=status, p=max(p, 1), labels=mass_messages.STATUS_LABELS,
                           message_labels=mass_messages.MESSAGE_LABELS, notice=notice[:200], error=error[:200])
    return _page(request, mass_messages.SENDERS, "群发", body)


def _mass_post(path: str, run: Callable[[Any, Viewer, int], str]) -> None:
    @router.post(MASS + "/{message_id}/" + path, name=f"mass_{path}")
    async def endpoint(request: Request, message_id: int) -> Response:
        form = await request.form()

        def action(session: Any, viewer: Viewer) -> tuple[str, str]:
            return f"{MASS}/{message_id}", run(session, viewer, message_id)

        return await run_in_threadpool(_act, request, form, mass_messages.SENDERS, "群发", action,
                                       f"{MASS}/{message_id}")


def _send(session: Any, viewer: Viewer, message_id: int) -> str:
    mass_messages.submit(session, viewer, message_id)
    counts = mass_messages.recipient_counts(session, message_id)
    return (f"已提交：{counts.get('pending', 0)} 位客户待员工在企业微信中确认发送，"
            f"{counts.get('skipped_limit', 0)} 位本月已达上限跳过，{counts.get('not_a_contact', 0)} 位非联系人")


def _remind(session: Any, viewer: Viewer, message_id: int) -> str:
    return f"已提醒 {mass_messages.remind(session, viewer, message_id)} 位员工确认发送"


def _poll(session: Any, viewer: Viewer, message_id: int) -> str:
    mass_messages.get_message(session, message_id)
    outbox.enqueue(session, mass_messages.POLL_TASK, message_id)
    return "已开始刷新发送结果，请稍后刷新页面"


_mass_post("send", _send)
_mass_post("remind", _remind)
_mass_post("poll", _poll)


# --- 客户群 -----------------------------------------------------------------------------------------

@router.get(GROUPS)
def groups_page(request: Request, notice: str = "", error: str = "") -> Response:
    def body(user: dict[str, Any]) -> Response:
        with unit_of_work() as session:
            routes = group_routes.list_routes(session)
            return _render("wecom_groups.html", user, GROUPS, chats=group_routes.list_chats(session), routes=routes,
                           joins=group_routes.join_counts(session, [r.id for r in routes]),
                           segments=segments.list_segments(session),
                           names=dict(session.execute(select(Segment.id, Segment.name)).all()),
                           notice=notice[:200], error=error[:200])
    return _page(request, group_routes.MANAGERS, "客户群", body)


@router.post(GROUPS + "/sync")
async def groups_sync(request: Request) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> tuple[str, str]:
        outbox.enqueue(session, "bot.sync_group_chats")
        return GROUPS, "已开始同步客户群，请稍后刷新页面"

    return await run_in_threadpool(_act, request, form, group_routes.MANAGERS, "客户群", action, GROUPS)


@router.post(GROUPS + "/routes")
async def route_create(request: Request) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> tuple[str, str]:
        base_id = (form.get("room_base_id") or "").strip()
        route = group_routes.create_route(session, viewer, group_routes.RouteInput(
            name=form.get("name", ""), segment_id=_int(form.get("segment_id"), "客户分群"),
            chat_ids=[str(c) for c in form.getlist("chat_ids")], state=form.get("state") or None,
            auto_create_room=form.get("auto_create_room") == "on", room_base_name=form.get("room_base_name") or None,
            room_base_id=_int(base_id, "起始序号") if base_id else None))
        return GROUPS, f"分层拉群「{route.name}」已创建"

    return await run_in_threadpool(_act, request, form, group_routes.MANAGERS, "客户群", action, GROUPS)


@router.post(GROUPS + "/routes/{route_id}/invite")
async def route_invite(request: Request, route_id: int) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> tuple[str, str]:
        message = group_routes.invite(session, viewer, route_id, form.get("text") or None)
        return f"{MASS}/{message.id}", "已生成邀请入群的群发草稿，请核对后发送"

    return await run_in_threadpool(_act, request, form, group_routes.MANAGERS, "客户群", action, GROUPS)


@router.post(GROUPS + "/routes/{route_id}/delete")
async def route_delete(request: Request, route_id: int) -> Response:
    form = await request.form()

    def action(session: Any, viewer: Viewer) -> tuple[str, str]:
        group_routes.delete_route(session, viewer, route_id)
        return GROUPS, "分层拉群已删除（企业微信中的入群二维码同时失效）"

    return await run_in_threadpool(_act, request, form, group_routes.MANAGERS, "客户群", action, GROUPS)


# --- 企微标签同步 -------------------------------------------------------------------------------------

@router.get(TAGS)
def tags_page(request: Request, notice: str = "", error: str = "") -> Response:
    def body(user: dict[str, Any]) -> Response:
        with unit_of_work() as session:
            groups = crm_tags.list_groups(session)
            wecom_ids = [t.wecom_tag_id for g in groups for t in g.tags if t.wecom_tag_id]
            return _render("wecom_tags.html", user, TAGS, groups=groups, syncs=tag_sync.recent_syncs(session),
                           ours=tag_sync.created_by_us(session, wecom_ids), notice=notice[:200], error=error[:200])
    return _page(request, tag_sync.MANAGERS, "企微标签同步", body)


def _tags_post(path: str, run: Callable[[Any, Viewer, Any], str]) -> None:
    @router.post(TAGS + path, name=f"tags_{path.strip('/').replace('/', '_') or 'root'}")
    async def endpoint(request: Request) -> Response:
        form = await request.form()

        def action(session: Any, viewer: Viewer) -> tuple[str, str]:
            return TAGS, run(session, viewer, form)

        return await run_in_threadpool(_act, request, form, tag_sync.MANAGERS, "企微标签同步", action, TAGS)


def _pull(session: Any, viewer: Viewer, form: Any) -> str:
    return tag_sync.summary(tag_sync.pull(session, viewer))


def _push(session: Any, viewer: Viewer, form: Any) -> str:
    ids = [_int(v, "标签") for v in form.getlist("tag_ids")]
    if not ids:
        raise ValidationFailed("请选择要推送到企业微信的标签")
    return tag_sync.summary(tag_sync.push_tags(session, viewer, ids))


def _create(session: Any, viewer: Viewer, form: Any) -> str:
    group_id = (form.get("group_id") or "").strip()
    tag = tag_sync.create_wecom_tag(session, viewer, form.get("name", ""),
                                    group_id=_int(group_id, "标签组") if group_id else None,
                                    group_name=form.get("group_name") or None)
    return f"标签「{tag.name}」已创建并同步到企业微信"


def _delete(session: Any, viewer: Viewer, form: Any) -> str:
    tag_sync.delete_in_wecom(session, viewer, _int(form.get("tag_id"), "标签"))
    return "标签已在企业微信和本系统中删除"


_tags_post("/pull", _pull)
_tags_post("/push", _push)
_tags_post("/create", _create)
_tags_post("/delete", _delete)
