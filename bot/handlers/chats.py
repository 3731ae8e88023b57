"""Customer group chats (``change_external_chat``): our mirror of chats and their members.

Every create / update (add_member, del_member, change_owner, change_name, change_notice) is handled
the same way: read the chat through ``groupchat/get`` and reconcile the mirror with it (members who
appeared join, members who vanished leave). Reconciling instead of applying the event's detail makes
a lost, duplicated or out-of-order event harmless. A member who is one of our customers gets a
timeline event (入群 / 退群). ``dismiss`` marks the chat dismissed and everyone gone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.gateway import get_gateway
from bot.inbox import handles
from bot.models_channel import GroupChat, GroupChatMember
from bot.wecom_errors import WecomApiError
from core import clock
from core.db import insert_ignore
from crm import customers, org_service
from crm.models import Customer

log = logging.getLogger(__name__)

EVENT = "event:change_external_chat:"
CHAT_GONE = 40050
JOIN_SCENES = {1: "由成员邀请入群", 2: "由成员邀请入群（链接）", 3: "通过扫描群二维码入群"}


def _chat_row(session: Session, chat_id: str) -> GroupChat:
    now = clock.now()
    insert_ignore(session, GroupChat, {"chat_id": chat_id, "name": "", "status": "active", "member_count": 0,
                                       "created_at": now, "updated_at": now}, ["chat_id"])
    chat = session.scalar(select(GroupChat).where(GroupChat.chat_id == chat_id).with_for_update())
    assert chat is not None
    return chat


def _epoch(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return clock.now()


def refresh_chat(session: Session, chat_id: str) -> GroupChat | None:
    """Reconcile the mirror of one chat with ``groupchat/get``; returns it (None if WeCom has no such chat)."""
    try:
        detail = get_gateway().groupchat_get(chat_id, need_name=True).get("group_chat") or {}
    except WecomApiError as exc:
        if exc.errcode == CHAT_GONE:
            log.warning("groupchat/get: chat no longer exists; marking it dismissed")
            dismiss_chat(session, chat_id)
            return None
        raise
    chat = _chat_row(session, chat_id)
    now = clock.now()
    owner = str(detail.get("owner") or "") or None
    if owner != chat.owner_userid:
        staff = org_service.find_by_wecom_userid(session, owner) if owner else None
        chat.owner_userid, chat.owner_staff_id = owner, staff.id if staff else None
    chat.name = str(detail.get("name") or "")[:100]
    chat.notice = detail.get("notice") or None
    chat.status, chat.dismissed_at = "active", None
    members = {str(m.get("userid")): m for m in detail.get("member_list") or [] if m.get("userid")}
    chat.member_count = len(members)
    chat.updated_at = now
    session.flush()
    present = {m.member_id: m for m in session.scalars(select(GroupChatMember).where(
        GroupChatMember.chat_id == chat_id, GroupChatMember.left_at.is_(None)))}
    known = {m.member_id: m for m in session.scalars(select(GroupChatMember).where(
        GroupChatMember.chat_id == chat_id, GroupChatMember.member_id.in_(list(members) or [""])))}
    joined = [mid for mid in members if mid not in present]
    left = [mid for mid in present if mid not in members]
    externals = ([mid for mid in joined if int(members[mid].get("type") or 2) == 2]
                 + [mid for mid in left if present[mid].member_type == 2])
    by_external = dict(session.execute(select(Customer.wecom_external_userid, Customer.id).where(
        Customer.wecom_external_userid.in_(externals or [""]))).all())
    for mid in joined:
        m = members[mid]
        member_type = int(m.get("type") or 2)
        row = known.get(mid)
        values = {"member_type": member_type, "customer_id": by_external.get(mid), "join_scene": m.get("join_scene"),
                  "joined_at": _epoch(m.get("join_time")), "left_at": None}
        if row is None:
            session.add(GroupChatMember(chat_id=chat_id, member_id=mid, **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
        if by_external.get(mid):
            scene = JOIN_SCENES.get(int(m.get("join_scene") or 0), "入群")
            customers.record_event(session, by_external[mid], "wecom.group_join",
                                   f"入群「{chat.name or '未命名群聊'}」（{scene}）", ref_type="group_chat",
                                   ref_id=chat_id)
    if left:
        session.execute(update(GroupChatMember).where(GroupChatMember.chat_id == chat_id,
                                                      GroupChatMember.member_id.in_(left))
                        .values(left_at=now).execution_options(synchronize_session="fetch"))
        for mid in left:
            if by_external.get(mid):
                customers.record_event(session, by_external[mid], "wecom.group_leave",
                                       f"退出群聊「{chat.name or '未命名群聊'}」", ref_type="group_chat", ref_id=chat_id)
    session.flush()
    return chat


def dismiss_chat(session: Session, chat_id: str) -> GroupChat:
    chat = _chat_row(session, chat_id)
    now = clock.now()
    if chat.status != "dismissed":
        chat.status, chat.dismissed_at, chat.member_count, chat.updated_at = "dismissed", now, 0, now
        session.execute(update(GroupChatMember).where(GroupChatMember.chat_id == chat_id,
                                                      GroupChatMember.left_at.is_(None))
                        .values(left_at=now).execution_options(synchronize_session="fetch"))
        session.flush()
    return chat


@handles(EVENT + "create", EVENT + "update")
def on_chat_change(session: Session, fields: dict[str, str]) -> None:
    chat_id = fields.get("ChatId", "")
    if chat_id:
        refresh_chat(session, chat_id)


@handles(EVENT + "dismiss")
def on_chat_dismiss(session: Session, fields: dict[str, str]) -> None:
    chat_id = fields.get("ChatId", "")
    if chat_id:
        dismiss_chat(session, chat_id)
