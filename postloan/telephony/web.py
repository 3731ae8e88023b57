"""The telephony HTTP edge: the call center's callback endpoint and, while telephony is simulated, the
simulator at ``/_tel_sim``.

``POST /postloan/telephony/callback`` verifies the HMAC signature and the timestamp window (:mod:`.signing`),
stores the callback under its event id and answers at once: 204 when stored or already known (a
re-delivery), 4xx ``{"code", "message"}`` when refused (nothing stored). Like the payment notification
endpoint it is a bare ASGI route matched first whose writes go through a group committer (one
transaction for the callbacks that arrive together, each answered after its own row is committed).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from core.db import unit_of_work
from core.errors import AppError
from core.group_commit import GroupCommitter, PerProcess
from postloan.telephony import callbacks, config, signing
from postloan.telephony.exceptions import CallbackRejected

Request = tuple[dict[str, str], bytes]


def _write(requests: list[Request]) -> list[int | None | BaseException]:
    cfg = config.get()
    outcomes: list[int | None | BaseException] = [None] * len(requests)
    verified: list[tuple[int, dict]] = []
    for i, (headers, body) in enumerate(requests):
        try:
            verified.append((i, signing.verify(headers, body, secret=cfg.callback_secret,
                                               window_seconds=cfg.window_seconds)))
        except CallbackRejected as exc:
            outcomes[i] = exc
    if verified:
        with unit_of_work() as session:
            stored = callbacks.receive_many(session, [data for _, data in verified])
        for (i, _), outcome in zip(verified, stored, strict=True):
            outcomes[i] = outcome
    return outcomes


_committer: PerProcess[Request, int | None] = PerProcess(
    lambda: GroupCommitter(_write, max_batch=128, name="scrm-tel-callback"))


def committer() -> GroupCommitter[Request, int | None]:
    return _committer.get()


async def _respond(send: Send, status: int, body: bytes = b"") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise CallbackRejected("连接已断开", code="telephony_callback_disconnected", status=400)
        body += message.get("body", b"")
        if len(body) > signing.MAX_BODY_BYTES:
            raise CallbackRejected("回调内容过大", code="telephony_callback_too_large", status=413)
        if not message.get("more_body"):
            return body


class CallbackEndpoint:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            body = await _read_body(scope, receive)
            await asyncio.wrap_future(committer().submit((headers, body)))
        except AppError as exc:
            payload = json.dumps({"code": exc.code, "message": exc.message}, ensure_ascii=False).encode()
            await _respond(send, exc.status, payload)
            return
        await _respond(send, 204)


def mount(app: FastAPI) -> None:
    app.router.routes.insert(0, Route(config.CALLBACK_PATH, CallbackEndpoint(), methods=["POST"],
                                      include_in_schema=False))
    if config.simulated():
        from postloan.telephony.simulator.app import create_simulator_app

        app.mount(config.SIMULATOR_PREFIX, create_simulator_app(), name="tel-simulator")
