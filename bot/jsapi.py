"""The WeCom JS-SDK's server side: the ``wx.agentConfig`` signature over the app's jsapi ticket.

WeCom's rule (the same as WeChat's JS-SDK): sha1 of
``jsapi_ticket=<ticket>&noncestr=<nonce>&timestamp=<seconds>&url=<page URL without its #fragment>``,
the keys in that order, the values raw (not URL-encoded). The ticket comes from
:meth:`bot.gateway.Gateway.agent_jsapi_ticket`, cached like the access token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from bot import config

JS_API_LIST = ("getContext", "getCurExternalContact", "getCurExternalChat", "sendChatMessage")


def signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url.split('#', 1)[0]}"
    return hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324 - WeCom's algorithm


def agent_config(url: str, ticket: str, *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, Any]:
    """What ``ww.register``'s ``getAgentConfigSignature`` returns, plus the corp and agent it is for."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_urlsafe(12)
    return {"corpId": config.corp_id(), "agentId": config.agent_id(), "timestamp": timestamp, "nonceStr": nonce,
            "signature": signature(ticket, nonce, timestamp, url)}
