"""The simulator as WeChat (not WeCom) for the mini-program: access token, phone number, share codes.

| WeChat API | simulated behaviour |
|---|---|
| ``POST cgi-bin/stable_token`` | any appid with a secret gets a token (it carries the appid, for watermarks) |
| ``POST wxa/business/getuserphonenumber`` | a code ``<11-digit phone>[:anything]`` gives that number, once; ``invalid…`` → 40029 |
| ``POST wxa/getwxacodeunlimit`` | a small PNG (the scene in a tEXt chunk); scene ≤ 32 allowed characters (40169), page without a leading ``/`` (41030) |

``sns/jscode2session`` lives with the other handlers in :mod:`bot.simulator.endpoints`.
:func:`register` adds the ``/wxa/...`` route to the simulator app.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.simulator.state import NO_TOKEN_PATHS, STATE, TOKEN_TTL, Body, Query, SimError, SimState, api, ok

NO_TOKEN_PATHS.add("cgi-bin/stable_token")

MP_TOKEN_PREFIX = "simmptok."  # noqa: S105 - a prefix, not a secret
MAX_SCENE = 32
_SCENE_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+$")
_PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def _appid_of(token: str) -> str:
    """Mini-program tokens carry their appid: ``simmptok.<appid>.<id>``."""
    return token.split(".")[1] if token.startswith(MP_TOKEN_PREFIX) and token.count(".") >= 2 else ""


@api("POST", "cgi-bin/stable_token")
def stable_token(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    if body.get("grant_type") != "client_credential":
        raise SimError(40002, "invalid grant_type")
    appid, secret = str(body.get("appid") or ""), str(body.get("secret") or "")
    if not appid or "." in appid:
        raise SimError(40013, "invalid appid")
    if not secret:
        raise SimError(40125, "invalid appsecret")
    token = f"{MP_TOKEN_PREFIX}{appid}.{s.new_id('t')}"
    s.tokens[token] = s.now() + TOKEN_TTL
    return ok(access_token=token, expires_in=TOKEN_TTL)


@api("POST", "wxa/business/getuserphonenumber")
def getuserphonenumber(s: SimState, q: Query, body: Body) -> dict[str, Any]:
    code = str(body.get("code") or "")
    phone = code.split(":", 1)[0]
    if not code or code.startswith("invalid") or not _PHONE_RE.match(phone):
        raise SimError(40029, "invalid code")
    if "phone:" + code in s.used_js_codes:
        raise SimError(40029, "invalid code, code been used")
    s.used_js_codes.add("phone:" + code)
    return ok(phone_info={
        "phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86",
        "watermark": {"timestamp": int(s.now()), "appid": _appid_of(q.get("access_token") or "")},
    })


@api("POST", "wxa/getwxacodeunlimit")
def getwxacodeunlimit(s: SimState, _: Query, body: Body) -> dict[str, Any]:
    scene = str(body.get("scene") or "")
    if not scene or len(scene) > MAX_SCENE or not _SCENE_RE.match(scene):
        raise SimError(40169, "invalid length for scene, or the data is not json string")
    page = str(body.get("page") or "pages/index/index")
    if page.startswith("/"):
        raise SimError(41030, "invalid page")
    return ok(scene=scene, page=page)


@api("POST", "cgi-bin/message/subscribe/send")
def subscribe_send(s: SimState, q: Query, body: Body) -> dict[str, Any]:
    """订阅消息: one message to a user who accepted the template in the mini-program."""
    touser, template = str(body.get("touser") or ""), str(body.get("template_id") or "")
    data = body.get("data")
    if not touser:
        raise SimError(40003, "invalid openid")
    if not template:
        raise SimError(40037, "invalid template_id")
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "value" in v for v in data.values()):
        raise SimError(47003, "argument invalid! data.value empty")
    if touser.startswith("refused"):
        raise SimError(43101, "user refuse to accept the msg")
    s.subscribe_messages.append({"at": s.now(), "appid": _appid_of(q.get("access_token") or ""), "touser": touser,
                                 "template_id": template, "page": body.get("page"), "data": data})
    return ok()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def qr_png(scene: str, size: int = 21) -> bytes:
    """A small grey-scale PNG standing in for the 小程序码, the scene in a tEXt chunk."""
    seed = zlib.crc32(scene.encode())
    rows = b"".join(b"\x00" + bytes(0 if (seed >> ((x * 7 + y * 3) % 31)) & 1 else 255 for x in range(size))
                    for y in range(size))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
            + _chunk(b"tEXt", b"scene\x00" + scene.encode()) + _chunk(b"IDAT", zlib.compress(rows))
            + _chunk(b"IEND", b""))


def register(app: FastAPI) -> None:
    """Serve ``/wxa/...`` on the simulator app: JSON answers, and the share code as an image."""

    async def wxa(request: Request, path: str) -> Response:
        import json

        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        result = STATE.handle(request.method, "wxa/" + path, dict(request.query_params), body)
        if path == "getwxacodeunlimit" and result.get("errcode", 0) == 0:
            return Response(qr_png(result["scene"]), media_type="image/png")
        return JSONResponse(result)

    app.add_api_route("/wxa/{path:path}", wxa, methods=["POST"], include_in_schema=False)
