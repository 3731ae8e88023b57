"""The callback inbox: store once under a unique event key, process exactly once.

Receiving (request path): verify, refuse a replayed nonce, ``INSERT … ON CONFLICT DO NOTHING`` the
event, enqueue its processing only when the row is new, answer "success". Nothing else happens on
the request path; WeCom gets its answer in milliseconds whatever the handlers do.

Processing (task ``bot.process_inbox``): lock the row (``FOR UPDATE``), skip it if already handled,
run the handler, mark it handled in the same transaction. A re-delivery, a duplicate task or a
second worker finds the row done and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from bot.callback_crypto import CallbackRejected
from bot.models import WecomInbox, WecomNonce
from core import clock, outbox, pii
from core.db import UTCDateTime, insert_ignore, is_postgres
from core.errors import AppError

log = logging.getLogger(__name__)

PROCESS_TASK = "bot.process_inbox"
PROCESS_URGENT_TASK = "bot.process_inbox_urgent"

Handler = Callable[[Session, dict[str, str]], None]
HANDLERS: dict[str, Handler] = {}


class NonceReplayed(CallbackRejected):
    code = "wecom_nonce_replayed"
    status = 403
    message = "重复的回调请求（nonce 已使用）"


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    """Register a handler for event kinds such as "event:change_external_contact:add_external_contact"."""

    def decorator(fn: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = fn
        return fn

    return decorator


def kind_of(fields: dict[str, str]) -> str:
    msg_type = fields.get("MsgType", "")
    if msg_type == "event":
        event = fields.get("Event", "")
        change = fields.get("ChangeType", "")
        return f"event:{event}:{change}" if change else f"event:{event}"
    return msg_type or "unknown"


def event_key(fields: dict[str, str]) -> str:
    """Stable across WeCom's re-deliveries of the same event: its MsgId, else a digest of its content."""
    if fields.get("MsgId"):
        return f"msg:{fields['MsgId']}"
    canonical = json.dumps(sorted(fields.items()), ensure_ascii=False)
    return "evt:" + hashlib.sha256(canonical.encode()).hexdigest()


def summarize(kind: str, fields: dict[str, str]) -> str:
    parts = [kind]
    for name in ("UserID", "ExternalUserID", "ChatId", "FromUserName", "State"):
        if fields.get(name):
            parts.append(f"{name}={fields[name]}")
    return pii.mask_text(" ".join(parts))[:300]


# PostgreSQL: the nonce and the event in ONE statement (one round trip instead of two inserts);
# the inbox row is written only if the nonce was new, and a re-delivery's event key conflicts.
_RECEIVE_PG = text("""
WITH n AS (
    INSERT INTO wecom_nonce (nonce, "timestamp", seen_at) VALUES (:nonce, :timestamp, :now)
    ON CONFLICT (nonce, "timestamp") DO NOTHING RETURNING id
), i AS (
    INSERT INTO wecom_inbox (event_key, kind, urgent, payload_enc, summary, status, attempts, received_at)
    SELECT :event_key, :kind, :urgent, :payload_enc, :summary, 'pending', 0, :now WHERE EXISTS (SELECT 1 FROM n)
    ON CONFLICT (event_key) DO NOTHING RETURNING id
)
SELECT EXISTS (SELECT 1 FROM n) AS nonce_new, (SELECT id FROM i) AS inbox_id
""").bindparams(bindparam("now", type_=UTCDateTime()))


def _receive_pg(session: Session, fields: dict[str, str], nonce: str, timestamp: str) -> int | None:
    kind = kind_of(fields)
    urgent = kind == "event:change_external_contact:add_external_contact"
    row = session.execute(_RECEIVE_PG, {
        "nonce": nonce[:64], "timestamp": timestamp[:16], "now": clock.now(), "event_key": event_key(fields),
        "kind": kind[:80], "urgent": urgent, "payload_enc": pii.seal(pii.PAYLOAD, json.dumps(fields, ensure_ascii=False)),
        "summary": summarize(kind, fields)}).one()
    if not row.nonce_new:
        raise NonceReplayed()
    if row.inbox_id is None:
        return None
    outbox.enqueue(session, PROCESS_URGENT_TASK if urgent else PROCESS_TASK, row.inbox_id)
    return row.inbox_id


def receive(session: Session, fields: dict[str, str], nonce: str, timestamp: str, *,
            load: bool = True) -> WecomInbox | int | None:
    """Record the nonce and store the event; returns the new row (its id with ``load=False``), or
    None for a re-delivery."""
    if is_postgres(session):
        new_id = _receive_pg(session, fields, nonce, timestamp)
        return session.get(WecomInbox, new_id) if load and new_id is not None else new_id
    if insert_ignore(session, WecomNonce, {"nonce": nonce[:64], "timestamp": timestamp[:16], "seen_at": clock.now()},
                     ["nonce", "timestamp"]) is None:
        raise NonceReplayed()
    kind = kind_of(fields)
    urgent = kind == "event:change_external_contact:add_external_contact"
    new_id = insert_ignore(session, WecomInbox, {
        "event_key": event_key(fields), "kind": kind[:80], "urgent": urgent,
        "payload_enc": pii.seal(pii.PAYLOAD, json.dumps(fields, ensure_ascii=False)),
        "summary": summarize(kind, fields), "status": "pending", "attempts": 0, "received_at": clock.now(),
    }, ["event_key"])
    if new_id is None:
        return None
    outbox.enqueue(session, PROCESS_URGENT_TASK if urgent else PROCESS_TASK, new_id)
    return session.get(WecomInbox, new_id) if load else new_id


def payload(row: WecomInbox) -> dict[str, str]:
    return json.loads(pii.open_sealed(pii.PAYLOAD, row.payload_enc))


def process(session: Session, inbox_id: int) -> bool:
    """Handle one stored event exactly once. Returns False when there was nothing to do."""
    row = session.scalar(select(WecomInbox).where(WecomInbox.id == inbox_id).with_for_update())
    if row is None or row.status == "done":
        return False
    row.attempts += 1
    handler = HANDLERS.get(row.kind)
    try:
        with session.begin_nested():
            if handler is not None:
                handler(session, payload(row))
    except AppError as exc:
        # A business refusal will not change on retry: record it and stop.
        row.status, row.error = "failed", f"{exc.code}: {exc.message}"[:500]
        row.processed_at = clock.now()
        session.flush()
        log.warning("wecom event %s refused: %s", row.id, exc.code)
        return True
    row.status, row.processed_at, row.error = "done", clock.now(), None if handler else "no handler"
    session.flush()
    return True


def stale_pending_ids(session: Session, older_than: timedelta, limit: int = 500) -> list[int]:
    cutoff = clock.now() - older_than
    return list(session.scalars(select(WecomInbox.id).where(WecomInbox.status == "pending",
                                                            WecomInbox.received_at < cutoff)
                                .order_by(WecomInbox.id).limit(limit)))


def prune_nonces(session: Session, older_than: timedelta) -> int:
    result = session.execute(delete(WecomNonce).where(WecomNonce.seen_at < clock.now() - older_than))
    return result.rowcount or 0


def mark_failed(session: Session, inbox_id: int, error: str) -> None:
    session.execute(update(WecomInbox).where(WecomInbox.id == inbox_id, WecomInbox.status == "pending")
                    .values(status="failed", error=error[:500], processed_at=clock.now()))
