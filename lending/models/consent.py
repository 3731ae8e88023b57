"""Consent documents (隐私政策, a funder's 个人信息共享授权书) and the customers' consent records (PIPL).

The tables keep their mini-program names (``mp_consent_document``, ``mp_consent``): the mini-program is
where customers consent, the console is where staff publish documents and read who consented.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "CONSENT_ACTION_LABELS", "CONSENT_KIND_LABELS", "ConsentAction", "ConsentKind", "MpConsent", "MpConsentDocument",
]


class ConsentKind(StrEnum):
    PRIVACY = "privacy"  # 隐私政策
    SHARE = "share"  # 个人信息共享授权书 (to a named funder)


CONSENT_KIND_LABELS = {"privacy": "隐私政策", "share": "个人信息共享授权书"}


class MpConsentDocument(Base):
    """One version of a consent document. ``code`` names the document ("privacy", "share:<funder id>");
    versions of a code count 1, 2, …; the highest is the one a customer must have agreed to."""

    __tablename__ = "mp_consent_document"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int]
    funder_id: Mapped[int | None] = mapped_column(ForeignKey("lending_funder.id"))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(String(20000))
    content_sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]


class ConsentAction(StrEnum):
    GRANT = "grant"
    WITHDRAW = "withdraw"


CONSENT_ACTION_LABELS = {"grant": "同意", "withdraw": "撤回"}


class MpConsent(Base):
    """An explicit consent or its withdrawal: append-only; the latest row per (customer, code) decides."""

    __tablename__ = "mp_consent"
    __table_args__ = (
        Index("ix_mp_consent_customer_code", "customer_id", "code", "id"),
        CheckConstraint("action IN ('grant', 'withdraw')", name="action_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("mp_consent_document.id"))
    code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
