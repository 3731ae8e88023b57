"""One clock for the whole service.

Instants are timezone-aware UTC; business dates are Asia/Shanghai calendar dates. Tests freeze
the clock with :func:`frozen` instead of patching ``datetime``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")

_lock = threading.Lock()
_frozen: datetime | None = None


def now() -> datetime:
    """The current instant, aware UTC."""
    frozen_at = _frozen
    if frozen_at is not None:
        return frozen_at
    return datetime.now(UTC)


def today() -> date:
    """Today's business date in Asia/Shanghai."""
    return business_date(now())


def business_date(instant: datetime) -> date:
    return ensure_aware(instant).astimezone(BUSINESS_TZ).date()


def start_of_business_day(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in Asia/Shanghai."""
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def ensure_aware(instant: datetime) -> datetime:
    """Treat a naive datetime (as SQLite returns them) as UTC."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def freeze(instant: datetime) -> None:
    global _frozen
    with _lock:
        _frozen = ensure_aware(instant)


def advance(delta: timedelta) -> None:
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("advance() needs a frozen clock")
        _frozen = _frozen + delta


def unfreeze() -> None:
    global _frozen
    with _lock:
        _frozen = None


@contextlib.contextmanager
def frozen(instant: datetime) -> Iterator[None]:
    freeze(instant)
    try:
        yield
    finally:
        unfreeze()


@contextlib.contextmanager
def travel(instant: datetime) -> Iterator[None]:
    """Run a block at ``instant`` (the demo seeds months of history through the real services this way),
    then put the clock back as it was: frozen where it was frozen, running where it ran."""
    global _frozen
    with _lock:
        previous = _frozen
    freeze(instant)
    try:
        yield
    finally:
        with _lock:
            _frozen = previous
