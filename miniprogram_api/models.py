"""Tables of the mini-program channel: login sessions, used login codes, application drafts and their uploaded documents, and the share scenes new users arrived through.

Money is integer fen (``*_amount``); instants are aware UTC (``*_at``). Personal data: the WeChat
session key is sealed (``core.pii.seal(PAYLOAD, …)``); the ID number goes to the CRM customer (sealed
there), never here; uploaded images live on disk under ``SCRM_MP_UPLOAD_DIR``, only their checksum
and a random storage name here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import pii_rotation
from core.db import Base

__all__ = [
    "DRAFT_STATUS_LABELS", "DraftStatus", "MpApplicationDraft", "MpDocument", "MpReferralAttribution",
    "MpSession", "MpUsedCode",
]


class MpSession(Base):
    """A mini-program login: the bearer token's SHA-256 (never the token), bound to the WeChat identity."""

    __tablename__ = "mp_session"
    __table_args__ = (Index("ix_mp_session_customer", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    openid: Mapped[str] = mapped_column(String(64))
    unionid: Mapped[str | None] = mapped_column(String(64))
    session_key_enc: Mapped[str | None] = mapped_column(String(200))  # pii.seal(PAYLOAD, session_key)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


pii_rotation.register(MpSession.session_key_enc, "payload")


class MpUsedCode(Base):
    """A wx.login code already exchanged: a second use is refused before WeChat is asked."""

    __tablename__ = "mp_used_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime] = mapped_column(index=True)


class DraftStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


DRAFT_STATUS_LABELS = {"draft": "草稿", "submitted": "已提交"}


class MpApplicationDraft(Base):
    """An application (进件) being filled in the mini-program; submitted once into the lending workflow.

    ``submit_key`` is the client's idempotency key of the submission: a double tap sends the same key
    and gets the same answer (unique per customer)."""

    __tablename__ = "mp_application_draft"
    __table_args__ = (
        UniqueConstraint("customer_id", "submit_key"),
        Index("ix_mp_application_draft_customer", "customer_id", "status"),
        CheckConstraint("requested_amount IS NULL OR requested_amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("lending_product.id"))
    requested_amount: Mapped[int | None]  # fen
    term_months: Mapped[int | None]
    profile: Mapped[dict[str, Any] | None]  # income_amount (fen per month), occupation, employer … no ID number
    status: Mapped[str] = mapped_column(String(16), default=DraftStatus.DRAFT)
    submit_key: Mapped[str | None] = mapped_column(String(64))
    product_version_id: Mapped[int | None] = mapped_column(ForeignKey("lending_product_version.id"))
    application_id: Mapped[int | None]  # the lending workflow's application, once submitted
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]


class MpDocument(Base):
    """An uploaded image (ID photo …): stored on disk under a random name, checksummed."""

    __tablename__ = "mp_document"
    __table_args__ = (Index("ix_mp_document_customer", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("mp_application_draft.id"))
    kind: Mapped[str] = mapped_column(String(20))  # id_front | id_back | income | other
    content_type: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(120), unique=True)  # relative to SCRM_MP_UPLOAD_DIR
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class MpReferralAttribution(Base):
    """The share scene a new mini-program user arrived through, once per customer (first touch). The
    attribution that counts for commissions is the referral domain's; this is the channel's record."""

    __tablename__ = "mp_referral_attribution"
    __table_args__ = (
        Index("ix_mp_referral_attribution_referrer", "referrer_customer_id", "at"),
        CheckConstraint("customer_id <> referrer_customer_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), unique=True)
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("referrer.id"))
    referrer_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))  # a customer referrer
    scene: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
