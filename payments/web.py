"""The payment package's HTTP edge: the WeChat Pay notification endpoint and, while payments are
simulated, the simulator at ``/_pay_sim``.

``POST /payments/wechat/notify`` verifies (signature with the platform public key, key id, timestamp
window, AES-GCM resource), records the nonce and stores the notification, and answers at once:
204 with no body when stored or already known; 4xx ``{"code": "FAIL", "message": …}`` when refused
(nothing stored; WeChat Pay retries). Like the WeCom callback it is a bare ASGI endpoint matched first,
and its writes go through a group committer (one transaction for the notifications that arrive
together, each answered only after its own row is committed).
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
from payments import config, inbox, notify_crypto
from payments.exceptions import NotificationRejected

Request = tuple[dict[str, str], bytes]


def _write(requests: list[Request]) -> list[int | None | BaseException]:
    cfg = config.get()
    outcomes: list[int | None | BaseException] = [None] * len(requests)
    opened: list[tuple[int, notify_crypto.Notification]] = []
    for i, (headers, body) in enumerate(requests):
        try:
            opened.append((i, notify_crypto.verify(headers, body, public_key=cfg.platform_public_key,
                                                   public_key_id=cfg.platform_public_key_id,
                                                   apiv3_key=cfg.apiv3_key, window_seconds=cfg.window_seconds)))
        except NotificationRejected as exc:
            outcomes[i] = exc
    if opened:
        with unit_of_work() as session:
            stored = inbox.receive_many(session, [n for _, n in opened])
        for (i, _), outcome in zip(opened, stored, strict=True):
            outcomes[i] = outcome
    return outcomes


_committer: PerProcess[Request, int | None] = PerProcess(
    lambda: GroupCommitter(_write, max_batch=64, name="scrm-pay-notify"))


def committer() -> GroupCommitter[Request, int | None]:
    """This process's committer (a forked web worker gets its own thread)."""
    return _committer.get()


async def _respond(send: Send, status: int, body: bytes = b"") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > notify_crypto.MAX_BODY_BYTES:
            raise NotificationRejected("支付通知内容过大", code="payment_notification_too_large")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise NotificationRejected("连接已断开", code="payment_notification_disconnected")
        body += message.get("body", b"")
        if len(body) > notify_crypto.MAX_BODY_BYTES:
            raise NotificationRejected("支付通知内容过大", code="payment_notification_too_large")
        if not message.get("more_body"):
            return body


class NotifyEndpoint:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            body = await _read_body(scope, receive)
            await asyncio.wrap_future(committer().submit((headers, body)))
        except AppError as exc:
            payload = json.dumps({"code": "FAIL", "message": exc.message, "reason": exc.code},
                                 ensure_ascii=False).encode()
            await _respond(send, exc.status, payload)
            return
        await _respond(send, 204)


def mount(app: FastAPI) -> None:
    app.router.routes.insert(0, Route(config.NOTIFY_PATH, NotifyEndpoint(), methods=["POST"],
                                      include_in_schema=False))
    if config.simulated():
        from payments.simulator.app import create_simulator_app

        app.mount(config.SIMULATOR_PREFIX, create_simulator_app(), name="pay-simulator")
