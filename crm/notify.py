"""Tell staff something: a row in their console inbox; the WeCom layer, where installed, pushes
unsent rows as app messages (task ``bot.push_notifications``, enqueued here after commit)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from core import clock, outbox, tasks

PUSH_TASK = "bot.push_notifications"


def notify(session: Session, staff_ids: int | Iterable[int | None], kind: str, title: str, body: str = "",
           customer_id: int | None = None) -> int:
    from crm.models import Notification

    ids = [staff_ids] if isinstance(staff_ids, int) else [s for s in dict.fromkeys(staff_ids) if s is not None]
    if not ids:
        return 0
    now = clock.now()
    session.execute(insert(Notification), [
        {"staff_id": sid, "kind": kind, "title": title[:120], "body": body[:1000], "customer_id": customer_id,
         "created_at": now} for sid in ids
    ])
    if tasks.is_registered(PUSH_TASK):
        outbox.enqueue_once(session, PUSH_TASK)
    return len(ids)


def notify_each(session: Session, items: Iterable[tuple[int, str, str, str, int | None]]) -> int:
    """Several different notifications in one multi-row INSERT: (staff id, kind, title, body, customer id)."""
    from crm.models import Notification

    now = clock.now()
    rows = [{"staff_id": sid, "kind": kind, "title": title[:120], "body": body[:1000], "customer_id": cid,
             "created_at": now} for sid, kind, title, body, cid in items]
    if not rows:
        return 0
    session.execute(insert(Notification).values(rows))
    if tasks.is_registered(PUSH_TASK):
        outbox.enqueue_once(session, PUSH_TASK)
    return len(rows)
