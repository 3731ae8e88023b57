"""Seen nonces of signed callbacks (WeCom callbacks, WeChat Pay notifications): one rule for every inbox.

Each verified request's ``(nonce, timestamp)`` is recorded with the sha256 of its body. The same pair
again with the same body is the provider re-delivering a request it got no answer to: acknowledged,
nothing new stored. The same pair with another body is a replay: refused, nothing stored.

The owning inbox writes its nonce table (its own statement on PostgreSQL, :func:`record` row by row
elsewhere) and asks :func:`outcome` what a request is; :func:`repeats_in_batch` settles a nonce that
comes twice inside one batch before anything is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import insert_ignore

__all__ = ["Outcome", "body_digest", "outcome", "record", "repeats_in_batch"]

Outcome = Literal["new", "redelivery", "replay"]


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def outcome(nonce_new: bool, same_body: bool) -> Outcome:
    """A request whose nonce was new is ``new``; a known nonce is a ``redelivery`` with the same body,
    a ``replay`` with another."""
    if nonce_new:
        return "new"
    return "redelivery" if same_body else "replay"


def repeats_in_batch(rows: Sequence[Mapping[str, Any]]) -> dict[int, bool]:
    """Rows (``nonce``, ``timestamp``, ``digest``) that repeat an earlier row's nonce in the same batch:
    index → same body. Such rows are never written; the first one decides."""
    repeated: dict[int, bool] = {}
    seen: dict[tuple[str, str], str] = {}
    for i, row in enumerate(rows):
        key = (row["nonce"], row["timestamp"])
        if key in seen:
            repeated[i] = seen[key] == row["digest"]
        else:
            seen[key] = row["digest"]
    return repeated


def record(session: Session, model: type[Any], *, nonce: str, timestamp: str, digest: str,
           now: datetime) -> tuple[bool, bool]:
    """Insert one nonce row (``model``: a table with nonce, timestamp, digest, seen_at, unique on the
    first two): (nonce new, a known nonce came with the same body). The database decides a race."""
    if insert_ignore(session, model, {"nonce": nonce, "timestamp": timestamp, "digest": digest, "seen_at": now},
                     ["nonce", "timestamp"]) is not None:
        return True, False
    known = session.scalar(select(model.digest).where(model.nonce == nonce, model.timestamp == timestamp))
    return False, known == digest
