"""Tables of the WeCom channel's customer-contact mirror: channel codes (渠道活码) with their adds and
attributions, the staff-customer relations WeCom reports, and group chats with their members.

- :class:`ChannelCode` is one 联系我 code created through ``add_contact_way``; ``config_id`` is what
  WeCom returns and the only handle to edit or delete it later, so it is stored and unique. ``state``
  (≤30 characters) is what WeCom echoes in ``add_external_contact``; what it *means* (channel,
  campaign, staff, referrer) is kept in columns here, never parsed out of the string.
- :class:`ChannelAdd` is one handled ``add_external_contact`` through a code: the daily add cap and
  the add/deletion statistics count these rows.
- :class:`ChannelAttribution` ties a customer to the first code that brought them (one per customer).
- :class:`WecomRelation` mirrors one (staff member, external contact) relation with its status, so a
  customer who deleted their salesperson is flagged (``status = 'deleted_by_customer'``).
- :class:`GroupChat` / :class:`GroupChatMember` mirror customer group chats (客户群).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["ChannelAdd", "ChannelAttribution", "ChannelCode", "GroupChat", "GroupChatMember", "WecomRelation"]


class ChannelCode(Base):
    __tablename__ = "wecom_channel_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(30), unique=True)
    channel: Mapped[str] = mapped_column(String(40))  # becomes customer.source of the customers it brings
    campaign: Mapped[str | None] = mapped_column(String(60))
    code_type: Mapped[int] = mapped_column(default=1)  # WeCom type: 1 single staff, 2 several
    staff_ids: Mapped[list[int]] = mapped_column(JSON)  # the primary staff, in order
    backup_staff_ids: Mapped[list[int]] = mapped_column(JSON)  # swapped in when a primary hits the daily cap
    active_userids: Mapped[list[str]] = mapped_column(JSON)  # the WeCom userids the code routes to right now
    swapped_on: Mapped[date | None]  # the Shanghai day backups were swapped in (restored the next day)
    referrer_ref: Mapped[str | None] = mapped_column(String(64))  # a referrer id or free text (referral links it)
    welcome_text: Mapped[str | None] = mapped_column(Text)
    tag_ids: Mapped[list[int]] = mapped_column(JSON)  # crm tags given to every customer it brings
    daily_cap: Mapped[int | None]  # adds per staff member per Shanghai day through this code; None: no cap
    skip_verify: Mapped[bool] = mapped_column(default=True)
    config_id: Mapped[str] = mapped_column(String(64), unique=True)
    qr_code: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class ChannelAdd(Base):
    """One customer added one staff member through a code, on a Shanghai business day.

    Unique per (code, staff, contact, day): a re-add the same day is not counted twice."""

    __tablename__ = "wecom_channel_add"
    __table_args__ = (
        UniqueConstraint("channel_code_id", "staff_userid", "external_userid", "add_date"),
        Index("ix_wecom_channel_add_cap", "channel_code_id", "staff_userid", "add_date"),
        Index("ix_wecom_channel_add_relation", "external_userid", "staff_userid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_code_id: Mapped[int] = mapped_column(ForeignKey("wecom_channel_code.id", ondelete="CASCADE"))
    staff_userid: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    external_userid: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    add_date: Mapped[date]
    at: Mapped[datetime]
    deleted_by: Mapped[str | None] = mapped_column(String(16))  # customer | staff
    deleted_at: Mapped[datetime | None]


class ChannelAttribution(Base):
    """The code that first brought a customer (first touch): applications and disbursements count here."""

    __tablename__ = "wecom_channel_attribution"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), unique=True)
    channel_code_id: Mapped[int] = mapped_column(ForeignKey("wecom_channel_code.id", ondelete="CASCADE"),
                                                 index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    referrer_ref: Mapped[str | None] = mapped_column(String(64))
    new_customer: Mapped[bool] = mapped_column(default=True)  # the code created the record (not a merge)
    at: Mapped[datetime]


class WecomRelation(Base):
    """One staff member's relation with one external contact, as WeCom's events report it."""

    __tablename__ = "wecom_relation"
    __table_args__ = (UniqueConstraint("external_userid", "staff_userid"),
                      Index("ix_wecom_relation_customer", "customer_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(64))
    staff_userid: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    # active | pending (half added: the staff member has not accepted) | deleted_by_customer
    # | deleted_by_staff | transferred
    status: Mapped[str] = mapped_column(String(24))
    state: Mapped[str | None] = mapped_column(String(30))
    remark: Mapped[str | None] = mapped_column(String(100))
    added_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class GroupChat(Base):
    __tablename__ = "wecom_group_chat"

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    owner_userid: Mapped[str | None] = mapped_column(String(64))
    owner_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | dismissed
    member_count: Mapped[int] = mapped_column(default=0)
    notice: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    dismissed_at: Mapped[datetime | None]


class GroupChatMember(Base):
    """A member of a group chat: an external contact (member_type 2) or a staff member (1)."""

    __tablename__ = "wecom_group_chat_member"
    __table_args__ = (UniqueConstraint("chat_id", "member_id"),
                      Index("ix_wecom_group_chat_member_member", "member_id", "left_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[str] = mapped_column(ForeignKey("wecom_group_chat.chat_id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(String(64))  # external_userid or userid
    member_type: Mapped[int]  # 1 staff, 2 external contact
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    join_scene: Mapped[int | None]
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
