"""Tags (标签) in groups, the customers that carry them, and saved segments (客户分群).

A tag may mirror a WeCom corp tag (``wecom_tag_id``); a tag deleted on either side is kept with
``deleted_at`` set (its name can then be reused: the uniqueness of names covers live rows only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from crm.models.customer import Customer

__all__ = ["CustomerTag", "Segment", "Tag", "TagGroup"]


class TagGroup(Base):
    __tablename__ = "crm_tag_group"
    __table_args__ = (
        Index("uq_crm_tag_group_live_name", "name", unique=True,
              postgresql_where=text("deleted_at IS NULL"), sqlite_where=text("deleted_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))
    sort: Mapped[int] = mapped_column(default=0)
    wecom_group_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class Tag(Base):
    __tablename__ = "crm_tag"
    __table_args__ = (
        Index("uq_crm_tag_live_name", "group_id", "name", unique=True,
              postgresql_where=text("deleted_at IS NULL"), sqlite_where=text("deleted_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("crm_tag_group.id"))
    name: Mapped[str] = mapped_column(String(30))
    sort: Mapped[int] = mapped_column(default=0)
    wecom_tag_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # the WeCom corp tag id
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]  # deleted here or on the WeCom side

    group: Mapped[TagGroup] = relationship()


class CustomerTag(Base):
    """One customer carrying one tag. The primary key (customer_id, tag_id) makes tagging idempotent;
    the (tag_id, customer_id) index serves "who carries tag X" and the segment EXISTS probes."""

    __tablename__ = "customer_tag"
    __table_args__ = (Index("ix_customer_tag_tag_customer", "tag_id", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("crm_tag.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime]
    added_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class Segment(Base):
    """A saved customer segment: a rule tree (see crm.segments) evaluated on demand, never materialised."""

    __tablename__ = "crm_segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    description: Mapped[str | None] = mapped_column(String(300))
    rule: Mapped[dict[str, Any]]
    for_mass_message: Mapped[bool] = mapped_column(default=False)  # offered as a mass-message audience
    for_group_routing: Mapped[bool] = mapped_column(default=False)  # offered to group routing (拉群)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# Segment counts filter on region and grade most of all, and leave blacklisted customers out by
# default (crm.segments): a partial covering index answers "region = … AND grade IN (…)" with an
# index-only scan that also yields owner_id (for the data scope) and id (for the tag EXISTS join).
Index("ix_customer_segment_region_grade", Customer.region, Customer.grade,
      postgresql_include=["owner_id", "id"],
      postgresql_where=text("status <> 'blacklist'"), sqlite_where=text("status <> 'blacklist'"))
