"""The HTTP edge shared by providers' signed callbacks (WeChat Pay notifications, call-center results).

A bare ASGI endpoint (no framework in the way, matched before the app's routes) reads the body under a cap
and hands ``(headers, body)`` to a :class:`~core.group_commit.GroupCommitter`, whose batch function is
:func:`verify_and_store`: each request verified on its own (a refusal answers that request only), the
verified ones stored in one transaction. Each request is answered after its own row is committed: 204 with no
body, or the refusal's status with a JSON body the package shapes (its provider expects its own format).

Pure ASGI (plain dicts and callables), so the kernel stays web-free; each package mounts its endpoint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.errors import AppError
from core.group_commit import GroupCommitter

__all__ = ["CallbackEndpoint", "Request", "verify_and_store"]

Request = tuple[dict[str, str], bytes]
Opened = TypeVar("Opened")
Outcome = int | None | BaseException


def verify_and_store(requests: Sequence[Request], verify: Callable[[dict[str, str], bytes], Opened],
                     store: Callable[[Session, list[Opened]], Sequence[int | None]], *,
                     rejected: type[AppError]) -> list[Outcome]:
    """One outcome per request: ``rejected`` raised by ``verify`` for it, or what ``store`` gave its message."""
    outcomes: list[Outcome] = [None] * len(requests)
    opened: list[tuple[int, Opened]] = []
    for i, (headers, body) in enumerate(requests):
        try:
            opened.append((i, verify(headers, body)))
        except rejected as exc:
            outcomes[i] = exc
    if opened:
        with unit_of_work() as session:
            stored = store(session, [message for _, message in opened])
        for (i, _), outcome in zip(opened, stored, strict=True):
            outcomes[i] = outcome
    return outcomes


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class CallbackEndpoint:
    """``POST`` a signed callback: 204 once stored (or known already), the refusal otherwise.

    ``too_large`` / ``disconnected`` make the package's own refusals; ``error_payload`` shapes a refusal's
    JSON body the way the provider reads it."""

    def __init__(self, committer: Callable[[], GroupCommitter[Request, Any]], *, max_body: int,
                 too_large: Callable[[], AppError], disconnected: Callable[[], AppError],
                 error_payload: Callable[[AppError], dict[str, Any]]) -> None:
        self.committer = committer
        self.max_body = max_body
        self.too_large = too_large
        self.disconnected = disconnected
        self.error_payload = error_payload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            body = await self._read_body(scope, receive)
            await asyncio.wrap_future(self.committer().submit((headers, body)))
        except AppError as exc:
            await _respond(send, exc.status, json.dumps(self.error_payload(exc), ensure_ascii=False).encode())
            return
        await _respond(send, 204)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise self.too_large()
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise self.disconnected()
            body += message.get("body", b"")
            if len(body) > self.max_body:
                raise self.too_large()
            if not message.get("more_body"):
                return body


async def _respond(send: Send, status: int, body: bytes = b"") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
