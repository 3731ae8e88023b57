"""The callback inbox: store once under a unique event key, process exactly once.

Receiving (request path): verify, refuse a replayed nonce (the same nonce and timestamp with another
body; a byte-identical re-delivery of a request is acknowledged), ``INSERT … ON CONFLICT DO NOTHING`` the
event, enqueue its processing only when the row is new, answer "success". Nothing else happens on
the request path; WeCom gets its answer in milliseconds whatever the handlers do. Concurrent
callbacks are written together (:func:`receive_many`: one statement and one commit per batch, see
:mod:`bot.callback`), and their processing is sent as a few tasks carrying several ids each.

Processing (task ``bot.process_inbox``, one or more ids): per id, lock the row (``FOR UPDATE``), skip
it if already handled, run the handler, mark it handled in the same transaction. A re-delivery, a
duplicate task or a second worker finds the row done and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from bot.callback_crypto import CallbackRejected
from bot.models import WecomInbox, WecomNonce
from core import callback_nonces, clock, outbox, pii
from core.db import UTCDateTime, insert_ignore, is_postgres
from core.errors import AppError

log = logging.getLogger(__name__)

PROCESS_TASK = "bot.process_inbox"
PROCESS_URGENT_TASK = "bot.process_inbox_urgent"
URGENT_KIND = "event:change_external_contact:add_external_contact"

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


@dataclass(frozen=True)
class Incoming:
    """A verified, decrypted callback about to be stored. ``digest`` identifies the request's body
    (:func:`body_digest`); without one, a digest of the fields stands in."""

    fields: dict[str, str]
    nonce: str
    timestamp: str
    digest: str = ""


body_digest = callback_nonces.body_digest


# Ids per processing task: urgent events (add_external_contact sends a welcome message within 20 s)
# travel in small groups so that one task's WeCom calls do not hold the others back.
TASK_IDS = 100
URGENT_TASK_IDS = 8


# Per stored row: (nonce new, new inbox id or None, a known nonce came with the same body).
Stored = tuple[bool, int | None, bool]


# PostgreSQL: a whole batch in ONE statement (one round trip, one commit for many callbacks). The nonces
# go in first; an event is written only if its nonce was new, and a re-delivery's event key conflicts.
# A known nonce whose stored digest equals the request's is a byte-identical re-delivery (same_body).
_RECEIVE_PG = text("""
WITH input AS (
    SELECT * FROM unnest(CAST(:nonces AS text[]), CAST(:timestamps AS text[]), CAST(:event_keys AS text[]),
                         CAST(:kinds AS text[]), CAST(:urgents AS boolean[]), CAST(:payloads AS text[]),
                         CAST(:summaries AS text[]), CAST(:digests AS text[]))
        WITH ORDINALITY AS t(nonce, ts, event_key, kind, urgent, payload_enc, summary, digest, ord)
), n AS (
    INSERT INTO wecom_nonce (nonce, "timestamp", digest, seen_at) SELECT nonce, ts, digest, :now FROM input
    ON CONFLICT (nonce, "timestamp") DO NOTHING RETURNING nonce, "timestamp"
), i AS (
    INSERT INTO wecom_inbox (event_key, kind, urgent, payload_enc, summary, status, attempts, received_at)
    SELECT DISTINCT ON (input.event_key) input.event_key, kind, urgent, payload_enc, summary, 'pending', 0, :now
    FROM input JOIN n ON n.nonce = input.nonce AND n."timestamp" = input.ts
    ORDER BY input.event_key, input.ord
    ON CONFLICT (event_key) DO NOTHING RETURNING id, event_key
)
SELECT input.ord, n.nonce IS NOT NULL AS nonce_new, i.id AS inbox_id,
       COALESCE(known.digest = input.digest, false) AS same_body
FROM input
LEFT JOIN n ON n.nonce = input.nonce AND n."timestamp" = input.ts
LEFT JOIN i ON i.event_key = input.event_key
LEFT JOIN wecom_nonce known ON n.nonce IS NULL AND known.nonce = input.nonce AND known."timestamp" = input.ts
ORDER BY input.ord
""").bindparams(bindparam("now", type_=UTCDateTime()))


def _row_values(item: Incoming) -> dict[str, Any]:
    kind = kind_of(item.fields)
    digest = item.digest or hashlib.sha256(json.dumps(sorted(item.fields.items()), ensure_ascii=False)
                                           .encode()).hexdigest()
    return {"nonce": item.nonce[:64], "timestamp": item.timestamp[:16], "digest": digest,
            "event_key": event_key(item.fields),
            "kind": kind[:80], "urgent": kind == URGENT_KIND,
            "payload_enc": pii.seal(pii.PAYLOAD, json.dumps(item.fields, ensure_ascii=False)),
            "summary": summarize(kind, item.fields)}


def _store_pg(session: Session, rows: list[dict[str, Any]]) -> list[Stored]:
    params = {name: [row[key] for row in rows] for name, key in (
        ("nonces", "nonce"), ("timestamps", "timestamp"), ("event_keys", "event_key"), ("kinds", "kind"),
        ("urgents", "urgent"), ("payloads", "payload_enc"), ("summaries", "summary"), ("digests", "digest"))}
    result = session.execute(_RECEIVE_PG, {**params, "now": clock.now()}).all()
    return [(r.nonce_new, r.inbox_id, r.same_body) for r in result]


def _store_each(session: Session, rows: list[dict[str, Any]]) -> list[Stored]:
    now, out = clock.now(), []
    for row in rows:
        nonce_new, same_body = callback_nonces.record(session, WecomNonce, nonce=row["nonce"],
                                                      timestamp=row["timestamp"], digest=row["digest"], now=now)
        if not nonce_new:
            out.append((False, None, same_body))
            continue
        out.append((True, insert_ignore(session, WecomInbox, {
            "event_key": row["event_key"], "kind": row["kind"], "urgent": row["urgent"],
            "payload_enc": row["payload_enc"], "summary": row["summary"], "status": "pending", "attempts": 0,
            "received_at": now}, ["event_key"]), False))
    return out


def receive_many(session: Session, items: list[Incoming]) -> list[int | None | NonceReplayed]:
    """Record the nonces and store the events of a batch: per item its new inbox id, None for a
    re-delivery (acknowledged, not stored again: the same event under a fresh nonce, or the very same
    request again), or :class:`NonceReplayed` (a known nonce with another body: refused).

    The new rows' processing is enqueued in a few tasks (ids grouped), sent after the commit."""
    rows = [_row_values(item) for item in items]
    repeated = callback_nonces.repeats_in_batch(rows)  # never written: the first of the batch decides
    to_store = [row for i, row in enumerate(rows) if i not in repeated]
    stored = iter(_store_pg(session, to_store) if is_postgres(session) else _store_each(session, to_store))
    out: list[int | None | NonceReplayed] = []
    urgent_ids: list[int] = []
    normal_ids: list[int] = []
    queued: set[int] = set()
    for i, row in enumerate(rows):
        nonce_new, inbox_id, same_body = (False, None, repeated[i]) if i in repeated else next(stored)
        seen = callback_nonces.outcome(nonce_new, same_body)
        if seen != "new":
            out.append(None if seen == "redelivery" else NonceReplayed())
            continue
        if inbox_id is None or inbox_id in queued:  # a re-delivery, also one inside this batch
            out.append(None)
            continue
        out.append(inbox_id)
        queued.add(inbox_id)
        (urgent_ids if row["urgent"] else normal_ids).append(inbox_id)
    for name, ids, size in ((PROCESS_URGENT_TASK, urgent_ids, URGENT_TASK_IDS), (PROCESS_TASK, normal_ids, TASK_IDS)):
        for start in range(0, len(ids), size):
            outbox.enqueue(session, name, *ids[start:start + size])
    return out


def receive(session: Session, fields: dict[str, str], nonce: str, timestamp: str, *,
            load: bool = True) -> WecomInbox | int | None:
    """Record the nonce and store one event; returns the new row (its id with ``load=False``), or
    None for a re-delivery. A replayed nonce raises :class:`NonceReplayed`."""
    (outcome,) = receive_many(session, [Incoming(fields, nonce, timestamp)])
    if isinstance(outcome, NonceReplayed):
        raise outcome
    return session.get(WecomInbox, outcome) if load and outcome is not None else outcome


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
