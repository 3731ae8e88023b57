"""The simulator's HTTP face: WeCom's ``/cgi-bin/...`` API and the ``/_admin/...`` controls.

Admin controls. The simulator exists only when no real WeCom is configured (and production refuses to
start on it, :mod:`core.simulators`), but even so its state holds customer names and message text: the
controls answer a console session of an admin or manager, or a client on this machine's loopback
interface that came through no proxy (the driver of this process, tests, a developer's curl). Anyone
else gets 403 (:func:`admin_access`).

| endpoint | does |
|---|---|
| ``POST /_admin/reset`` | forget everything (tokens, log, contacts, clock offset …) |
| ``GET /_admin/requests[?path=…]`` | the log of API requests received (tokens shortened) |
| ``GET /_admin/state`` | the whole simulated corp as JSON |
| ``GET /_admin/clock`` / ``POST /_admin/advance {"seconds": n}`` | simulated time |
| ``POST /_admin/expire_tokens`` | every issued access token now answers 42001 |
| ``POST /_admin/arm {"errcode": 45009, "times": 2, "path": "transfer"}`` | the next matching calls fail |
| ``POST /_admin/config {"page_size": 2, "way_quota": 10, "tag_cap": 5}`` | shrink limits for tests |
| ``POST /_admin/transfer_outcome {"external_userid": …, "outcome": "refuse"\\|"limit"\\|""}`` | scenario |
| ``POST /_admin/contact``, ``/contacts`` (many, no welcome code), ``/contact/remove``, ``/contact/edit``, ``/user/leave``, ``/chat``,
  ``/chat/member``, ``/tag``, ``/groupmsg/confirm`` | what the driver does on WeCom's side |
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from bot.simulator import endpoints  # noqa: F401 - registers the API handlers
from bot.simulator.endpoints import confirm_groupmsg
from bot.simulator.state import STATE, SimError, SimState
from core.db import unit_of_work
from core.security import is_direct_loopback
from core.settings import get_settings
from crm import auth_service
from crm.models import Role

ADMIN_ROLES = frozenset({Role.ADMIN.value, Role.MANAGER.value})
def _is_direct_loopback(request: Request) -> bool:
    return is_direct_loopback(request.client.host if request.client else None, request.headers)


def _is_console_admin(request: Request) -> bool:
    token = request.cookies.get(get_settings().session_cookie_name)
    if not token:
        return False
    with unit_of_work() as session:
        row = auth_service.resolve_session(session, token)
        return row is not None and row.staff.role in ADMIN_ROLES


def admin_access(request: Request) -> None:
    """The simulator's controls: a loopback client, or an admin's / manager's console session."""
    if not (_is_direct_loopback(request) or _is_console_admin(request)):
        raise HTTPException(403, "企微模拟器的管理接口仅对本机或已登录的管理员、经理开放")


admin = APIRouter(prefix="/_admin", dependencies=[Depends(admin_access)])


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise SimError(47001, "data format error")
    return data


def _answer(fn: Any, state: SimState, body: dict[str, Any]) -> JSONResponse:
    with state.lock:
        try:
            result = fn(state, body) or {}
        except SimError as exc:
            return JSONResponse({"errcode": exc.errcode, "errmsg": exc.errmsg})
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"errcode": 40058, "errmsg": f"bad admin request: {exc}"}, status_code=400)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "now": state.now(), **result})


def _admin(path: str) -> Any:
    def register(fn: Any) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            try:
                body = await _json(request)
            except (ValueError, SimError):
                return JSONResponse({"errcode": 47001, "errmsg": "data format error"}, status_code=400)
            return _answer(fn, STATE, body)

        admin.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
        return fn

    return register


@admin.get("/requests", include_in_schema=False)
def requests_log(path: str = "", since: int = 0) -> JSONResponse:
    with STATE.lock:
        rows = [r for r in STATE.requests if r["seq"] > since and (not path or path in r["path"])]
    return JSONResponse({"requests": rows})


@admin.get("/state", include_in_schema=False)
def state_dump() -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(STATE.snapshot(), default=sorted)))


@admin.get("/clock", include_in_schema=False)
def clock_now() -> JSONResponse:
    return JSONResponse({"now": STATE.now(), "offset": STATE.offset})


@_admin("/reset")
def _reset(s: SimState, _: dict[str, Any]) -> dict[str, Any]:
    s.reset()
    return {}


@_admin("/advance")
def _advance(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    seconds = float(body["seconds"])
    if seconds < 0:
        raise SimError(40058, "the simulated clock only moves forward")
    s.advance(seconds)
    return {"offset": s.offset}


@_admin("/expire_tokens")
def _expire(s: SimState, _: dict[str, Any]) -> dict[str, Any]:
    return {"expired": s.expire_tokens()}


@_admin("/arm")
def _arm(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    s.arm(int(body["errcode"]), int(body.get("times", 1)), body.get("path") or None)
    return {}


@_admin("/config")
def _config(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    if "page_size" in body:
        s.page_size = int(body["page_size"]) if body["page_size"] else None
    if "way_quota" in body:
        s.way_quota = int(body["way_quota"])
    if "tag_cap" in body:
        s.tag_cap = int(body["tag_cap"])
    return {}


@_admin("/transfer_outcome")
def _outcome(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    outcome = body.get("outcome") or ""
    if outcome not in ("", "refuse", "limit"):
        raise SimError(40058, "outcome must be refuse, limit or empty")
    ext = body["external_userid"]
    s.transfer_outcomes[ext] = outcome
    for t in s.transfers:  # a pending transfer of this customer takes the outcome too
        if t["external_userid"] == ext and not t["applied"]:
            t["outcome"] = outcome or None
    return {}


@_admin("/contact")
def _contact(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    code = s.add_contact(body["userid"], body["external_userid"], body.get("name") or "", body.get("state") or "",
                         body.get("unionid") or "", int(body.get("add_way") or 1), bool(body.get("welcome", True)))
    return {"welcome_code": code}


@_admin("/contacts")
def _contacts(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    """Many contacts at once (no welcome codes): ``{"contacts": [{"userid", "external_userid", "name"}, …]}``."""
    for c in body["contacts"]:
        s.add_contact(c["userid"], c["external_userid"], c.get("name") or "", welcome=False)
    return {"added": len(body["contacts"])}


@_admin("/contact/remove")
def _contact_remove(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    s.remove_follow(body["userid"], body["external_userid"])
    return {}


@_admin("/contact/edit")
def _contact_edit(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    rel = s.follow(body["external_userid"], body["userid"])
    if rel is None:
        raise SimError(84061, "not external contact")
    for field in ("remark", "description"):
        if field in body:
            rel[field] = body[field]
    return {}


@_admin("/user/leave")
def _leave(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    s.leave(body["userid"])
    return {}


@_admin("/chat")
def _chat(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    return {"chat_id": s.create_chat(body["owner"], body.get("name") or "客户群", body.get("chat_id"))}


@_admin("/chat/member")
def _chat_member(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    s.chat_member(body["chat_id"], body["member"], body.get("action", "add"),
                  member_type=int(body.get("member_type") or 2), join_scene=int(body.get("join_scene") or 3))
    return {"member_count": len(s.chats[body["chat_id"]]["member_list"])}


@_admin("/tag")
def _tag(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    """A tag changed in WeCom's admin console (what a change_external_tag callback reports)."""
    change = body["change_type"]
    now = int(s.now())
    if change == "create":
        group = s.tag_groups.setdefault(body.get("group_id") or "etsimconsole", {
            "group_id": body.get("group_id") or "etsimconsole", "group_name": body.get("group_name") or "管理后台",
            "create_time": now, "order": 0, "created_by": "console", "tag": []})
        tag_id = s.new_id("etsimtag")
        group["tag"].append({"id": tag_id, "name": body.get("name") or tag_id, "create_time": now, "order": 0,
                             "created_by": "console"})
        return {"id": tag_id, "group_id": group["group_id"]}
    for group in list(s.tag_groups.values()):
        for tag in list(group["tag"]):
            if tag["id"] == body.get("id"):
                if change == "update" and body.get("name"):
                    tag["name"] = body["name"]
                elif change == "delete":
                    group["tag"].remove(tag)
                return {"id": tag["id"], "group_id": group["group_id"]}
    return {"id": body.get("id", "")}


@_admin("/groupmsg/confirm")
def _confirm(s: SimState, body: dict[str, Any]) -> dict[str, Any]:
    result = confirm_groupmsg(s, body["msgid"], body["userid"])
    return {"results": result["results"]}


def create_simulator_app() -> FastAPI:
    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    from bot.simulator import console, sidebar_page, wechat_mp

    app = FastAPI(title="企业微信模拟器", docs_url=None, redoc_url=None, openapi_url=None)

    async def api(request: Request, path: str) -> JSONResponse:
        try:
            body = await _json(request) if request.method == "POST" else {}
        except (ValueError, SimError):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        query = dict(request.query_params)
        result = STATE.handle(request.method, path, query, body)
        return JSONResponse(result)

    async def cgi(request: Request, path: str) -> JSONResponse:
        return await api(request, "cgi-bin/" + path)

    async def sns(request: Request, path: str) -> JSONResponse:
        return await api(request, "sns/" + path)

    app.add_api_route("/cgi-bin/{path:path}", cgi, methods=["GET", "POST"], include_in_schema=False)
    app.add_api_route("/sns/{path:path}", sns, methods=["GET"], include_in_schema=False)
    wechat_mp.register(app)  # WeChat's mini-program APIs: stable_token, phone number, wxacode
    app.include_router(sidebar_page.router)  # before /_admin: its /_admin/jsapi/verify is a plain JSON route
    app.include_router(admin)
    app.include_router(console.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="wecom-sim-static")
    return app
