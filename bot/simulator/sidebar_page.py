"""The simulator's side of the chat sidebar: WeCom's OAuth page, the client's agentConfig check, and
a page that plays the WeCom client around the sidebar (``/_wecom_sim/sidebar``).

The page shows a chat with a chosen external contact (or customer group) as a chosen staff member,
and embeds ``/wecom/sidebar/`` beside it in an iframe 360 px wide, as WeCom's desktop client does.
Its script (``static/sim-sdk.js``) offers the sidebar the JS-SDK functions the sidebar uses
(``register``, ``getContext``, ``getCurExternalContact``, ``getCurExternalChat``,
``sendChatMessage``) as ``window.wecomSimSdk``; ``register`` asks the sidebar's server for the
agentConfig signature and has the simulator verify it against the jsapi tickets it issued
(:func:`verify_agent_config`), so a wrong signature fails as it would in WeCom.

OAuth: ``/connect/oauth2/authorize`` answers with a code for the staff member the page was opened as
(a cookie the page sets); ``auth/getuserinfo`` (in :mod:`bot.simulator.endpoints`) exchanges it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import select

from bot import config
from bot.console_pages import Denied, denied_response, staff_user
from bot.models import GroupChat
from bot.simulator.endpoints import issue_oauth_code, verify_agent_config
from bot.simulator.state import STATE
from core import console_shell
from core.db import unit_of_work
from crm.models import Role, Staff, StaffStatus

router = APIRouter(include_in_schema=False)
ALLOWED_ROLES = frozenset({Role.ADMIN.value, Role.MANAGER.value})
USER_COOKIE = "wecom_sim_userid"
SIDEBAR_PATH = "/wecom/sidebar/"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

# With the console frame (_console_shell.html) shared by every page outside admin.
_env = Environment(loader=FileSystemLoader([Path(__file__).parent / "templates", console_shell.TEMPLATE_DIR]),
                   autoescape=True)


@router.get("/connect/oauth2/authorize")
def authorize(request: Request, appid: str = "", redirect_uri: str = "", state: str = "") -> Response:
    """WeCom's OAuth page (snsapi_base): straight back to ``redirect_uri`` with a code for the member."""
    userid = request.cookies.get(USER_COOKIE, "")
    if appid != config.corp_id():
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>appid 不是本企业的 CorpID</p>", status_code=400)
    target = urlsplit(redirect_uri)
    if target.scheme not in ("http", "https") or target.netloc != request.url.netloc:
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>redirect_uri 不在可信域名内</p>", status_code=400)
    if not userid:
        return HTMLResponse("<!doctype html><meta charset=utf-8><p>请从企微模拟器的「聊天侧边栏」页面打开</p>",
                            status_code=403)
    with STATE.lock:
        code = issue_oauth_code(STATE, userid)
    glue = "&" if target.query else "?"
    return RedirectResponse(f"{redirect_uri.split('#', 1)[0]}{glue}{urlencode({'code': code, 'state': state})}",
                            status_code=302)


@router.post("/_admin/jsapi/verify")
async def verify(request: Request) -> JSONResponse:
    """What WeCom's client checks in ``wx.agentConfig``: corp, agent, and the signature over a ticket it issued."""
    try:
        body: dict[str, Any] = await request.json()
    except ValueError:
        return JSONResponse({"errcode": 47001, "errmsg": "data format error"}, status_code=400)
    if str(body.get("corpId")) != config.corp_id() or str(body.get("agentId")) != config.agent_id():
        return JSONResponse({"errcode": 40001, "errmsg": "agentConfig:fail no permission (corpId/agentId)"})
    with STATE.lock:
        good = verify_agent_config(STATE, str(body.get("url", "")), str(body.get("timestamp", "")),
                                   str(body.get("nonceStr", "")), str(body.get("signature", "")))
    if not good:
        return JSONResponse({"errcode": 40093, "errmsg": "agentConfig:fail invalid signature"})
    return JSONResponse({"errcode": 0, "errmsg": "agentConfig:ok"})


@router.get("/sidebar")
def sidebar_page(request: Request, userid: str = "", external_userid: str = "", chat_id: str = "") -> Response:
    try:
        staff_user(request, ALLOWED_ROLES, "企微模拟器仅对管理员和经理开放")
    except Denied as exc:
        return denied_response(exc)
    with unit_of_work() as session:
        chat_name = session.scalar(select(GroupChat.name).where(GroupChat.chat_id == chat_id)) if chat_id else None
        staff = [{"userid": u, "name": n} for n, u in session.execute(
            select(Staff.display_name, Staff.wecom_userid).where(Staff.wecom_userid.is_not(None),
                                                                 Staff.status == StaffStatus.ACTIVE)
            .order_by(Staff.display_name)).all()]
    with STATE.lock:
        contacts = [{"external_userid": ext, "name": c["name"]} for ext, c in STATE.contacts.items()
                    if not userid or userid in c["follow"]]
        chats = [{"chat_id": c["chat_id"], "name": c["name"]} for c in STATE.chats.values()
                 if not userid or c["owner"] == userid]
    chosen = next((s for s in staff if s["userid"] == userid), None)
    entry = "group_chat_tools" if chat_id else "single_chat_tools" if external_userid else ""
    peer = (next((c["name"] for c in chats if c["chat_id"] == chat_id), chat_name or "客户群") if chat_id else
            next((c["name"] for c in contacts if c["external_userid"] == external_userid), external_userid))
    html = _env.get_template("simulator_sidebar.html").render(
        staff=staff, contacts=contacts, chats=chats, userid=userid, chosen=chosen, external_userid=external_userid,
        chat_id=chat_id, entry=entry if chosen else "", peer=peer, sidebar=SIDEBAR_PATH, prefix=config.SIMULATOR_PREFIX)
    response = HTMLResponse(html, headers=HEADERS)
    if chosen is not None:
        response.set_cookie(USER_COOKIE, userid, path=config.SIMULATOR_PREFIX, httponly=True, samesite="lax")
        response.delete_cookie("scrm_sidebar", path="/wecom/sidebar")  # the sidebar logs in afresh as this member
    return response
