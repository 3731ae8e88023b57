"""The signature of the call center's callbacks: HMAC-SHA256 over ``timestamp\\nnonce\\nbody`` with the
shared callback secret, base64, in ``X-Telephony-Signature`` beside ``X-Telephony-Timestamp`` (Unix
seconds) and ``X-Telephony-Nonce``. A callback older (or newer) than the window is refused.

Used by both sides: the simulator signs with :func:`sign`, our endpoint checks with :func:`verify`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from postloan.telephony.exceptions import CallbackRejected

MAX_BODY_BYTES = 16 * 1024
TIMESTAMP, NONCE, SIGNATURE = "x-telephony-timestamp", "x-telephony-nonce", "x-telephony-signature"


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def headers_for(secret: str, body: bytes, *, timestamp: str, nonce: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Telephony-Timestamp": timestamp, "X-Telephony-Nonce": nonce,
            "X-Telephony-Signature": sign(secret, timestamp, nonce, body)}


def verify(headers: dict[str, str], body: bytes, *, secret: str, window_seconds: int,
           now: float | None = None) -> dict[str, Any]:
    """The callback's JSON, or :class:`CallbackRejected` (headers' names lower-case)."""
    timestamp, nonce, signature = headers.get(TIMESTAMP, ""), headers.get(NONCE, ""), headers.get(SIGNATURE, "")
    if not (timestamp and nonce and signature):
        raise CallbackRejected("回调缺少签名", code="telephony_callback_unsigned")
    if not hmac.compare_digest(sign(secret, timestamp, nonce, body), signature):
        raise CallbackRejected("回调签名校验失败", code="telephony_callback_bad_signature")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > window_seconds:
        raise CallbackRejected("回调时间戳过期", code="telephony_callback_stale")
    try:
        data = json.loads(body)
    except ValueError:
        raise CallbackRejected("回调内容不是 JSON", code="telephony_callback_malformed", status=400) from None
    if not isinstance(data, dict) or not str(data.get("event_id") or "") or not str(data.get("out_call_no") or ""):
        raise CallbackRejected("回调缺少 event_id 或 out_call_no", code="telephony_callback_malformed", status=400)
    if len(str(data["event_id"])) > 64 or len(str(data["out_call_no"])) > 32:
        raise CallbackRejected("回调编号过长", code="telephony_callback_malformed", status=400)
    return data
