"""Request dependencies of the mini-program API: the logged-in customer, the WeChat client, rate limits.

The customer is resolved (and rate limits counted) in their own short units of work BEFORE the request's
session starts its transaction: an attempt refused later still counts, and on SQLite no second writer
waits for the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core import audit, ratelimit
from core.db import unit_of_work
from miniprogram_api import auth
from miniprogram_api.auth import Identity
from miniprogram_api.wechat import WechatClient

bearer = HTTPBearer(auto_error=False, description="登录接口返回的 token：Authorization: Bearer <token>")

LOGIN_LIMIT = (20, timedelta(minutes=5))  # per client IP
PHONE_LIMIT = (10, timedelta(hours=1))  # per customer
SUBMIT_LIMIT = (10, timedelta(hours=1))  # per customer
ID_LAST4_LIMIT = (6, timedelta(days=1))  # per known phone number: guesses at its customer's ID number


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _resolve(token: str | None) -> Identity:
    with unit_of_work() as session:
        return auth.authenticate(session, token)


async def current_identity(request: Request,
                           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Identity:
    ident = await run_in_threadpool(_resolve, credentials.credentials if credentials else None)
    audit.set_context(ident.actor(client_ip(request)), getattr(request.state, "request_id", None))
    return ident


Customer = Annotated[Identity, Depends(current_identity)]


def wechat_client() -> Iterator[WechatClient]:
    client = WechatClient()
    try:
        yield client
    finally:
        client.http.close()


Wechat = Annotated[WechatClient, Depends(wechat_client)]


async def login_limit(request: Request) -> None:
    await run_in_threadpool(ratelimit.hit, f"mp.login:{client_ip(request)}", *LOGIN_LIMIT,
                            "登录过于频繁，请稍后再试")


async def phone_limit(ident: Customer) -> None:
    await run_in_threadpool(ratelimit.hit, f"mp.phone:{ident.customer_id}", *PHONE_LIMIT,
                            "手机号绑定过于频繁，请稍后再试")


async def submit_limit(ident: Customer) -> None:
    await run_in_threadpool(ratelimit.hit, f"mp.submit:{ident.customer_id}", *SUBMIT_LIMIT,
                            "提交过于频繁，请稍后再试")


def id_last4_limit(ident: Identity, binding_token: str) -> None:
    """Count a guess at the last four of the ID number behind the number the token carries (its own unit
    of work, before the request's transaction): 10,000 combinations, six guesses a day, from any account."""
    from core import pii

    phone = auth.binding_phone(ident, binding_token)
    ratelimit.hit(f"mp.id_last4:{pii.blind_index(pii.PHONE, pii.normalize_phone(phone))}", *ID_LAST4_LIMIT,
                  "身份证号后四位核对次数过多，请明天再试或联系客服")
