"""The customer record and what hangs directly off it: pools, co-handlers, owner history,
the timeline, and collisions (撞单)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ColumnElement, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.visitors import InternalTraversal

from core import pii_rotation
from core.db import Base
from crm.models.org import Staff

__all__ = [
    "CUSTOMER_TYPE_LABELS", "STAGE_LABELS", "STATUS_LABELS", "Collision", "Customer", "CustomerCollaborator",
    "CustomerEvent", "CustomerStatus", "CustomerType", "Grade", "HasLatinLetter", "OwnerChange", "Pool", "Stage",
]


class CustomerStatus(StrEnum):
    OWNED = "owned"  # 私海: a salesperson owns it
    POOL = "pool"  # 公海: in a public pool, claimable
    BLACKLIST = "blacklist"


STATUS_LABELS = {"owned": "私海", "pool": "公海", "blacklist": "黑名单"}


class Stage(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    INTENT = "intent"
    VISITED = "visited"
    APPLIED = "applied"
    APPROVED = "approved"
    SIGNED = "signed"
    DISBURSED = "disbursed"
    REPAYING = "repaying"
    CLOSED = "closed"
    LOST = "lost"


STAGE_LABELS = {
    "new": "新线索", "contacted": "已联系", "intent": "有意向", "visited": "已上门", "applied": "已进件",
    "approved": "已审批", "signed": "已签约", "disbursed": "已放款", "repaying": "还款中", "closed": "已结清",
    "lost": "已流失",
}


class CustomerType(StrEnum):
    CREDIT = "credit"
    MORTGAGE = "mortgage"
    CAR = "car"
    BUSINESS = "business"
    OTHER = "other"
    UNKNOWN = "unknown"  # 未知: a lead whose loan type nobody has asked yet (imports, WeCom, mini-program)


CUSTOMER_TYPE_LABELS = {"credit": "信用贷", "mortgage": "房抵贷", "car": "车抵贷", "business": "经营贷", "other": "其他",
                        "unknown": "未知"}


class Grade(Base):
    """Configurable customer grades (e.g. A–D), ordered by rank (1 = best)."""

    __tablename__ = "crm_grade"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    label: Mapped[str] = mapped_column(String(40))
    rank: Mapped[int] = mapped_column(unique=True)


class Pool(Base):
    """A public pool (公海), e.g. per branch or product line. Rules live beside it (crm.models.pool)."""

    __tablename__ = "crm_pool"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    # Who may see and claim from it: staff of this department subtree (None: everyone).
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class HasLatinLetter(ColumnElement[bool]):
    """``<column> contains a latin letter``, in the very words of ``ix_customer_latin_name``'s
    predicate (``~ '[A-Za-z]'`` on PostgreSQL, ``GLOB '*[A-Za-z]*'`` on SQLite), so that a query
    carrying it can use that partial index."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[str]) -> None:
        self.column = column


LATIN_NAME_PG = "name ~ '[A-Za-z]'"
PHONE_LAST4 = "substr(phone_masked, length(phone_masked) - 3)"  # the masked phone's last four digits
LATIN_NAME_SQLITE = "name GLOB '*[A-Za-z]*'"


@compiles(HasLatinLetter)
def _has_latin_letter(element: HasLatinLetter, compiler, **kw) -> str:  # noqa: ANN001 - SQLAlchemy's compiler
    return f"{compiler.process(element.column, **kw)} GLOB '*[A-Za-z]*'"


@compiles(HasLatinLetter, "postgresql")
def _has_latin_letter_pg(element: HasLatinLetter, compiler, **kw) -> str:  # noqa: ANN001
    return f"{compiler.process(element.column, **kw)} ~ '[A-Za-z]'"


# A keyed blind index (HMAC, hex): compared byte by byte on PostgreSQL (COLLATE "C"), never by
# the database's linguistic collation, which only slows every lookup and insert down (0007).
BLIND_INDEX = String(64).with_variant(String(64, collation="C"), "postgresql")


class Customer(Base):
    __tablename__ = "customer"
    __table_args__ = (
        CheckConstraint("demand_amount IS NULL OR demand_amount >= 0", name="demand_amount_non_negative"),
        CheckConstraint("(status = 'owned') = (owner_id IS NOT NULL)", name="owned_iff_owner"),
        CheckConstraint("status <> 'pool' OR pool_id IS NOT NULL", name="pool_needs_pool_id"),
        # Partial where the column is set (0007_customer_index_shapes): a customer is either owned or in
        # a pool, and a new lead has no follow-up planned, so each insert skips two index entries;
        # every query on these columns (owner_id = / IN, pool_id = / IN, next_followup_at < …)
        # implies IS NOT NULL, so the planner still uses them.
        Index("ix_customer_owner_status", "owner_id", "status", postgresql_where=text("owner_id IS NOT NULL"),
              sqlite_where=text("owner_id IS NOT NULL")),
        Index("ix_customer_pool_status", "pool_id", "status", postgresql_where=text("pool_id IS NOT NULL"),
              sqlite_where=text("pool_id IS NOT NULL")),
        Index("ix_customer_next_followup", "next_followup_at", postgresql_where=text("next_followup_at IS NOT NULL"),
              sqlite_where=text("next_followup_at IS NOT NULL")),
        # A period's leads (the dashboards' cohorts, the list's default order created_at DESC, id DESC) read from
        # this index alone on PostgreSQL: the owner is what the data scope asks (0030_dashperf_indexes).
        Index("ix_customer_created", "created_at", "id", postgresql_include=["owner_id"]),
        # No single-column indexes on stage, customer_type, source, grade, region (0005_customer_indexes):
        # few distinct values, no query needs them, every insert paid.
        # Search by pinyin initials (0008_customer_search_indexes): ``name_initials LIKE 'zs%'`` needs
        # the pattern operator class under a linguistic collation; a latin-letter search also looks
        # for the letters in the name, served by a partial index over the (few) names that have one.
        Index("ix_customer_name_initials", "name_initials", postgresql_ops={"name_initials": "varchar_pattern_ops"}),
        Index("ix_customer_name_pinyin", "name_pinyin", postgresql_ops={"name_pinyin": "varchar_pattern_ops"}),
        Index("ix_customer_latin_name", "id", postgresql_where=text(LATIN_NAME_PG),
              sqlite_where=text(LATIN_NAME_SQLITE)),
        # Search by the last four phone digits (0031_consoleload_list_indexes): ``PHONE_LAST4 = '1380'``, the same
        # words in both databases, instead of ``phone_masked LIKE '%1380'``, which reads every customer in scope.
        Index("ix_customer_phone_last4", text(PHONE_LAST4)),
        # The list sorted by last update (sort=updated_desc) for a manager or supervisor (0031_consoleload_list_indexes).
        # Measured on 1,000,000 customers (BENCHMARKS.md, "Customer list: sort by last update"): without it the sort
        # reads and sorts the whole department (company manager 1.4 s, team supervisor 0.67 s a page); with it
        # 48 ms and 102 ms. The price: updated_at changes with every customer update, so no update is HOT any
        # more (HOT 4,684 of 4,901 updates before, 0 of 4,999 after): each one writes an entry in every index of
        # the table (7.6 -> 11.5 ms per single-row update on the loaded machine). Customer updates come from
        # staff work (follow-ups, stage and grade changes): thousands a day, against a list page a manager opens
        # many times a day; taken. A salesperson's list needs none (their customers by owner, a few thousand).
        Index("ix_customer_updated", "updated_at", "id"),
        # A salesperson's list, newest first (0034_consolecpu_owner_created): their customers in the list's order,
        # so that a filtered page (stage=contacted, page 3) reads that page's rows of theirs, not the whole table's
        # newest rows until enough of theirs turn up (163 ms on 1,000,000 customers, ~1 ms with it). Partial as
        # ix_customer_owner_status. Its price: one more entry for every insert and every update (no customer
        # update is HOT since ix_customer_updated).
        Index("ix_customer_owner_created", "owner_id", "created_at", "id",
              postgresql_where=text("owner_id IS NOT NULL"), sqlite_where=text("owner_id IS NOT NULL")),
        # Identifiers most customers lack are unique where present (0006_import_write_path): a
        # partial unique index holds no entry for NULL, so a customer without one costs no insertion.
        *(Index(f"uq_customer_{column}", column, unique=True, postgresql_where=text(f"{column} IS NOT NULL"),
                sqlite_where=text(f"{column} IS NOT NULL"))
          for column in ("id_number_index", "wecom_external_userid", "wechat_unionid", "wechat_openid")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    name_initials: Mapped[str] = mapped_column(String(64), default="")  # pinyin initials, "zs"
    name_pinyin: Mapped[str] = mapped_column(String(255), default="")  # full pinyin, "zhangsan"
    # PII: ciphertext, keyed blind index (unique: one record per person), masked form for display.
    # The identifiers below the phone are unique where present (partial unique indexes, above).
    phone_enc: Mapped[str | None] = mapped_column(String(200))
    phone_index: Mapped[str | None] = mapped_column(BLIND_INDEX, unique=True)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    id_number_enc: Mapped[str | None] = mapped_column(String(200))
    id_number_index: Mapped[str | None] = mapped_column(BLIND_INDEX)
    id_number_masked: Mapped[str | None] = mapped_column(String(24))
    wecom_external_userid: Mapped[str | None] = mapped_column(String(64))
    wechat_unionid: Mapped[str | None] = mapped_column(String(64))
    wechat_openid: Mapped[str | None] = mapped_column(String(64))

    source: Mapped[str] = mapped_column(String(40), default="manual")
    source_detail: Mapped[str | None] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(40))
    customer_type: Mapped[str] = mapped_column(String(16), default=CustomerType.UNKNOWN)
    demand_amount: Mapped[int | None]  # fen
    demand_term_months: Mapped[int | None]
    demand_purpose: Mapped[str | None] = mapped_column(String(120))
    grade: Mapped[str | None] = mapped_column(ForeignKey("crm_grade.code"))
    stage: Mapped[str] = mapped_column(String(16), default=Stage.NEW)
    status: Mapped[str] = mapped_column(String(16), default=CustomerStatus.POOL)
    blacklist_reason: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("crm_pool.id"))
    previous_owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    note: Mapped[str | None] = mapped_column(String(1000))

    assigned_at: Mapped[datetime | None]
    last_followup_at: Mapped[datetime | None]
    next_followup_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]  # last time it went back to a pool (claim cooldown starts here)
    protected_until: Mapped[datetime | None]  # new-lead protection: not recycled before this
    stage_changed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    owner: Mapped[Staff | None] = relationship(foreign_keys=[owner_id])
    pool: Mapped[Pool | None] = relationship()


pii_rotation.register(Customer.phone_enc, "phone")
pii_rotation.register(Customer.id_number_enc, "id_number")


class CustomerCollaborator(Base):
    """Co-handlers of a deal (谈单协作): they see and work the customer beside the owner."""

    __tablename__ = "customer_collaborator"
    __table_args__ = (UniqueConstraint("customer_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    role: Mapped[str] = mapped_column(String(40), default="协作")
    added_at: Mapped[datetime]


class OwnerChange(Base):
    """Owner history: every change of hands, with why and by whom. Append-only.

    No foreign keys (0006_import_write_path): rows are written beside the customer change they
    record, from ids the writer holds, and never updated; a history row must outlive the staff or
    pool it names."""

    __tablename__ = "customer_owner_change"
    __table_args__ = (Index("ix_owner_change_customer", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int]  # customer.id
    from_owner_id: Mapped[int | None]  # staff.id
    to_owner_id: Mapped[int | None]  # staff.id
    from_pool_id: Mapped[int | None]  # crm_pool.id
    to_pool_id: Mapped[int | None]  # crm_pool.id
    # create | assign | claim | release | recycle | move | transfer | handover | blacklist | unblacklist
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(200))
    by_staff_id: Mapped[int | None]  # staff.id
    at: Mapped[datetime]


class CustomerEvent(Base):
    """One timeline of everything that happened to a customer, written by every domain. Append-only,
    without foreign keys like :class:`OwnerChange` (0006_import_write_path)."""

    __tablename__ = "customer_event"
    __table_args__ = (Index("ix_customer_event_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int]  # customer.id
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))  # e.g. created, owner.claim, followup, visit, wecom.add, application
    summary: Mapped[str] = mapped_column(String(300))
    actor_staff_id: Mapped[int | None]  # staff.id
    ref_type: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None]


class Collision(Base):
    """A lead that arrived for a customer someone else already owns (撞单): kept with the owner, counted."""

    __tablename__ = "customer_collision"
    __table_args__ = (Index("ix_collision_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    claimant_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    source: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))  # import | manual | wecom | miniprogram | api
    at: Mapped[datetime]
