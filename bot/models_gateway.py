"""Table of the gateway: the access-token cache used when there is no Redis (embedded default)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["WecomAccessToken"]


class WecomAccessToken(Base):
    """One row per (corp id, secret hash): the current access token, sealed by the PII vault.

    The row is also the refresh lock: a refresher holds it ``FOR UPDATE`` while it calls gettoken.
    An empty ``token_enc`` means "no token yet".
    """

    __tablename__ = "wecom_access_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(80), unique=True)
    token_enc: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime]
    updated_at: Mapped[datetime]
