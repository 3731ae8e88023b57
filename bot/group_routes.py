"""Customer group chats (客户群): the full sync, and segment-routed group joining (分层拉群).

Sync: :func:`sync_group_chats` pages ``groupchat/list`` with its cursor and reconciles every chat
through :func:`bot.handlers.chats.refresh_chat` (``groupchat/get``, the same reconciliation the
``change_external_chat`` handler uses), then marks dismissed the chats of our mirror WeCom no longer
lists — only after the listing completed, so a failed page never dismisses anything.

Routes: a :class:`SegmentGroupRoute` is a group join code (``groupchat/add_join_way``: 1-5 chats,
optional automatic new rooms named ``room_base_name`` + number from ``room_base_id``, scene 2 = QR
code) made for the customers of one saved segment; its ``config_id`` is stored (the only handle to
update or delete it) and its ``state`` (≤30 characters, unique) marks joins through it. "Route"
(:func:`invite`) creates a mass message draft to the segment's members carrying the QR link; the
manager previews and sends it through the mass-message flow (per-sender templates, monthly limits).

Attribution: when a ``change_external_chat`` add_member event carries a route's ``State``, the
customers who joined are recorded (:class:`SegmentGroupJoin`, one per route and customer) with
whether they belong to the route's segment, and the join appears on their timeline. The members are
the event's ``MemChangeList`` when WeCom sends it, else the mirror's external members who joined the
chat with that scene in the ten minutes before the event.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import inbox
from bot.gateway import get_gateway
from bot.handlers import chats as chat_handlers
from bot.models_channel import GroupChat, GroupChatMember
from bot.models_mass import MassMessage, SegmentGroupJoin, SegmentGroupRoute
from bot.wecom_errors import WecomApiError, WecomUnavailable
from core import audit, clock
from core.db import insert_ignore
from core.errors import AppError, PermissionDenied, ValidationFailed
from crm import customers, segments
from crm.models import Customer, Segment
from crm.permissions import WECOM_OPS
from crm.scope import Viewer

log = logging.getLogger(__name__)

MANAGERS = WECOM_OPS
STATE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,30}$")
MAX_CHATS = 5
PAGE_LIMIT = 1000
JOIN_WINDOW = timedelta(minutes=10)
UPDATE_KIND = "event:change_external_chat:update"


class RouteNotFound(AppError):
    code = "group_route_not_found"
    status = 404
    message = "分层拉群配置不存在或已删除"


class RouteStateTaken(AppError):
    code = "group_route_state_taken"
    status = 409
    message = "该 state 已被其他分层拉群配置使用"


def _ensure_manager(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in MANAGERS:
        raise PermissionDenied("只有管理员和经理可以管理客户群和分层拉群")


# --- sync ----------------------------------------------------------------------------------------

@dataclass
class GroupSync:
    listed: int = 0
    refreshed: int = 0
    dismissed: int = 0
    pages: int = 0


def sync_group_chats(session: Session, *, limit: int = PAGE_LIMIT) -> GroupSync:
    result = GroupSync()
    gateway = get_gateway()
    seen: list[str] = []
    cursor = ""
    while True:
        page = gateway.groupchat_list(status_filter=0, limit=limit, cursor=cursor)
        result.pages += 1
        seen.extend(str(c["chat_id"]) for c in page.get("group_chat_list") or [] if c.get("chat_id"))
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    result.listed = len(seen)
    for chat_id in dict.fromkeys(seen):
        if chat_handlers.refresh_chat(session, chat_id) is not None:
            result.refreshed += 1
    gone = session.scalars(select(GroupChat.chat_id).where(GroupChat.status == "active",
                                                           GroupChat.chat_id.not_in(seen or [""]))).all()
    for chat_id in gone:
        chat_handlers.dismiss_chat(session, chat_id)
        result.dismissed += 1
    audit.record(session, "wecom.group_sync", entity_type="wecom_group_chats", entity_id="corp",
                 after={"listed": result.listed, "refreshed": result.refreshed, "dismissed": result.dismissed,
                        "pages": result.pages})
    return result


def list_chats(session: Session, *, include_dismissed: bool = False, limit: int = 500) -> list[GroupChat]:
    stmt = select(GroupChat)
    if not include_dismissed:
        stmt = stmt.where(GroupChat.status == "active")
    return list(session.scalars(stmt.order_by(GroupChat.updated_at.desc(), GroupChat.id.desc()).limit(limit)))


# --- routes --------------------------------------------------------------------------------------

@dataclass
class RouteInput:
    name: str
    segment_id: int
    chat_ids: list[str]
    state: str | None = None
    auto_create_room: bool = True
    room_base_name: str | None = None
    room_base_id: int | None = None


def _validated(session: Session, data: RouteInput) -> RouteInput:
    name = " ".join((data.name or "").split())
    if not name:
        raise ValidationFailed("请填写名称", field="name")
    if len(name) > 60:
        raise ValidationFailed("名称不能超过 60 个字", field="name")
    segments.get_segment(session, data.segment_id)
    chat_ids = list(dict.fromkeys(c.strip() for c in data.chat_ids if c and c.strip()))
    if not 1 <= len(chat_ids) <= MAX_CHATS:
        raise ValidationFailed(f"请选择 1 至 {MAX_CHATS} 个客户群（企业微信加入群聊二维码最多关联 {MAX_CHATS} 个群）",
                               field="chat_ids")
    active = set(session.scalars(select(GroupChat.chat_id).where(GroupChat.chat_id.in_(chat_ids),
                                                                 GroupChat.status == "active")))
    missing = [c for c in chat_ids if c not in active]
    if missing:
        raise ValidationFailed("所选客户群不存在或已解散，请先同步客户群", field="chat_ids")
    state = (data.state or "").strip() or f"sg{data.segment_id}_{secrets.token_hex(4)}"
    if not STATE_RE.match(state):
        raise ValidationFailed("state 只能由字母、数字、下划线和短横线组成，且不超过 30 个字符", field="state")
    if session.scalar(select(SegmentGroupRoute.id).where(SegmentGroupRoute.state == state)):
        raise RouteStateTaken()
    base_name = (data.room_base_name or "").strip() or None
    if base_name and len(base_name) > 40:
        raise ValidationFailed("自动建群的群名前缀不能超过 40 个字", field="room_base_name")
    if data.auto_create_room and not base_name:
        raise ValidationFailed("开启自动建群时请填写群名前缀", field="room_base_name")
    if data.room_base_id is not None and data.room_base_id < 1:
        raise ValidationFailed("自动建群的起始序号须为正整数", field="room_base_id")
    return RouteInput(name, data.segment_id, chat_ids, state, data.auto_create_room, base_name,
                      data.room_base_id if data.auto_create_room else None)


def create_route(session: Session, viewer: Viewer | None, data: RouteInput) -> SegmentGroupRoute:
    """Create the join code in WeCom first (``add_join_way``), then store it with its config_id."""
    _ensure_manager(viewer)
    data = _validated(session, data)
    gateway = get_gateway()
    answer = gateway.add_join_way(data.chat_ids, scene=2, remark=data.name[:30],
                                  auto_create_room=data.auto_create_room,
                                  room_base_name=data.room_base_name if data.auto_create_room else None,
                                  room_base_id=data.room_base_id, state=data.state)
    config_id = str(answer.get("config_id") or "")
    if not config_id:
        raise WecomUnavailable("企业微信没有返回 config_id")
    try:
        qr_code = (gateway.get_join_way(config_id).get("join_way") or {}).get("qr_code")
        route = SegmentGroupRoute(
            name=data.name, segment_id=data.segment_id, chat_id_list=data.chat_ids, config_id=config_id,
            state=data.state or "", qr_code=qr_code, auto_create_room=data.auto_create_room,
            room_base_name=data.room_base_name, room_base_id=data.room_base_id,
            created_by=viewer.staff_id if viewer else None, created_at=clock.now())
        with session.begin_nested():
            session.add(route)
            session.flush()
    except (IntegrityError, WecomApiError, WecomUnavailable) as exc:
        _undo(config_id)  # never leave a join code in WeCom we hold no record of
        if isinstance(exc, IntegrityError):
            raise RouteStateTaken() from exc
        raise
    audit.record(session, "wecom.group_route.create", entity_type="group_route", entity_id=route.id,
                 after={"name": route.name, "segment_id": route.segment_id, "chats": route.chat_id_list,
                        "state": route.state, "config_id": config_id})
    return route


def _undo(config_id: str) -> None:
    try:
        get_gateway().del_join_way(config_id)
    except (WecomApiError, WecomUnavailable):
        log.error("join way %s created in WeCom but not stored, and could not be deleted", config_id)


def get_route(session: Session, route_id: int) -> SegmentGroupRoute:
    route = session.get(SegmentGroupRoute, route_id)
    if route is None or route.deleted_at is not None:
        raise RouteNotFound()
    return route


def list_routes(session: Session) -> list[SegmentGroupRoute]:
    return list(session.scalars(select(SegmentGroupRoute).where(SegmentGroupRoute.deleted_at.is_(None))
                                .order_by(SegmentGroupRoute.id.desc())))


def delete_route(session: Session, viewer: Viewer | None, route_id: int) -> None:
    _ensure_manager(viewer)
    route = get_route(session, route_id)
    try:
        get_gateway().del_join_way(route.config_id)
    except WecomApiError as exc:
        if exc.errcode not in (40058, 41042):  # already gone in WeCom
            raise
    route.deleted_at = clock.now()
    session.flush()
    audit.record(session, "wecom.group_route.delete", entity_type="group_route", entity_id=route.id,
                 before={"name": route.name, "config_id": route.config_id})


def join_counts(session: Session, route_ids: list[int]) -> dict[int, tuple[int, int]]:
    """route id -> (customers joined through it, of whom in the segment)."""
    from sqlalchemy import case, func

    rows = session.execute(select(SegmentGroupJoin.route_id, func.count(),
                                  func.sum(case((SegmentGroupJoin.in_segment, 1), else_=0)))
                           .where(SegmentGroupJoin.route_id.in_(route_ids or [0]))
                           .group_by(SegmentGroupJoin.route_id)).all()
    return {r: (int(n), int(s or 0)) for r, n, s in rows}


def invite(session: Session, viewer: Viewer | None, route_id: int, text: str | None = None) -> MassMessage:
    """分层拉群 "route": a mass message draft to the route's segment carrying the join QR link."""
    from bot import mass_messages

    _ensure_manager(viewer)
    route = get_route(session, route_id)
    segment = session.get(Segment, route.segment_id)
    if not route.qr_code:
        raise ValidationFailed("该入群码没有二维码链接，请重新创建")
    body = (text or "").strip() or "您好，我们为您准备了专属客户群，群里有最新的产品和利率信息，欢迎扫码加入。"
    return mass_messages.create_message(session, viewer, mass_messages.MassInput(
        title=f"邀请入群：{route.name}"[:60], segment_id=route.segment_id, text=body,
        attachments=[{"msgtype": "link", "link": {"title": f"扫码加入「{segment.name if segment else route.name}」客户群"[:64],
                                                   "url": route.qr_code}}],
        route_id=route.id))


# --- attribution -----------------------------------------------------------------------------------

def _epoch(value: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(int(value or ""), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return clock.now()


def attribute_join(session: Session, fields: dict[str, str]) -> int:
    """Record the customers who joined a chat through a route's join code; returns how many were new."""
    if fields.get("UpdateDetail") != "add_member" or not fields.get("State"):
        return 0
    route = session.scalar(select(SegmentGroupRoute).where(SegmentGroupRoute.state == fields["State"]))
    chat_id = fields.get("ChatId", "")
    if route is None or not chat_id:
        return 0
    scene = int(fields["JoinScene"]) if (fields.get("JoinScene") or "").isdigit() else None
    listed = [m for m in re.split(r"[^A-Za-z0-9_\-]+", fields.get("MemChangeList") or "") if m]
    stmt = select(GroupChatMember.customer_id, GroupChatMember.joined_at).where(
        GroupChatMember.chat_id == chat_id, GroupChatMember.member_type == 2, GroupChatMember.left_at.is_(None),
        GroupChatMember.customer_id.is_not(None))
    if listed:
        stmt = stmt.where(GroupChatMember.member_id.in_(listed))
    else:
        at = _epoch(fields.get("CreateTime"))
        stmt = stmt.where(GroupChatMember.joined_at >= at - JOIN_WINDOW, GroupChatMember.joined_at <= at + JOIN_WINDOW)
        if scene is not None:
            stmt = stmt.where(GroupChatMember.join_scene == scene)
    members = session.execute(stmt).all()
    if not members:
        return 0
    segment = session.get(Segment, route.segment_id)
    member_ids = {r[0] for r in members}
    in_segment: set[int] = set()
    if segment is not None:
        in_segment = set(session.scalars(segments.members_query(session, segment).with_only_columns(Customer.id)
                                         .order_by(None).where(Customer.id.in_(member_ids))))
    chat_name = session.scalar(select(GroupChat.name).where(GroupChat.chat_id == chat_id)) or "未命名群聊"
    new = 0
    for customer_id, joined_at in sorted(members, key=lambda r: r[0]):
        if insert_ignore(session, SegmentGroupJoin, {
                "route_id": route.id, "customer_id": customer_id, "chat_id": chat_id,
                "in_segment": customer_id in in_segment, "join_scene": scene, "joined_at": joined_at},
                ["route_id", "customer_id"]) is None:
            continue
        new += 1
        where = "属于该分群" if customer_id in in_segment else "不在该分群内"
        customers.record_event(session, customer_id, "wecom.segment_group_join",
                               f"通过分层拉群「{route.name}」加入「{chat_name}」（{where}）",
                               ref_type="group_route", ref_id=route.id,
                               data={"chat_id": chat_id, "in_segment": customer_id in in_segment})
    return new


def _chat_update_with_attribution() -> None:
    """Compose with the chat mirror's handler: it reconciles the members first, then we attribute."""
    base = inbox.HANDLERS.get(UPDATE_KIND) or chat_handlers.on_chat_change
    if getattr(base, "with_route_attribution", False):
        return

    def on_chat_update(session: Session, fields: dict[str, str]) -> None:
        base(session, fields)
        attribute_join(session, fields)

    on_chat_update.with_route_attribution = True  # type: ignore[attr-defined]
    inbox.HANDLERS[UPDATE_KIND] = on_chat_update


_chat_update_with_attribution()


def has_joined(session: Session, route_id: int, customer_id: int) -> bool:
    return bool(session.scalar(select(exists().where(SegmentGroupJoin.route_id == route_id,
                                                     SegmentGroupJoin.customer_id == customer_id))))
