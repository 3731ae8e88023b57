"""The call center's result callbacks: stored under their event id (insert-or-ignore) before we answer,
then applied to the call exactly once by a task that locks the inbox row.

Applying a result: a call that is not finished yet takes the result, duration, recording URL and times,
lands on the customer's timeline (customer 360) and goes to the listeners of its subject kind. A callback
for a call already finished (a second event of the same call) changes nothing; one for a call we never
placed is marked failed.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import clock, outbox
from core.db import insert_ignore, is_postgres
from crm.customers import record_event
from postloan.telephony import listeners
from postloan.telephony.models import RESULT_LABELS, CallStatus, TelephonyCall, TelephonyCallback

log = logging.getLogger(__name__)

PROCESS_TASK = "postloan.telephony_process_callbacks"
TASK_IDS = 100  # inbox ids per processing task


def _row(data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"event_key": str(data["event_id"]), "out_call_no": str(data["out_call_no"]),
            "payload": json.dumps(data, ensure_ascii=False, separators=(",", ":")), "status": "pending",
            "attempts": 0, "received_at": now}


def _store_pg(session: Session, rows: list[dict[str, Any]]) -> list[int | None]:
    from sqlalchemy.dialects.postgresql import insert

    table = TelephonyCallback.__table__
    stmt = insert(table).values(rows).on_conflict_do_nothing(index_elements=["event_key"]) \
        .returning(table.c.id, table.c.event_key)
    new = {key: row_id for row_id, key in session.execute(stmt)}
    return [new.get(row["event_key"]) for row in rows]


def receive_many(session: Session, items: list[dict[str, Any]]) -> list[int | None]:
    """Per verified callback: its new inbox id, or None for a re-delivery (acknowledged, not stored again).
    The new rows' processing is enqueued (sent after the commit)."""
    now = clock.now()
    rows, seen, out = [], set(), []
    for data in items:
        row = _row(data, now)
        if row["event_key"] not in seen:  # the same event twice in one batch: stored once
            rows.append(row)
            seen.add(row["event_key"])
    if is_postgres(session):
        ids = _store_pg(session, rows) if rows else []
    else:
        ids = [insert_ignore(session, TelephonyCallback, row, ["event_key"]) for row in rows]
    stored = {row["event_key"]: row_id for row, row_id in zip(rows, ids, strict=True)}
    new_ids: list[int] = []
    for data in items:
        row_id = stored.get(str(data["event_id"]))
        if row_id is not None and row_id not in new_ids:
            new_ids.append(row_id)
            out.append(row_id)
        else:
            out.append(None)
    for start in range(0, len(new_ids), TASK_IDS):
        outbox.enqueue(session, PROCESS_TASK, *new_ids[start:start + TASK_IDS])
    return out


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return clock.ensure_aware(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _duration(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 86_400 else 0


def apply_result(session: Session, call: TelephonyCall, data: dict[str, Any]) -> bool:
    """Finish the call with the callback's result (once). False if it was already finished."""
    if call.status == CallStatus.FINISHED:
        return False
    result = str(data.get("result") or "failed")
    call.result = result if result in RESULT_LABELS else "failed"
    call.status = CallStatus.FINISHED
    call.provider_call_id = call.provider_call_id or (str(data.get("call_id") or "")[:64] or None)
    call.duration_seconds = _duration(data.get("duration_seconds")) if call.result == "answered" else 0
    url = str(data.get("recording_url") or "")
    call.recording_url = url[:500] if url.startswith(("https://", "http://")) else None
    call.answered_at = _instant(data.get("answered_at"))
    call.ended_at = _instant(data.get("ended_at")) or clock.now()
    call.dialed_at = call.dialed_at or _instant(data.get("started_at"))
    call.error = None
    session.flush()
    label = RESULT_LABELS[call.result]
    summary = f"外呼 {call.phone_masked}：{label}" + (f"，通话 {call.duration_seconds} 秒" if call.duration_seconds else "")
    record_event(session, call.customer_id, "call", summary, actor_staff_id=call.staff_id, ref_type="telephony_call",
                 ref_id=call.id, data={"result": call.result, "duration_seconds": call.duration_seconds,
                                       "subject_kind": call.subject_kind, "subject_id": call.subject_id,
                                       "recording": bool(call.recording_url)})
    listeners.notify(session, call)
    return True


def process(session: Session, inbox_id: int) -> bool:
    """Handle one stored callback exactly once. False when there was nothing to do."""
    row = session.scalar(select(TelephonyCallback).where(TelephonyCallback.id == inbox_id).with_for_update())
    if row is None or row.status != "pending":
        return False
    row.attempts += 1
    call = session.scalar(select(TelephonyCall).where(TelephonyCall.out_call_no == row.out_call_no).with_for_update())
    if call is None:
        row.status, row.error, row.processed_at = "failed", "unknown out_call_no", clock.now()
        log.warning("telephony callback %s names a call we never placed", row.id)
        return True
    apply_result(session, call, json.loads(row.payload))
    row.status, row.processed_at = "done", clock.now()
    session.flush()
    return True


def stale_pending_ids(session: Session, older_than: timedelta, limit: int = 500) -> list[int]:
    cutoff = clock.now() - older_than
    return list(session.scalars(select(TelephonyCallback.id).where(
        TelephonyCallback.status == "pending", TelephonyCallback.received_at < cutoff)
        .order_by(TelephonyCallback.id).limit(limit)))


def give_up(session: Session, max_attempts: int) -> None:
    session.execute(update(TelephonyCallback).where(TelephonyCallback.status == "pending",
                                                    TelephonyCallback.attempts >= max_attempts)
                    .values(status="failed", processed_at=clock.now()))
