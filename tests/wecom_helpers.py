"""Build properly signed and encrypted WeCom callbacks, as WeCom (or the simulator's driver) sends them."""

from __future__ import annotations

import itertools
import time
from urllib.parse import urlencode

from bot import config

_nonce = itertools.count(1)


def event_xml(**fields: str) -> str:
    body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return f"<xml>{body}</xml>"


def signed_request(plain_xml: str, *, nonce: str | None = None, timestamp: str | None = None) -> tuple[str, str]:
    """(url with query string, body) for POST /wecom/callback."""
    crypto = config.callback_crypto()
    nonce = nonce or f"n{next(_nonce)}{time.time_ns()}"
    timestamp = timestamp or str(int(time.time()))
    body, sig = crypto.seal(plain_xml, nonce, timestamp)
    return "/wecom/callback?" + urlencode({"msg_signature": sig, "timestamp": timestamp, "nonce": nonce}), body
