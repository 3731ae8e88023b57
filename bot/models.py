"""Tables of the WeCom channel: the callback inbox and the nonce ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import pii_rotation
from core.db import Base


class WecomInbox(Base):
    """Every verified callback, stored under a unique event key before we answer WeCom.

    ``payload_enc`` is the decrypted message sealed by our PII vault (chat messages may carry phone
    numbers); ``summary`` is a masked one-liner for the console.
    """

    __tablename__ = "wecom_inbox"
    __table_args__ = (Index("ix_wecom_inbox_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(80))  # "event:change_external_contact:add_external_contact", "text"
    urgent: Mapped[bool] = mapped_column(default=False)  # add_external_contact: its welcome code dies in 20 s
    payload_enc: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


pii_rotation.register(WecomInbox.payload_enc, "payload")


class WecomNonce(Base):
    """Nonces seen inside the timestamp window: a replayed request is refused. Pruned periodically."""

    __tablename__ = "wecom_nonce"
    __table_args__ = (UniqueConstraint("nonce", "timestamp"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(16))
    # sha256 of the request body: the same (nonce, timestamp) with the same body is WeCom re-delivering
    # a request it got no answer to (acknowledged); with another body it is a replay (refused).
    digest: Mapped[str | None] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(index=True)


from bot.models_channel import *  # noqa: E402,F401,F403 - channel codes, relations, group chats
from bot.models_chat import WecomRobot  # noqa: E402,F401 - team group robots (群机器人)
from bot.models_gateway import WecomAccessToken  # noqa: E402,F401 - the gateway token cache
from bot.models_mass import *  # noqa: E402,F401,F403 - mass messages, segment group routes, tag origins
