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

from fastapi import FastAPI
from starlette.routing import Route

from core.group_commit import GroupCommitter, PerProcess
from core.signed_callbacks import CallbackEndpoint, Request, verify_and_store
from payments import config, inbox, notify_crypto
from payments.exceptions import NotificationRejected


def _write(requests: list[Request]) -> list[int | None | BaseException]:
    cfg = config.get()

    def verify(headers: dict[str, str], body: bytes) -> notify_crypto.Notification:
        return notify_crypto.verify(headers, body, public_key=cfg.platform_public_key,
                                    public_key_id=cfg.platform_public_key_id, apiv3_key=cfg.apiv3_key,
                                    window_seconds=cfg.window_seconds)

    return verify_and_store(requests, verify, inbox.receive_many, rejected=NotificationRejected)


_committer: PerProcess[Request, int | None] = PerProcess(
    lambda: GroupCommitter(_write, max_batch=64, name="scrm-pay-notify"))


def committer() -> GroupCommitter[Request, int | None]:
    """This process's committer (a forked web worker gets its own thread)."""
    return _committer.get()


notify_endpoint = CallbackEndpoint(
    committer, max_body=notify_crypto.MAX_BODY_BYTES,
    too_large=lambda: NotificationRejected("支付通知内容过大", code="payment_notification_too_large"),
    disconnected=lambda: NotificationRejected("连接已断开", code="payment_notification_disconnected"),
    error_payload=lambda exc: {"code": "FAIL", "message": exc.message, "reason": exc.code})


def mount(app: FastAPI) -> None:
    app.router.routes.insert(0, Route(config.NOTIFY_PATH, notify_endpoint, methods=["POST"],
                                      include_in_schema=False))
    if config.simulated():
        from payments.simulator.app import create_simulator_app

        app.mount(config.SIMULATOR_PREFIX, create_simulator_app(), name="pay-simulator")
