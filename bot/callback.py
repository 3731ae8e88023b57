"""``/wecom/callback``: GET URL verification, POST events and messages.

The POST path verifies, stores and answers; it never waits for processing or for a WeCom API call.
Forged, stale, replayed, malformed, oversized or entity-laden requests get a 4xx and store nothing.

This is the one endpoint WeCom hits at volume, so it is a bare ASGI endpoint matched before every
other route (no FastAPI parameter parsing, dependency solving or response classes), and its writes
go through a group committer: the callbacks that arrive while one batch commits are verified,
decrypted and stored together, in one statement and one commit (:func:`bot.inbox.receive_many`).
Each request still answers "success" only after its own row is committed.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bot import config, inbox
from bot.callback_crypto import MAX_BODY_BYTES, CallbackRejected
from core.db import unit_of_work
from core.errors import AppError
from core.group_commit import GroupCommitter, PerProcess

PATH = "/wecom/callback"

Request = tuple[bytes, str, str, str]  # body, msg_signature, timestamp, nonce


def _write(requests: list[Request]) -> list[int | None | BaseException]:
    """Open each request (its own refusal if forged or malformed), then store the good ones together."""
    crypto = config.callback_crypto()
    outcomes: list[int | None | BaseException] = [None] * len(requests)
    opened: list[tuple[int, inbox.Incoming]] = []
    for i, (body, msg_signature, timestamp, nonce) in enumerate(requests):
        try:
            _, fields = crypto.open_message(msg_signature, timestamp, nonce, body)
        except CallbackRejected as exc:
            outcomes[i] = exc
            continue
        opened.append((i, inbox.Incoming(fields, nonce, timestamp, inbox.body_digest(body))))
    if opened:
        with unit_of_work() as session:
            stored = inbox.receive_many(session, [item for _, item in opened])
        for (i, _), outcome in zip(opened, stored, strict=True):
            outcomes[i] = outcome
    return outcomes


_committer: PerProcess[Request, int | None] = PerProcess(
    lambda: GroupCommitter(_write, max_batch=64, name="scrm-wecom-callback"))


def committer() -> GroupCommitter[Request, int | None]:
    """This process's committer (a forked web worker gets its own thread)."""
    return _committer.get()


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            raise CallbackRejected("回调内容过大", code="wecom_body_too_large")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise CallbackRejected("连接已断开", code="wecom_client_disconnected")
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise CallbackRejected("回调内容过大", code="wecom_body_too_large")
        if not message.get("more_body"):
            return body


class CallbackEndpoint:
    """The ASGI endpoint of ``/wecom/callback`` (GET and POST)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        signature, timestamp, nonce = (query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        try:
            if scope["method"] in ("GET", "HEAD"):
                echo = config.callback_crypto().verify_url(signature, timestamp, nonce, query.get("echostr", ""))
                await _respond(send, 200, echo.encode(), b"text/plain; charset=utf-8")
                return
            body = await _read_body(scope, receive)
            await asyncio.wrap_future(committer().submit((body, signature, timestamp, nonce)))
        except AppError as exc:
            payload = json.dumps(exc.to_dict(), ensure_ascii=False).encode()
            await _respond(send, exc.status, payload, b"application/json")
            return
        await _respond(send, 200, b"success", b"text/plain; charset=utf-8")


def mount(app: FastAPI) -> None:
    """First in the route table: the busiest path is matched before the console's hundreds of routes."""
    app.router.routes.insert(0, Route(PATH, CallbackEndpoint(), methods=["GET", "POST"], include_in_schema=False))
