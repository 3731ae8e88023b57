"""企微模拟器: the console page that lets a newcomer play WeCom's side and watch the CRM react.

Served by the simulator sub-application at ``/_wecom_sim/console`` (the admin package may not be
imported from bot, so the page renders its own template and links the console's CSS by URL).
Logged-in admins and managers only (the console's session cookie, resolved through
:func:`crm.auth_service.resolve_session`); every form carries the session's CSRF token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import select

from bot import config
from bot.console_pages import SECURITY_HEADERS, Denied, denied_response, staff_user
from bot.models import WecomInbox
from bot.models_channel import ChannelCode
from bot.simulator.driver import Driver, DriverResult
from bot.simulator.state import STATE
from core import audit, clock, console_shell
from core.db import unit_of_work
from core.errors import AppError
from core.security import constant_time_equals
from crm.models import Staff, StaffStatus
from crm.permissions import WECOM_OPS

router = APIRouter(include_in_schema=False)
ALLOWED_ROLES = WECOM_OPS
PAGE = config.SIMULATOR_PREFIX + "/console"

# The bot's templates too, and the console frame (_console_shell.html) shared with every page outside admin.
_env = Environment(loader=FileSystemLoader([Path(__file__).parent / "templates", Path(__file__).parent.parent / "templates",
                                            console_shell.TEMPLATE_DIR]),
                   autoescape=True)
_env.filters["readable"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)  # Chinese as Chinese
_env.filters["localtime"] = lambda v: clock.ensure_aware(v).astimezone(clock.BUSINESS_TZ).strftime(
    "%m-%d %H:%M:%S") if v else "—"

EVENTS: dict[str, str] = {
    "add_external_contact": "客户通过渠道码添加员工",
    "add_half_external_contact": "客户添加员工（员工未通过）",
    "edit_external_contact": "员工编辑客户",
    "del_follow_user": "客户删除员工",
    "del_external_contact": "员工删除客户",
    "transfer_fail": "客户拒绝转接 / 接替成员客户已满",
    "create_chat": "员工创建客户群",
    "join_chat": "客户入群",
    "leave_chat": "客户退群",
    "tag_create": "管理后台新建标签",
    "tag_update": "管理后台修改标签",
    "tag_delete": "管理后台删除标签",
    "tag_shuffle": "管理后台调整标签顺序",
    "staff_left": "员工离职",
    "text": "员工给应用发消息（聊天指令）",
    "advance": "模拟时间快进",
    "reset": "清空模拟器",
}


def _user(request: Request) -> dict[str, Any]:
    """The console session's staff as plain values; the transaction is closed before any driver call."""
    return staff_user(request, ALLOWED_ROLES, "企微模拟器仅对管理员和经理开放")


def _page(request: Request, user: dict[str, Any], notice: str = "", error: str = "") -> HTMLResponse:
    with unit_of_work() as session:
        staff = session.execute(select(Staff.display_name, Staff.wecom_userid)
                                .where(Staff.wecom_userid.is_not(None), Staff.status == StaffStatus.ACTIVE)
                                .order_by(Staff.display_name)).all()
        inbox = session.scalars(select(WecomInbox).order_by(WecomInbox.id.desc()).limit(30)).all()
        names = {u: n for n, u in staff}
        codes = session.execute(select(ChannelCode.name, ChannelCode.state, ChannelCode.channel).where(
            ChannelCode.deleted_at.is_(None)).order_by(ChannelCode.id.desc()).limit(100)).all()
        inbox_rows = [{"id": r.id, "kind": r.kind, "status": r.status, "summary": r.summary, "error": r.error,
                       "received_at": r.received_at} for r in inbox]
    with STATE.lock:
        transcript = _transcript(names)
        log = list(reversed(STATE.requests[-40:]))
        contacts = [{"external_userid": ext, "name": c["name"], "follow": "、".join(names.get(u, u) for u in c["follow"])}
                    for ext, c in list(STATE.contacts.items())[-20:]]
        chats = [{"chat_id": c["chat_id"], "name": c["name"], "owner": c["owner"], "members": len(c["member_list"])}
                 for c in list(STATE.chats.values())[-10:]]
        sim_now, offset = STATE.now(), STATE.offset
    html = _env.get_template("simulator_console.html").render(
        me=user, csrf_token=user["csrf"], events=EVENTS, staff=staff, inbox=inbox_rows, log=log, contacts=contacts,
        transcript=transcript, codes=codes,
        chats=chats, sim_hours=round(offset / 3600, 2), sim_now=datetime.fromtimestamp(sim_now, UTC), notice=notice, error=error, page=PAGE)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


def _text_of(content: Any) -> str:
    """The readable text of a WeCom message body (text, markdown, a card's title and description)."""
    if isinstance(content, dict):
        parts = [str(content.get(k)) for k in ("content", "title", "description") if content.get(k)]
        return "\n".join(parts) or json.dumps(content, ensure_ascii=False)
    return str(content)


def _transcript(names: dict[str, str]) -> list[dict[str, Any]]:
    """The conversation the simulator saw, oldest first (call under STATE.lock): what salespeople typed to the
    app, the app's replies and notices (to people and to group chats it made), and the welcome messages sent to customers in a salesperson's name."""
    rows = [{"at": t["at"], "who": names.get(t["userid"], t["userid"]), "to": "应用", "text": t["text"],
             "side": "staff"} for t in STATE.typed[-40:]]
    rows += [{"at": m["at"], "who": "应用", "to": "、".join(names.get(u, u) for u in m["touser"]),
              "text": _text_of(m["content"]), "side": "app"} for m in STATE.app_messages[-40:]]
    rows += [{"at": m["at"], "who": "应用", "to": f"群聊「{STATE.appchats.get(m['chatid'], {}).get('name', m['chatid'])}」",
              "text": _text_of(m["content"]), "side": "app"} for m in STATE.appchat_messages[-40:]]
    for r in STATE.requests[-200:]:
        if r.get("path", "").endswith("send_welcome_msg") and isinstance(r.get("body"), dict):
            rows.append({"at": r.get("at", 0), "who": "欢迎语", "to": "客户", "side": "app",
                         "text": _text_of(r["body"].get("text") or {})})
    rows.sort(key=lambda row: row["at"])
    for row in rows:
        row["at"] = datetime.fromtimestamp(row["at"], UTC)
    return rows[-40:]


@router.get("/console")
def console_page(request: Request, notice: str = "", error: str = "") -> Response:
    try:
        user = _user(request)
    except Denied as exc:
        return denied_response(exc)
    return _page(request, user, notice[:200], error[:200])


def _run(driver: Driver, event: str, form: dict[str, str]) -> str:
    uid, ext, name = form.get("user_id", ""), form.get("external_userid", "").strip(), form.get("name", "").strip()
    chat_id = form.get("chat_id", "").strip()
    result: DriverResult | None = None
    if event == "add_external_contact":
        result = driver.add_external_contact(uid, ext or None, name=name or "模拟客户", state=form.get("state", ""))
    elif event == "add_half_external_contact":
        result = driver.add_half_external_contact(uid, ext or None, name=name or "模拟客户",
                                                  state=form.get("state", ""))
    elif event == "edit_external_contact":
        result = driver.edit_external_contact(uid, ext, remark=name or None)
    elif event == "del_follow_user":
        result = driver.customer_deletes_staff(uid, ext)
    elif event == "del_external_contact":
        result = driver.staff_deletes_customer(uid, ext)
    elif event == "transfer_fail":
        result = driver.transfer_fail(uid, ext, form.get("reason") or "customer_refused")
    elif event == "create_chat":
        result = driver.create_group_chat(uid, name or "客户交流群")
    elif event == "join_chat":
        result = driver.join_group_chat(chat_id, ext)
    elif event == "leave_chat":
        result = driver.leave_group_chat(chat_id, ext)
    elif event in ("tag_create", "tag_update", "tag_delete", "tag_shuffle"):
        result = driver.tag_event(event.removeprefix("tag_"), tag_id=form.get("tag_id") or None, name=name or None)
    elif event == "staff_left":
        result = driver.staff_left(uid)
    elif event == "text":
        with STATE.lock:
            STATE.typed.append({"at": STATE.now(), "userid": uid, "text": form.get("content", "")})
            del STATE.typed[:-100]
        result = driver.text_message(uid, form.get("content", ""))
    elif event == "advance":
        hours = float(form.get("hours") or 0)
        if not 0 < hours <= 24 * 120:
            raise ValueError("快进时长须在 0–2880 小时之间")
        driver.admin("advance", {"seconds": hours * 3600})
        return f"模拟时间已快进 {hours:g} 小时"
    elif event == "reset":
        driver.admin("reset")
        return "模拟器已清空"
    if result is None:
        raise ValueError("未知的事件")
    who = f"（外部联系人 {result.external_userid}）" if result.external_userid else ""
    if result.accepted:
        return f"已发送回调：{EVENTS[event]}{who}，CRM 已接收"
    return f"回调被拒绝（HTTP {result.status_code}）：{result.response[:120]}"


@router.post("/console/event")
async def console_event(request: Request) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    from starlette.concurrency import run_in_threadpool

    try:
        user = await run_in_threadpool(_user, request)
    except Denied as exc:
        return denied_response(exc)
    sent = form.get("csrf_token", "")
    if not sent or not constant_time_equals(sent, user["csrf"]):
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>页面已过期或请求来源无法验证，请刷新页面后重试</p>",
                            status_code=403)
    event = form.get("event", "")
    if event not in EVENTS:
        return RedirectResponse(f"{PAGE}?error={quote('未知的事件')}", status_code=303)
    origin = f"{request.url.scheme}://{request.url.netloc}"

    def work() -> str:
        with unit_of_work() as session:
            audit.record(session, "wecom_sim.event", detail=event,
                         actor=audit.Actor("staff", user["staff_id"], user["name"]))
        driver = Driver(sim_base=origin + config.SIMULATOR_PREFIX, callback_url=origin + "/wecom/callback")
        try:
            return _run(driver, event, form)
        finally:
            driver.close()

    try:
        notice = await run_in_threadpool(work)
    except (ValueError, RuntimeError, AppError, httpx.HTTPError) as exc:
        return RedirectResponse(f"{PAGE}?error={quote(('操作失败：' + str(exc))[:180])}", status_code=303)
    return RedirectResponse(f"{PAGE}?notice={quote(notice)}", status_code=303)
