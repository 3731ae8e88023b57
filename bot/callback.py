"""``/wecom/callback``: GET URL verification, POST events and messages.

The POST path verifies, stores and answers; it never waits for processing or for a WeCom API call.
Forged, stale, replayed, malformed, oversized or entity-laden requests get a 4xx and store nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from bot import config, inbox
from bot.callback_crypto import MAX_BODY_BYTES, CallbackRejected
from core.db import unit_of_work

router = APIRouter(include_in_schema=False)


@router.get("/wecom/callback")
def verify_url(msg_signature: str = "", timestamp: str = "", nonce: str = "", echostr: str = "") -> PlainTextResponse:
    return PlainTextResponse(config.callback_crypto().verify_url(msg_signature, timestamp, nonce, echostr))


# The store runs on threads of its own (verify, decrypt, one statement, commit), at most as many at once as
# the connection pool holds: the shared threadpool would let 40 requests check out 40 connections, and
# connections above the pool size are opened and closed per request. (Also cheaper than anyio's hop.)
STORE_THREADS = 4
_executor: ThreadPoolExecutor | None = None


def _store_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="scrm-wecom-callback")
    return _executor


def _store(body: bytes, msg_signature: str, timestamp: str, nonce: str) -> None:
    _, fields = config.callback_crypto().open_message(msg_signature, timestamp, nonce, body)
    with unit_of_work() as session:
        inbox.receive(session, fields, nonce, timestamp, load=False)


@router.post("/wecom/callback")
async def receive(request: Request, msg_signature: str = "", timestamp: str = "", nonce: str = "") -> PlainTextResponse:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise CallbackRejected("回调内容过大", code="wecom_body_too_large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise CallbackRejected("回调内容过大", code="wecom_body_too_large")
    context = contextvars.copy_context()
    await asyncio.get_running_loop().run_in_executor(_store_executor(), context.run, _store, body, msg_signature,
                                                     timestamp, nonce)
    return PlainTextResponse("success")
