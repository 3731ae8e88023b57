"""Mass messages to a saved segment (群发).

Flow: a manager creates a draft (segment, text, up to 9 attachments), previews who would get it,
and sends. Sending fixes the recipients in one ``INSERT … SELECT`` from the segment's members
(:func:`crm.segments.members_query`, within the sender's data scope):

- ``not_a_contact``: no WeCom external contact id, or no staff member to send as;
- ``skipped_limit``: the customer already received this Shanghai month as many mass messages as the
  month has days (WeCom's rule). The count lives in :class:`MassMessageQuota`; it is taken with one
  conditional ``UPDATE … SET sent_count = sent_count + 1 WHERE sent_count < limit … RETURNING``, so
  two messages sent at once can never push a customer past the limit;
- ``pending`` otherwise, with the sender: the customer's owner's WeCom userid when the owner is (as
  far as we know) still a contact, else a staff member who is.

The pending recipients are split per sender into ``add_msg_template`` calls (chat_type single, at
most 10,000 external contacts each: :class:`MassMessageSend`), created by the task
``bot.send_mass_message``. Nothing reaches a customer until the staff member confirms the message
in WeCom; ``bot.poll_mass_messages`` reads ``get_groupmsg_task`` and ``get_groupmsg_send_result``
(cursor-paged) and moves recipients to sent / not_a_contact / skipped_limit, giving the quota back
for those WeCom did not deliver to. Reminders (``remind_groupmsg_send``) are limited to 3 per
template in 24 hours, checked here before WeCom is asked.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import and_, case, exists, func, literal, select, true, update
from sqlalchemy.orm import Session

from bot.gateway import get_gateway
from bot.models_channel import WecomRelation
from bot.models_mass import MassMessage, MassMessageQuota, MassMessageRecipient, MassMessageSend
from bot.wecom_errors import WecomApiError, WecomRateLimited
from core import audit, clock, outbox
from core.db import is_postgres
from core.errors import AppError, PermissionDenied, ValidationFailed
from crm import segments
from crm.models import Customer, Segment, Staff
from crm.permissions import WECOM_MASS
from crm.scope import Viewer

log = logging.getLogger(__name__)

SEND_TASK = "bot.send_mass_message"
POLL_TASK = "bot.poll_mass_messages"
SENDERS = WECOM_MASS
MAX_ATTACHMENTS = 9
MAX_TEXT = 2000
MAX_PER_TEMPLATE = 10_000
MAX_REMINDS = 3
REMIND_WINDOW = timedelta(hours=24)
POLL_FOR = timedelta(days=31)
ATTACHMENT_TYPES = frozenset({"image", "link", "miniprogram", "video", "file"})
STATUS_LABELS = {"pending": "待发送", "sent": "已送达", "failed": "失败", "skipped_limit": "本月已达上限，跳过",
                 "not_a_contact": "非企业微信联系人"}
MESSAGE_LABELS = {"draft": "草稿", "sending": "创建中", "sent": "待员工确认发送", "done": "已完成", "failed": "失败"}


class MassMessageNotFound(AppError):
    code = "mass_message_not_found"
    status = 404
    message = "群发不存在"


class MassMessageAlreadySent(AppError):
    code = "mass_message_already_sent"
    status = 409
    message = "该群发已经提交，不能重复发送"


class RemindLimitReached(AppError):
    code = "mass_message_remind_limit"
    status = 409
    message = f"企业微信限制每条群发 24 小时内最多提醒 {MAX_REMINDS} 次，请稍后再试"


def _ensure_sender(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in SENDERS:
        raise PermissionDenied("只有管理员、经理和主管可以创建群发")


def month_of(instant: datetime) -> tuple[str, int]:
    """Shanghai "YYYY-MM" and how many days that month has (the monthly mass-message limit)."""
    local = clock.ensure_aware(instant).astimezone(clock.BUSINESS_TZ)
    return f"{local.year:04d}-{local.month:02d}", calendar.monthrange(local.year, local.month)[1]


# --- drafts --------------------------------------------------------------------------------------

@dataclass
class MassInput:
    title: str
    segment_id: int
    text: str
    attachments: list[dict[str, Any]] = field(default_factory=list)
    route_id: int | None = None


def _attachments(raw: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    items = list(raw or [])
    if len(items) > MAX_ATTACHMENTS:
        raise ValidationFailed(f"附件最多 {MAX_ATTACHMENTS} 个（企业微信限制）", field="attachments")
    for item in items:
        kind = item.get("msgtype") if isinstance(item, dict) else None
        if kind not in ATTACHMENT_TYPES or not isinstance(item.get(kind), dict):
            raise ValidationFailed("附件格式不正确", field="attachments")
        if kind == "link":
            url = str(item["link"].get("url") or "")
            if urlparse(url).scheme not in ("http", "https") or not item["link"].get("title"):
                raise ValidationFailed("链接附件须有标题和 http(s) 地址", field="attachments")
    return items


def create_message(session: Session, viewer: Viewer | None, data: MassInput) -> MassMessage:
    _ensure_sender(viewer)
    title = " ".join((data.title or "").split())
    if not title or len(title) > 60:
        raise ValidationFailed("请填写不超过 60 个字的群发名称", field="title")
    text = (data.text or "").strip()
    attachments = _attachments(data.attachments)
    if not text and not attachments:
        raise ValidationFailed("请填写群发内容", field="text")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"群发内容不能超过 {MAX_TEXT} 个字", field="text")
    segments.get_segment(session, data.segment_id)
    message = MassMessage(title=title, segment_id=data.segment_id, route_id=data.route_id, text=text,
                          attachments=attachments, status="draft", created_by=viewer.staff_id if viewer else None,
                          created_at=clock.now())
    session.add(message)
    session.flush()
    audit.record(session, "wecom.mass.create", entity_type="mass_message", entity_id=message.id,
                 after={"title": title, "segment_id": data.segment_id, "attachments": len(attachments)})
    return message


def get_message(session: Session, message_id: int) -> MassMessage:
    message = session.get(MassMessage, message_id)
    if message is None:
        raise MassMessageNotFound()
    return message


def list_messages(session: Session, limit: int = 100) -> list[MassMessage]:
    return list(session.scalars(select(MassMessage).order_by(MassMessage.id.desc()).limit(limit)))


# --- audience ------------------------------------------------------------------------------------

def _viewer_of(session: Session, message: MassMessage) -> Viewer | None:
    staff = session.get(Staff, message.created_by) if message.created_by else None
    return Viewer.of(staff) if staff is not None else None


def _audience(session: Session, segment: Segment, viewer: Viewer | None):  # noqa: ANN202 - a subquery
    """Segment members with their external id and the WeCom userid to send as (NULL: none)."""
    members = (segments.members_query(session, segment, viewer).order_by(None)
               .outerjoin(Staff, Staff.id == Customer.owner_id)
               .with_only_columns(Customer.id, Customer.wecom_external_userid, Staff.wecom_userid.label("owner_userid"))
               .subquery("m"))
    sender = sender_userid(members.c.wecom_external_userid, members.c.owner_userid)
    return select(members.c.id.label("customer_id"), members.c.wecom_external_userid.label("external_userid"),
                  sender.label("sender")).subquery("a")


def sender_userid(external_userid: Any, owner_userid: Any) -> Any:
    """The WeCom userid to message an external contact as (NULL: none): the owner's when the owner is, as far
    as we know, still a contact (or no relation was ever reported), else the first staff member who is."""
    owner_related = exists().where(WecomRelation.external_userid == external_userid,
                                   WecomRelation.staff_userid == owner_userid, WecomRelation.status == "active")
    any_relation = exists().where(WecomRelation.external_userid == external_userid)
    other_userid = (select(func.min(WecomRelation.staff_userid))
                    .where(WecomRelation.external_userid == external_userid,
                           WecomRelation.status == "active").scalar_subquery())
    return case((external_userid.is_(None), None), (owner_related, owner_userid), (~any_relation, owner_userid),
                else_=other_userid)


@dataclass
class Preview:
    total: int = 0
    not_a_contact: int = 0
    over_limit: int = 0
    to_send: int = 0
    by_sender: dict[str, int] = field(default_factory=dict)  # userid -> customers it would go to
    month: str = ""
    limit: int = 0


def preview(session: Session, viewer: Viewer | None, message: MassMessage) -> Preview:
    """Who would get the message if it were sent now (counts only; nothing is written)."""
    segment = segments.get_segment(session, message.segment_id)
    month, limit = month_of(clock.now())
    audience = _audience(session, segment, _viewer_of(session, message) or viewer)
    at_limit = exists().where(MassMessageQuota.customer_id == audience.c.customer_id,
                              MassMessageQuota.month == month, MassMessageQuota.sent_count >= limit)
    kind = case((audience.c.sender.is_(None), "not_a_contact"), (at_limit, "skipped_limit"), else_="pending")
    rows = session.execute(select(kind.label("k"), audience.c.sender, func.count())
                           .group_by(kind, audience.c.sender)).all()
    result = Preview(month=month, limit=limit)
    for k, sender, n in rows:
        result.total += n
        if k == "not_a_contact":
            result.not_a_contact += n
        elif k == "skipped_limit":
            result.over_limit += n
        else:
            result.to_send += n
            result.by_sender[sender] = result.by_sender.get(sender, 0) + n
    return result


# --- sending -------------------------------------------------------------------------------------

def _dialect_insert(session: Session, table: Any):  # noqa: ANN202
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def submit(session: Session, viewer: Viewer | None, message_id: int) -> MassMessage:
    """Fix the recipients, take the monthly quota, split per sender; the task creates the templates."""
    _ensure_sender(viewer)
    message = get_message(session, message_id)
    now = clock.now()
    month, limit = month_of(now)
    claimed = session.execute(update(MassMessage).where(MassMessage.id == message.id, MassMessage.status == "draft")
                              .values(status="sending", submitted_at=now, month=month)
                              .execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        raise MassMessageAlreadySent()
    session.refresh(message)
    segment = segments.get_segment(session, message.segment_id)
    audience = _audience(session, segment, _viewer_of(session, message) or viewer)
    no_contact = audience.c.sender.is_(None)
    session.execute(MassMessageRecipient.__table__.insert().from_select(
        ["mass_message_id", "customer_id", "external_userid", "sender_userid", "status", "reason", "quota_taken",
         "updated_at"],
        select(literal(message.id), audience.c.customer_id, audience.c.external_userid, audience.c.sender,
               case((no_contact, "not_a_contact"), else_="pending"),
               case((audience.c.external_userid.is_(None), "客户没有添加企业微信"),
                    (no_contact, "没有可代发的员工（负责人未绑定企业微信或已不是好友）"), else_=None),
               literal(False), literal(now, type_=MassMessageRecipient.__table__.c.updated_at.type))))
    pending = and_(MassMessageRecipient.mass_message_id == message.id, MassMessageRecipient.status == "pending")
    # The monthly limit: make sure every pending customer has a quota row, skip those already at the
    # limit, then take one unit each with a conditional UPDATE (the row lock decides concurrent sends).
    session.execute(_dialect_insert(session, MassMessageQuota).from_select(
        ["customer_id", "month", "sent_count"],
        select(MassMessageRecipient.customer_id, literal(month), literal(0)).where(pending))
        .on_conflict_do_nothing())
    full = select(MassMessageQuota.customer_id).where(MassMessageQuota.month == month,
                                                      MassMessageQuota.sent_count >= limit)
    reason = f"本月（{month}）已收到 {limit} 条群发，达到企业微信上限"
    session.execute(update(MassMessageRecipient).where(pending, MassMessageRecipient.customer_id.in_(full))
                    .values(status="skipped_limit", reason=reason).execution_options(synchronize_session=False))
    taken = set(session.scalars(
        update(MassMessageQuota)
        .where(MassMessageQuota.month == month, MassMessageQuota.sent_count < limit,
               MassMessageQuota.customer_id.in_(select(MassMessageRecipient.customer_id).where(pending)))
        .values(sent_count=MassMessageQuota.sent_count + 1)
        .returning(MassMessageQuota.customer_id).execution_options(synchronize_session=False)))
    pending_ids = set(session.scalars(select(MassMessageRecipient.customer_id).where(pending)))
    lost = sorted(pending_ids - taken)  # reached the limit meanwhile (a concurrent send): skip them too
    for i in range(0, len(lost), 1000):
        session.execute(update(MassMessageRecipient).where(pending, MassMessageRecipient.customer_id
                                                           .in_(lost[i:i + 1000]))
                        .values(status="skipped_limit", reason=reason).execution_options(synchronize_session=False))
    session.execute(update(MassMessageRecipient).where(pending).values(quota_taken=True)
                    .execution_options(synchronize_session=False))
    _split(session, message, now)
    outbox.enqueue(session, SEND_TASK, message.id)
    counts = recipient_counts(session, message.id)
    audit.record(session, "wecom.mass.submit", entity_type="mass_message", entity_id=message.id,
                 after={"month": month, **counts})
    if not counts.get("pending"):
        message.status, message.finished_at = "done", now
    session.flush()
    return message


def _split(session: Session, message: MassMessage, now: datetime) -> None:
    """One send row per sender and 10,000 recipients; recipients point at theirs."""
    pending = and_(MassMessageRecipient.mass_message_id == message.id, MassMessageRecipient.status == "pending")
    staff_ids = dict(session.execute(select(Staff.wecom_userid, Staff.id).where(Staff.wecom_userid.in_(
        select(MassMessageRecipient.sender_userid).where(pending).distinct()))).all())
    senders = session.execute(select(MassMessageRecipient.sender_userid, func.count()).where(pending)
                              .group_by(MassMessageRecipient.sender_userid)
                              .order_by(MassMessageRecipient.sender_userid)).all()
    for sender, n in senders:
        this = and_(pending, MassMessageRecipient.sender_userid == sender)
        ids = [None] if n <= MAX_PER_TEMPLATE else list(session.scalars(
            select(MassMessageRecipient.id).where(this).order_by(MassMessageRecipient.id)))
        for chunk, start in enumerate(range(0, len(ids), MAX_PER_TEMPLATE)):
            part = ids[start:start + MAX_PER_TEMPLATE]
            send = MassMessageSend(mass_message_id=message.id, sender_userid=sender, staff_id=staff_ids.get(sender),
                                   chunk=chunk, recipients=n if part == [None] else len(part), status="pending",
                                   reminded_at=[], created_at=now)
            session.add(send)
            session.flush()
            where = this if part == [None] else and_(this, MassMessageRecipient.id.in_(part))
            session.execute(update(MassMessageRecipient).where(where).values(send_id=send.id)
                            .execution_options(synchronize_session=False))


def _give_back(session: Session, send: MassMessageSend | None, message: MassMessage, *,
               where: Any = None) -> None:
    """Return the quota of recipients that ended without delivery (set-based), then clear their flag."""
    if not message.month:
        return
    undelivered = and_(MassMessageRecipient.mass_message_id == message.id, MassMessageRecipient.quota_taken.is_(True),
                       MassMessageRecipient.status.in_(("failed", "not_a_contact", "skipped_limit")),
                       MassMessageRecipient.send_id == send.id if send is not None else true(),
                       where if where is not None else true())
    session.execute(update(MassMessageQuota)
                    .where(MassMessageQuota.month == message.month, MassMessageQuota.sent_count > 0,
                           MassMessageQuota.customer_id.in_(select(MassMessageRecipient.customer_id)
                                                            .where(undelivered)))
                    .values(sent_count=MassMessageQuota.sent_count - 1).execution_options(synchronize_session=False))
    session.execute(update(MassMessageRecipient).where(undelivered).values(quota_taken=False)
                    .execution_options(synchronize_session=False))


OPEN_SEND_STATUSES = ("pending", "submitting")


def start_send(session: Session, send_id: int) -> bool:
    """Mark a send ``submitting`` before WeCom is called; the caller commits this before the call. Returns False
    when there is nothing to send (already created, done or failed). A send found ``submitting`` was claimed by
    an attempt that may have died after WeCom created the template: :func:`create_template` looks for it first."""
    claimed = session.execute(update(MassMessageSend).where(MassMessageSend.id == send_id,
                                                            MassMessageSend.status == "pending")
                              .values(status="submitting").execution_options(synchronize_session=False)).rowcount
    if claimed:
        return True
    return session.scalar(select(MassMessageSend.status).where(MassMessageSend.id == send_id)) == "submitting"


def _created_earlier(send: MassMessageSend, message: MassMessage, externals: list[str]) -> dict[str, Any] | None:
    """The template an earlier attempt created for this send (its answer was lost: the worker died between
    WeCom's answer and our commit), found in WeCom's list of the sender's templates since the send was
    split: same text, its recipients among ours, its msgid not yet any send's. Answers like add_msg_template."""
    gw = get_gateway()
    wanted = set(externals)
    start = int(send.created_at.timestamp()) - 300
    end = int(clock.now().timestamp()) + 300
    cursor = ""
    while True:
        page_ = gw.get_groupmsg_list_v2("single", start, end, creator=send.sender_userid, cursor=cursor)
        for row in page_.get("group_msg_list") or []:
            if ((row.get("text") or {}).get("content") or None) != (message.text or None):
                continue
            got = _result_externals(gw, str(row["msgid"]), send.sender_userid)
            if got and got <= wanted:
                return {"msgid": str(row["msgid"]), "fail_list": sorted(wanted - got)}
        cursor = page_.get("next_cursor") or ""
        if not cursor:
            return None


def _result_externals(gw: Any, msgid: str, userid: str) -> set[str]:
    found: set[str] = set()
    cursor = ""
    while True:
        page_ = gw.get_groupmsg_send_result(msgid, userid, cursor=cursor)
        found.update(str(r["external_userid"]) for r in page_.get("send_list") or [] if r.get("external_userid"))
        cursor = page_.get("next_cursor") or ""
        if not cursor:
            return found


def create_template(session: Session, send_id: int) -> str:
    """One ``add_msg_template`` for a send row claimed by :func:`start_send` (locked; a send already created is
    left alone). At most once per send: a send still ``submitting`` (an earlier attempt died during or after
    its call) first looks for the template that attempt may have created, and adopts it if found."""
    send = session.scalar(select(MassMessageSend).where(MassMessageSend.id == send_id).with_for_update())
    if send is None or send.status not in OPEN_SEND_STATUSES:
        return "skipped"
    message = session.get(MassMessage, send.mass_message_id)
    assert message is not None
    externals = list(session.scalars(select(MassMessageRecipient.external_userid).where(
        MassMessageRecipient.send_id == send.id, MassMessageRecipient.status == "pending")
        .order_by(MassMessageRecipient.id)))
    now = clock.now()
    if not externals:
        send.status = "done"
        session.flush()
        return "empty"
    taken = set(session.scalars(select(MassMessageSend.msgid).where(MassMessageSend.sender_userid == send.sender_userid,
                                                                     MassMessageSend.msgid.is_not(None))))
    try:
        answer = _created_earlier(send, message, externals) if send.status == "submitting" else None
        if answer is not None and answer["msgid"] in taken:
            answer = None
        adopted = answer is not None
        if answer is None:
            answer = get_gateway().add_msg_template("single", text=message.text or None, external_userids=externals,
                                                    sender=send.sender_userid, attachments=message.attachments)
    except WecomRateLimited:
        raise
    except WecomApiError as exc:
        send.status, send.error = "failed", exc.message[:300]
        session.execute(update(MassMessageRecipient).where(MassMessageRecipient.send_id == send.id,
                                                           MassMessageRecipient.status == "pending")
                        .values(status="failed", reason=exc.message[:120], updated_at=now)
                        .execution_options(synchronize_session=False))
        _give_back(session, send, message)
        session.flush()
        return "failed"
    if adopted:
        log.warning("mass message send %s: adopted template %s created by an earlier attempt", send.id,
                    answer["msgid"])
        audit.record(session, "wecom.mass.adopted", entity_type="mass_message", entity_id=message.id,
                     after={"send_id": send.id, "msgid": answer["msgid"]})
    send.msgid, send.status = str(answer.get("msgid") or "") or None, "created"
    fail_list = [str(e) for e in answer.get("fail_list") or []]
    for i in range(0, len(fail_list), 1000):
        session.execute(update(MassMessageRecipient).where(
            MassMessageRecipient.send_id == send.id, MassMessageRecipient.status == "pending",
            MassMessageRecipient.external_userid.in_(fail_list[i:i + 1000]))
            .values(status="not_a_contact", reason="企业微信：客户不是该员工的联系人", updated_at=now)
            .execution_options(synchronize_session=False))
    if fail_list:
        _give_back(session, send, message)
    session.flush()
    return "created"


def finish_sending(session: Session, message_id: int) -> None:
    """After the templates: sent (awaiting confirmation) if any was created, failed if none could be."""
    message = get_message(session, message_id)
    statuses = set(session.scalars(select(MassMessageSend.status).where(MassMessageSend.mass_message_id == message.id)))
    if message.status != "sending" or statuses & set(OPEN_SEND_STATUSES):
        return
    if "created" in statuses:
        message.status = "sent"
    else:
        message.status = "failed" if "failed" in statuses else "done"
        message.finished_at = clock.now()
    session.flush()


def pending_send_ids(session: Session, message_id: int) -> list[int]:
    return list(session.scalars(select(MassMessageSend.id).where(MassMessageSend.mass_message_id == message_id,
                                                                 MassMessageSend.status.in_(OPEN_SEND_STATUSES))
                                .order_by(MassMessageSend.id)))


# --- results -------------------------------------------------------------------------------------

WECOM_SENT, WECOM_NOT_FRIEND, WECOM_LIMIT = 1, 2, 3


def poll_send(session: Session, send_id: int) -> dict[str, int]:
    """Read WeCom's results for one created template and move its recipients (cursor-paged)."""
    send = session.scalar(select(MassMessageSend).where(MassMessageSend.id == send_id).with_for_update())
    if send is None or send.status != "created" or not send.msgid:
        return {}
    message = session.get(MassMessage, send.mass_message_id)
    assert message is not None
    gateway = get_gateway()
    cursor = ""
    while True:
        page = gateway.get_groupmsg_task(send.msgid, cursor=cursor)
        for t in page.get("task_list") or []:
            if t.get("userid") == send.sender_userid:
                send.task_status = int(t.get("status") or 0)
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    by_status: dict[int, list[tuple[str, int | None]]] = {}
    cursor = ""
    while True:
        page = gateway.get_groupmsg_send_result(send.msgid, send.sender_userid, cursor=cursor)
        for r in page.get("send_list") or []:
            if r.get("external_userid"):
                by_status.setdefault(int(r.get("status") or 0), []).append(
                    (str(r["external_userid"]), int(r["send_time"]) if r.get("send_time") else None))
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    now = clock.now()
    moved: dict[str, int] = {}
    targets = {WECOM_SENT: ("sent", None), WECOM_NOT_FRIEND: ("not_a_contact", "企业微信：客户已不是该员工的联系人"),
               WECOM_LIMIT: ("skipped_limit", "企业微信：客户本月接收群发已达上限")}
    for wecom_status, (status, reason) in targets.items():
        rows = by_status.get(wecom_status) or []
        externals = [e for e, _ in rows]
        for i in range(0, len(externals), 1000):
            moved[status] = moved.get(status, 0) + (session.execute(
                update(MassMessageRecipient).where(
                    MassMessageRecipient.send_id == send.id, MassMessageRecipient.status == "pending",
                    MassMessageRecipient.external_userid.in_(externals[i:i + 1000]))
                .values(status=status, reason=reason, wecom_status=wecom_status,
                        sent_at=now if status == "sent" else None, updated_at=now)
                .execution_options(synchronize_session=False)).rowcount or 0)
    if moved.get("not_a_contact") or moved.get("skipped_limit"):
        _give_back(session, send, message)
    send.polled_at = now
    still = session.scalar(select(func.count()).select_from(MassMessageRecipient).where(
        MassMessageRecipient.send_id == send.id, MassMessageRecipient.status == "pending")) or 0
    if not still:
        send.status = "done"
    session.flush()
    if not still:
        open_sends = session.scalar(select(func.count()).select_from(MassMessageSend).where(
            MassMessageSend.mass_message_id == message.id,
            MassMessageSend.status.in_((*OPEN_SEND_STATUSES, "created")))) or 0
        if not open_sends and message.status in ("sent", "sending"):
            message.status, message.finished_at = "done", now
            session.flush()
    return moved


def sends_to_poll(session: Session, message_id: int | None = None) -> list[int]:
    stmt = select(MassMessageSend.id).where(MassMessageSend.status == "created",
                                            MassMessageSend.created_at >= clock.now() - POLL_FOR)
    if message_id is not None:
        stmt = stmt.where(MassMessageSend.mass_message_id == message_id)
    return list(session.scalars(stmt.order_by(MassMessageSend.id)))


def remind(session: Session, viewer: Viewer | None, message_id: int) -> int:
    """Remind the senders who have not confirmed yet (remind_groupmsg_send), at most 3 times in 24 hours."""
    _ensure_sender(viewer)
    message = get_message(session, message_id)
    now = clock.now()
    sends = session.scalars(select(MassMessageSend).where(MassMessageSend.mass_message_id == message.id,
                                                          MassMessageSend.status == "created",
                                                          MassMessageSend.msgid.is_not(None))
                            .order_by(MassMessageSend.id).with_for_update()).all()
    sends = [s for s in sends if s.task_status != 2]
    if not sends:
        raise ValidationFailed("没有需要提醒的员工（都已确认发送）")
    reminded = 0
    for send in sends:
        recent = [t for t in send.reminded_at or [] if datetime.fromisoformat(t) > now - REMIND_WINDOW]
        if len(recent) >= MAX_REMINDS:
            continue
        get_gateway().remind_groupmsg_send(send.msgid or "")
        send.reminded_at = [*recent, now.isoformat()]
        reminded += 1
    if not reminded:
        raise RemindLimitReached()
    session.flush()
    audit.record(session, "wecom.mass.remind", entity_type="mass_message", entity_id=message.id,
                 after={"senders": reminded})
    return reminded


# --- reading -------------------------------------------------------------------------------------

def recipient_counts(session: Session, message_id: int) -> dict[str, int]:
    return dict(session.execute(select(MassMessageRecipient.status, func.count())
                                .where(MassMessageRecipient.mass_message_id == message_id)
                                .group_by(MassMessageRecipient.status)).all())


def sends_of(session: Session, message_id: int) -> list[MassMessageSend]:
    return list(session.scalars(select(MassMessageSend).where(MassMessageSend.mass_message_id == message_id)
                                .order_by(MassMessageSend.sender_userid, MassMessageSend.chunk)))


@dataclass
class RecipientRow:
    customer_id: int
    name: str
    phone_masked: str | None
    sender: str | None
    status: str
    reason: str | None
    sent_at: datetime | None


def recipients(session: Session, message_id: int, *, status: str | None = None, page: int = 1,
               per_page: int = 50) -> list[RecipientRow]:
    stmt = (select(MassMessageRecipient.customer_id, Customer.name, Customer.phone_masked,
                   MassMessageRecipient.sender_userid, MassMessageRecipient.status, MassMessageRecipient.reason,
                   MassMessageRecipient.sent_at)
            .join(Customer, Customer.id == MassMessageRecipient.customer_id)
            .where(MassMessageRecipient.mass_message_id == message_id))
    if status:
        stmt = stmt.where(MassMessageRecipient.status == status)
    stmt = stmt.order_by(MassMessageRecipient.id).limit(per_page).offset((max(page, 1) - 1) * per_page)
    return [RecipientRow(*row) for row in session.execute(stmt)]
