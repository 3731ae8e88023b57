"""Tables of WeCom mass messages (群发), segment group routing (分层拉群) and the corp tags our app created.

- :class:`MassMessage` is one mass message to a saved segment (客户分群); :class:`MassMessageSend` is
  one ``add_msg_template`` call (one sender, ≤10,000 external contacts) with the ``msgid`` WeCom
  returns; :class:`MassMessageRecipient` is one customer's fate (pending / sent / failed /
  skipped_limit / not_a_contact), unique per (message, customer).
- :class:`MassMessageQuota` counts the mass messages a customer was given per Shanghai month: WeCom
  lets a customer receive at most as many as the month has days. The count is taken with one
  conditional ``UPDATE … WHERE sent_count < limit`` (the row lock decides two sends at once) and
  given back when WeCom reports the message was not delivered.
- :class:`SegmentGroupRoute` is a group join code (``groupchat/add_join_way``, ``config_id`` stored)
  for the customers of one segment; :class:`SegmentGroupJoin` records a customer who joined through it.
- :class:`WecomTagOrigin` remembers the corp tags and groups our app created through
  ``add_corp_tag``: WeCom lets an app edit or delete only those.

Group chats themselves are mirrored in :mod:`bot.models_channel` (GroupChat, GroupChatMember).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["MassMessage", "MassMessageQuota", "MassMessageRecipient", "MassMessageSend", "SegmentGroupJoin",
           "SegmentGroupRoute", "WecomTagOrigin"]


class MassMessage(Base):
    __tablename__ = "wecom_mass_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(60))
    segment_id: Mapped[int] = mapped_column(ForeignKey("crm_segment.id"), index=True)
    route_id: Mapped[int | None] = mapped_column(ForeignKey("wecom_segment_group_route.id"))  # 分层拉群 invitation
    text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # WeCom attachment objects, at most 9
    # draft → sending (recipients fixed, templates being created) → sent (every template created) → done
    # (every recipient final); failed when no template could be created; cancelled drafts.
    status: Mapped[str] = mapped_column(String(16), default="draft")
    month: Mapped[str | None] = mapped_column(String(7))  # Shanghai "YYYY-MM" the quota was taken in
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class MassMessageSend(Base):
    """One ``add_msg_template`` (chat_type single) for one sender and at most 10,000 recipients."""

    __tablename__ = "wecom_mass_message_send"
    __table_args__ = (Index("ix_wecom_mass_message_send_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mass_message_id: Mapped[int] = mapped_column(ForeignKey("wecom_mass_message.id", ondelete="CASCADE"),
                                                 index=True)
    sender_userid: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    chunk: Mapped[int] = mapped_column(default=0)
    recipients: Mapped[int] = mapped_column(default=0)
    # pending (not yet created in WeCom) | submitting (claimed for the add_msg_template call: a template may
    # exist in WeCom; a retry looks for it before calling again) | created (msgid known, awaiting 发送)
    # | done (every recipient final) | failed (WeCom refused the template)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    msgid: Mapped[str | None] = mapped_column(String(64), unique=True)
    task_status: Mapped[int | None]  # get_groupmsg_task: 0 not sent yet, 2 sent by the staff member
    error: Mapped[str | None] = mapped_column(String(300))
    reminded_at: Mapped[list[str]] = mapped_column(JSON)  # ISO instants of remind_groupmsg_send calls
    created_at: Mapped[datetime]
    polled_at: Mapped[datetime | None]


class MassMessageRecipient(Base):
    __tablename__ = "wecom_mass_message_recipient"
    __table_args__ = (
        UniqueConstraint("mass_message_id", "customer_id"),
        Index("ix_wecom_mass_recipient_send", "send_id", "external_userid"),
        Index("ix_wecom_mass_recipient_status", "mass_message_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mass_message_id: Mapped[int] = mapped_column(ForeignKey("wecom_mass_message.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    external_userid: Mapped[str | None] = mapped_column(String(64))
    sender_userid: Mapped[str | None] = mapped_column(String(64))
    send_id: Mapped[int | None] = mapped_column(ForeignKey("wecom_mass_message_send.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed | skipped_limit | not_a_contact
    reason: Mapped[str | None] = mapped_column(String(120))
    quota_taken: Mapped[bool] = mapped_column(default=False)
    wecom_status: Mapped[int | None]  # get_groupmsg_send_result: 0 not sent, 1 sent, 2 not a contact, 3 limit
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class MassMessageQuota(Base):
    """Mass messages given to one customer in one Shanghai month (WeCom: at most the month's days)."""

    __tablename__ = "wecom_mass_message_quota"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    sent_count: Mapped[int] = mapped_column(default=0)


class SegmentGroupRoute(Base):
    """分层拉群: the group join code that customers of one segment are invited through."""

    __tablename__ = "wecom_segment_group_route"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    segment_id: Mapped[int] = mapped_column(ForeignKey("crm_segment.id"), index=True)
    chat_id_list: Mapped[list[str]] = mapped_column(JSON)  # 1-5 group chats, filled in order
    config_id: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(30), unique=True)
    qr_code: Mapped[str | None] = mapped_column(String(500))
    auto_create_room: Mapped[bool] = mapped_column(default=True)
    room_base_name: Mapped[str | None] = mapped_column(String(40))
    room_base_id: Mapped[int | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class SegmentGroupJoin(Base):
    """A customer joined a group through a route's join code (attributed by the route's state)."""

    __tablename__ = "wecom_segment_group_join"
    __table_args__ = (UniqueConstraint("route_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("wecom_segment_group_route.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    in_segment: Mapped[bool]  # the customer belonged to the route's segment when they joined
    join_scene: Mapped[int | None]
    joined_at: Mapped[datetime]


class WecomTagOrigin(Base):
    """A corp tag or tag group created by our app (``add_corp_tag``): the only ones it may edit or delete."""

    __tablename__ = "wecom_tag_origin"

    wecom_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # tag | group
    created_at: Mapped[datetime]
