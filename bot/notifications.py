"""Push staff notifications (crm.notify rows) to each person's WeCom as app messages.

``bot.push_notifications`` (enqueued by :func:`crm.notify.notify` after its unit of work commits)
and the minute sweep ``bot.sweep_notifications`` both run :func:`push_pending`:

1. claim a batch of unsent rows in one statement, ``UPDATE staff_notification SET pushed_at = now
   WHERE id IN (SELECT … WHERE pushed_at IS NULL … FOR UPDATE SKIP LOCKED) AND pushed_at IS NULL
   RETURNING …`` (SQLite: the same without SKIP LOCKED; its writers are serialised by BEGIN
   IMMEDIATE). Two workers never claim the same row: a row another worker holds is skipped, and a
   row it already pushed no longer matches ``pushed_at IS NULL``;
2. send one message per staff member (message/send: a textcard for one item, a text list for
   several), masked;
3. a failed send puts that person's rows back (``pushed_at = NULL``) in the same transaction, so
   ``pushed_at`` is committed exactly when the send succeeded; the sweep retries them.

Only active staff with a WeCom userid are pushed to; the others keep their notifications in the
console inbox only. Rows older than :data:`MAX_AGE` are not pushed (a person bound to WeCom later
does not receive a day-old backlog). A crash between a send and the commit can repeat that one
message on the next run: at-least-once across crashes, exactly-once between workers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from core import clock, pii
from core.db import is_postgres
from core.settings import get_settings
from crm.models import Notification, Staff, StaffStatus

log = logging.getLogger(__name__)

PUSH_TASK = "bot.push_notifications"
SWEEP_TASK = "bot.sweep_notifications"
BATCH = 200  # rows claimed per transaction
MAX_BATCHES = 20  # per task run; the sweep picks up the rest
PER_MESSAGE = 8  # items listed in one text message
MAX_AGE = timedelta(days=1)

KIND_LABELS = {
    "lead.assigned": "新线索", "reminder": "跟进提醒", "recycle.warning": "回收预警", "collision": "撞单提醒",
    "handover": "客户交接",
}


@dataclass(frozen=True)
class Claimed:
    id: int
    staff_id: int
    kind: str
    title: str
    body: str
    customer_id: int | None


def _eligible(now: datetime):  # noqa: ANN202 - a SQL condition
    pushable_staff = select(Staff.id).where(Staff.wecom_userid.is_not(None), Staff.status == StaffStatus.ACTIVE)
    return and_(Notification.pushed_at.is_(None), Notification.created_at > now - MAX_AGE,
                Notification.staff_id.in_(pushable_staff))


def claim(session: Session, limit: int = BATCH) -> list[Claimed]:
    """Mark up to ``limit`` unsent rows as pushed (uncommitted) and return them."""
    now = clock.now()
    pick = select(Notification.id).where(_eligible(now)).order_by(Notification.id).limit(limit)
    if is_postgres(session):
        pick = pick.with_for_update(skip_locked=True)
    stmt = (update(Notification)
            .where(Notification.id.in_(pick.scalar_subquery()), Notification.pushed_at.is_(None))
            .values(pushed_at=now)
            .returning(Notification.id, Notification.staff_id, Notification.kind, Notification.title,
                       Notification.body, Notification.customer_id)
            .execution_options(synchronize_session=False))
    return sorted((Claimed(*row) for row in session.execute(stmt)), key=lambda c: c.id)


def _console_url(item: Claimed | None) -> str:
    base = get_settings().base_url.rstrip("/")
    if item is not None and item.customer_id:
        return f"{base}/console/customers/{item.customer_id}"
    return f"{base}/console/"


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, "通知")


def render(items: list[Claimed]) -> dict[str, str]:
    """One staff member's batch as message/send arguments (content, msgtype, title, url), masked."""
    if len(items) == 1:
        item = items[0]
        return {"msgtype": "textcard", "title": pii.mask_text(f"【{_label(item.kind)}】{item.title}")[:128],
                "content": pii.mask_text(item.body or item.title)[:500], "url": _console_url(item)}
    lines = [f"您有 {len(items)} 条新通知："]
    for i, item in enumerate(items[:PER_MESSAGE], 1):
        body = f"：{item.body[:80]}" if item.body else ""
        lines.append(f"{i}. 【{_label(item.kind)}】{item.title}{body}")
    if len(items) > PER_MESSAGE:
        lines.append(f"……另有 {len(items) - PER_MESSAGE} 条")
    lines.append(f"详情请到控制台查看：{_console_url(None)}")
    return {"msgtype": "text", "content": pii.mask_text("\n".join(lines))[:1800], "title": "", "url": ""}


@dataclass(frozen=True)
class PushResult:
    claimed: int
    failed: int

    @property
    def pushed(self) -> int:
        return self.claimed - self.failed


def push_batch(session: Session, limit: int = BATCH) -> PushResult:
    """Claim, send per staff member, un-claim what failed."""
    from bot.gateway import get_gateway

    claimed = claim(session, limit)
    if not claimed:
        return PushResult(0, 0)
    by_staff: dict[int, list[Claimed]] = defaultdict(list)
    for item in claimed:
        by_staff[item.staff_id].append(item)
    userids = {sid: uid for sid, uid in session.execute(
        select(Staff.id, Staff.wecom_userid).where(Staff.id.in_(sorted(by_staff))))}
    gateway = get_gateway()
    failed: list[int] = []
    for staff_id, items in by_staff.items():
        message = render(items)
        try:
            result = gateway.send_app_message([userids[staff_id]], message["content"], msgtype=message["msgtype"],
                                              title=message["title"] or None, url=message["url"] or None)
        except Exception as exc:  # noqa: BLE001 - any failure: keep these rows for the sweep
            log.warning("pushing %s notifications to staff %s failed: %s", len(items), staff_id, exc)
            failed.extend(i.id for i in items)
            continue
        if result.get("invaliduser"):
            log.warning("staff %s is not a valid WeCom member (%s): notifications kept in the console only",
                        staff_id, result.get("invaliduser"))
    if failed:
        session.execute(update(Notification).where(Notification.id.in_(failed)).values(pushed_at=None)
                        .execution_options(synchronize_session=False))
    session.flush()
    return PushResult(len(claimed), len(failed))


def push_pending() -> int:
    """Push every pushable unsent notification, one batch per transaction. Returns rows pushed."""
    from bot.gateway import get_gateway
    from core.db import unit_of_work

    with unit_of_work() as session:
        if session.scalar(select(Notification.id).where(_eligible(clock.now())).limit(1)) is None:
            return 0
    # Fetch (or refresh) the access token before any claim: without Redis the token cache writes to the
    # database, which on SQLite must not happen while this worker holds the write lock of its claim.
    get_gateway().access_token()
    total = 0
    for _ in range(MAX_BATCHES):
        with unit_of_work() as session:
            result = push_batch(session)
        total += result.pushed
        if result.claimed < BATCH or result.failed:  # done, or WeCom is refusing: leave it to the sweep
            break
    return total
