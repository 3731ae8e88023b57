"""The telephony HTTP edge: the call center's callback endpoint and, while telephony is simulated, the
simulator at ``/_tel_sim``.

``POST /postloan/telephony/callback`` verifies the HMAC signature and the timestamp window (:mod:`.signing`),
stores the callback under its event id and answers at once: 204 when stored or already known (a
re-delivery), 4xx ``{"code", "message"}`` when refused (nothing stored). Like the payment notification
endpoint it is a bare ASGI route matched first whose writes go through a group committer (one
transaction for the callbacks that arrive together, each answered after its own row is committed).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from core.group_commit import GroupCommitter, PerProcess
from core.signed_callbacks import CallbackEndpoint, Request, verify_and_store
from postloan.telephony import callbacks, config, signing
from postloan.telephony.exceptions import CallbackRejected


def _write(requests: list[Request]) -> list[int | None | BaseException]:
    cfg = config.get()

    def verify(headers: dict[str, str], body: bytes) -> dict:
        return signing.verify(headers, body, secret=cfg.callback_secret, window_seconds=cfg.window_seconds)

    return verify_and_store(requests, verify, callbacks.receive_many, rejected=CallbackRejected)


_committer: PerProcess[Request, int | None] = PerProcess(
    lambda: GroupCommitter(_write, max_batch=128, name="scrm-tel-callback"))


def committer() -> GroupCommitter[Request, int | None]:
    return _committer.get()


callback_endpoint = CallbackEndpoint(
    committer, max_body=signing.MAX_BODY_BYTES,
    too_large=lambda: CallbackRejected("回调内容过大", code="telephony_callback_too_large", status=413),
    disconnected=lambda: CallbackRejected("连接已断开", code="telephony_callback_disconnected", status=400),
    error_payload=lambda exc: {"code": exc.code, "message": exc.message})


def mount(app: FastAPI) -> None:
    app.router.routes.insert(0, Route(config.CALLBACK_PATH, callback_endpoint, methods=["POST"],
                                      include_in_schema=False))
    if config.simulated():
        from postloan.telephony.simulator.app import create_simulator_app

        app.mount(config.SIMULATOR_PREFIX, create_simulator_app(), name="tel-simulator")
