"""The payment-notification inbox: verified notifications stored once, processed exactly once.

Receiving (the request path, :mod:`payments.web`): verify (:mod:`payments.notify_crypto`), record the
nonce with the body's digest (:mod:`core.callback_nonces`, the WeCom callbacks' rule: a byte-identical
re-delivery of a request is acknowledged, a known nonce with another body refused, nothing stored),
``INSERT … ON CONFLICT DO NOTHING`` the notification under its own id (a re-delivery under a fresh nonce
is acknowledged, nothing new), enqueue its processing only when the row is new, answer at once.

Processing (task ``payments.process_notifications``): per id, lock the row (``FOR UPDATE``), skip it if
handled, apply the result to the order (:func:`payments.orders.record_result`), mark it handled in the
same transaction. ``TRANSACTION.*`` notifications go to :func:`payments.orders.record_result`,
``REFUND.*`` ones to :func:`payments.refunds.record_result`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from core import callback_nonces, clock, outbox, pii
from core.db import UTCDateTime, insert_ignore, is_postgres
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
    message = "重复的支付通知请求（nonce 已用于另一内容）"


def _summary(n: Notification) -> str:
    r = n.resource
    amount = r.get("amount") or {}
    if n.event_type.startswith("REFUND."):
        text = f"{n.event_type} {r.get('out_refund_no', '')} {r.get('refund_status', '')} {amount.get('refund')}"
    else:
        text = f"{n.event_type} {r.get('out_trade_no', '')} {r.get('trade_state', '')} "\
               f"{amount.get('payer_total', amount.get('total'))}"
    return pii.mask_text(text)[:300]


# Per stored row: (nonce new, new inbox id or None, a known nonce came with the same body).
Stored = tuple[bool, int | None, bool]

# PostgreSQL: a whole batch in ONE statement (as bot.inbox does): the nonces first; a notification is
# written only if its nonce was new, and a re-delivery's notification id conflicts. A known nonce whose
# stored digest equals the request's is a byte-identical re-delivery (same_body).
_RECEIVE_PG = text("""
WITH input AS (
    SELECT * FROM unnest(CAST(:nonces AS text[]), CAST(:timestamps AS text[]), CAST(:event_keys AS text[]),
                         CAST(:event_types AS text[]), CAST(:resources AS text[]), CAST(:summaries AS text[]),
                         CAST(:digests AS text[]))
        WITH ORDINALITY AS t(nonce, ts, event_key, event_type, resource_enc, summary, digest, ord)
), n AS (
    INSERT INTO payment_nonce (nonce, "timestamp", digest, seen_at) SELECT nonce, ts, digest, :now FROM input
    ON CONFLICT (nonce, "timestamp") DO NOTHING RETURNING nonce, "timestamp"
), i AS (
    INSERT INTO payment_notification (event_key, event_type, resource_enc, summary, status, attempts, received_at)
    SELECT DISTINCT ON (input.event_key) input.event_key, event_type, resource_enc, summary, 'pending', 0, :now
    FROM input JOIN n ON n.nonce = input.nonce AND n."timestamp" = input.ts
    ORDER BY input.event_key, input.ord
    ON CONFLICT (event_key) DO NOTHING RETURNING id, event_key
)
SELECT input.ord, n.nonce IS NOT NULL AS nonce_new, i.id AS inbox_id,
       COALESCE(known.digest = input.digest, false) AS same_body
FROM input
LEFT JOIN n ON n.nonce = input.nonce AND n."timestamp" = input.ts
LEFT JOIN i ON i.event_key = input.event_key
LEFT JOIN payment_nonce known ON n.nonce IS NULL AND known.nonce = input.nonce AND known."timestamp" = input.ts
ORDER BY input.ord
""").bindparams(bindparam("now", type_=UTCDateTime()))


def _row(n: Notification) -> dict:
    digest = n.digest or callback_nonces.body_digest(json.dumps(
        [n.id, n.event_type, n.resource], ensure_ascii=False, sort_keys=True).encode())
    return {"nonce": n.nonce[:64], "timestamp": n.timestamp[:16], "digest": digest, "event_key": n.id,
            "event_type": n.event_type,
            "resource_enc": pii.seal(pii.PAYLOAD, json.dumps(n.resource, ensure_ascii=False)),
            "summary": _summary(n)}


def _store_pg(session: Session, rows: list[dict]) -> list[Stored]:
    params = {name: [row[key] for row in rows] for name, key in (
        ("nonces", "nonce"), ("timestamps", "timestamp"), ("event_keys", "event_key"),
        ("event_types", "event_type"), ("resources", "resource_enc"), ("summaries", "summary"),
        ("digests", "digest"))}
    return [(r.nonce_new, r.inbox_id, r.same_body) for r in session.execute(_RECEIVE_PG, {**params, "now": clock.now()})]


def _store_each(session: Session, rows: list[dict]) -> list[Stored]:
    now, out = clock.now(), []
    for row in rows:
        nonce_new, same_body = callback_nonces.record(session, PaymentNonce, nonce=row["nonce"],
                                                      timestamp=row["timestamp"], digest=row["digest"], now=now)
        if not nonce_new:
            out.append((False, None, same_body))
            continue
        out.append((True, insert_ignore(session, PaymentNotification, {
            "event_key": row["event_key"], "event_type": row["event_type"], "resource_enc": row["resource_enc"],
            "summary": row["summary"], "status": "pending", "attempts": 0, "received_at": now}, ["event_key"]), False))
    return out


def receive_many(session: Session, items: list[Notification]) -> list[int | None | NonceReplayed]:
    """Per item: its new inbox id, None for a re-delivery (acknowledged, not stored again: the same
    notification under a fresh nonce, or the very same request again), or :class:`NonceReplayed` (a known
    nonce with another body: refused). The new rows' processing is enqueued (sent after the commit)."""
    rows = [_row(n) for n in items]
    repeated = callback_nonces.repeats_in_batch(rows)  # never written: the first of the batch decides
    to_store = [row for i, row in enumerate(rows) if i not in repeated]
    stored = iter(_store_pg(session, to_store) if is_postgres(session) else _store_each(session, to_store))
    out: list[int | None | NonceReplayed] = []
    new_ids: list[int] = []
    for i in range(len(rows)):
        nonce_new, inbox_id, same_body = (False, None, repeated[i]) if i in repeated else next(stored)
        seen = callback_nonces.outcome(nonce_new, same_body)
        if seen != "new":
            out.append(None if seen == "redelivery" else NonceReplayed())
        elif inbox_id is None or inbox_id in new_ids:  # a re-delivery, also one inside this batch
            out.append(None)
        else:
            out.append(inbox_id)
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
    from payments import orders, refunds

    row = session.scalar(select(PaymentNotification).where(PaymentNotification.id == inbox_id).with_for_update())
    if row is None or row.status != "pending":
        return False
    row.attempts += 1
    try:
        with session.begin_nested():
            if row.event_type.startswith("TRANSACTION."):
                orders.record_result(session, trade_result(resource(row)), source="notify")
            elif row.event_type.startswith("REFUND."):
                result, amount, at = refunds.notice_result(resource(row))
                refunds.record_result(session, result, source="notify", amount=amount, success_at=at)
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
