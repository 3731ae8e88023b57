"""The payment-notification inbox: verified notifications stored once, processed exactly once.

Receiving (the request path, :mod:`payments.web`): verify (:mod:`payments.notify_crypto`), record the
nonce (a replayed request is refused, nothing stored), ``INSERT … ON CONFLICT DO NOTHING`` the
notification under its own id (a re-delivery is acknowledged, nothing new), enqueue its processing
only when the row is new, answer at once.

Processing (task ``payments.process_notifications``): per id, lock the row (``FOR UPDATE``), skip it if
handled, apply the result to the order (:func:`payments.orders.record_result`), mark it handled in the
same transaction.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core import clock, outbox, pii
from core.db import insert_ignore
from core.errors import AppError
from payments.exceptions import NotificationRejected
from payments.models import PaymentNonce, PaymentNotification
from payments.notify_crypto import Notification
from payments.provider import TradeResult

log = logging.getLogger(__name__)

PROCESS_TASK = "payments.process_notifications"
TASK_IDS = 100


class NonceReplayed(NotificationRejected):
    code = "payment_notification_replayed"
    status = 403
    message = "重复的支付通知请求（nonce 已使用）"


def _summary(n: Notification) -> str:
    r = n.resource
    amount = (r.get("amount") or {}).get("payer_total", (r.get("amount") or {}).get("total"))
    return pii.mask_text(f"{n.event_type} {r.get('out_trade_no', '')} {r.get('trade_state', '')} {amount}")[:300]


def receive_many(session: Session, items: list[Notification]) -> list[int | None | NonceReplayed]:
    """Per item: its new inbox id, None for a re-delivery (acknowledged, not stored again), or
    :class:`NonceReplayed` (refused). The new rows' processing is enqueued (sent after the commit)."""
    now, out, new_ids = clock.now(), [], []
    seen: set[tuple[str, str]] = set()
    for n in items:
        key = (n.nonce[:64], n.timestamp[:16])
        if key in seen or insert_ignore(session, PaymentNonce, {"nonce": key[0], "timestamp": key[1], "seen_at": now},
                                        ["nonce", "timestamp"]) is None:
            out.append(NonceReplayed())
            continue
        seen.add(key)
        inbox_id = insert_ignore(session, PaymentNotification, {
            "event_key": n.id, "event_type": n.event_type,
            "resource_enc": pii.seal(pii.PAYLOAD, json.dumps(n.resource, ensure_ascii=False)),
            "summary": _summary(n), "status": "pending", "attempts": 0, "received_at": now}, ["event_key"])
        out.append(inbox_id)
        if inbox_id is not None:
            new_ids.append(inbox_id)
    for start in range(0, len(new_ids), TASK_IDS):
        outbox.enqueue(session, PROCESS_TASK, *new_ids[start:start + TASK_IDS])
    return out


def resource(row: PaymentNotification) -> dict:
    return json.loads(pii.open_sealed(pii.PAYLOAD, row.resource_enc))


def trade_result(data: dict) -> TradeResult:
    amount = data.get("amount") or {}
    paid = amount.get("payer_total", amount.get("total"))
    success = data.get("success_time")
    return TradeResult(out_trade_no=str(data.get("out_trade_no", "")), trade_state=str(data.get("trade_state", "")),
                       transaction_id=data.get("transaction_id") or None,
                       amount=paid if isinstance(paid, int) and not isinstance(paid, bool) else None,
                       success_at=datetime.fromisoformat(success) if success else None,
                       message=str(data.get("trade_state_desc", "")))


def process(session: Session, inbox_id: int) -> bool:
    """Handle one stored notification exactly once. False when there was nothing to do."""
    from payments import orders

    row = session.scalar(select(PaymentNotification).where(PaymentNotification.id == inbox_id).with_for_update())
    if row is None or row.status != "pending":
        return False
    row.attempts += 1
    try:
        with session.begin_nested():
            if row.event_type.startswith("TRANSACTION."):
                orders.record_result(session, trade_result(resource(row)), source="notify")
            else:
                row.error = "no handler"
    except AppError as exc:  # a business refusal will not change on retry: record it and stop
        row.status, row.error, row.processed_at = "failed", f"{exc.code}: {exc.message}"[:500], clock.now()
        session.flush()
        log.warning("payment notification %s refused: %s", row.id, exc.code)
        return True
    row.status, row.processed_at = "done", clock.now()
    session.flush()
    return True


def stale_pending_ids(session: Session, older_than: timedelta, limit: int = 500) -> list[int]:
    cutoff = clock.now() - older_than
    return list(session.scalars(select(PaymentNotification.id).where(
        PaymentNotification.status == "pending", PaymentNotification.received_at < cutoff)
        .order_by(PaymentNotification.id).limit(limit)))


def prune_nonces(session: Session, older_than: timedelta) -> int:
    result = session.execute(delete(PaymentNonce).where(PaymentNonce.seen_at < clock.now() - older_than))
    return result.rowcount or 0


def give_up(session: Session, max_attempts: int) -> None:
    session.execute(update(PaymentNotification).where(PaymentNotification.status == "pending",
                                                      PaymentNotification.attempts >= max_attempts)
                    .values(status="failed", processed_at=clock.now()))
