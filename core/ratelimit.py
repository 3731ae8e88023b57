"""A small fixed-window rate limiter: ``hit(key, limit, window)`` counts one attempt, refuses over the limit.

- With Redis (``SCRM_REDIS_URL``): ``INCR`` + ``EXPIRE`` on ``ratelimit:<key>:<window start>``.
- Without: a row per (key, window start) in ``rate_limit_window``, counted with one
  ``INSERT … ON CONFLICT DO UPDATE SET hits = hits + 1 RETURNING hits`` (the database decides,
  two processes counting at once both count). Expired rows are purged periodically.

:func:`sliding` / :func:`hit_sliding` estimate a sliding window from the same rows: this window's count
plus the previous window's, weighted by how much of the previous window still lies inside the last
``window`` (the approximation Cloudflare and nginx use; never more than one window's worth off, and
without the fixed window's burst of twice the limit across a boundary).

The count is written in its OWN unit of work, so an attempt that fails afterwards (a wrong code, a
refused request rolled back) still counts. Call it before the request's own transaction starts
(on SQLite a second writer would wait for the first).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import Index, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import clock
from core.db import Base, unit_of_work
from core.errors import RateLimited
from core.settings import get_settings
from core.tasks import periodic, task

__all__ = ["RateLimitWindow", "hit", "hit_sliding", "sliding"]


class RateLimitWindow(Base):
    """One counting window of one key (the database backend)."""

    __tablename__ = "rate_limit_window"
    __table_args__ = (
        UniqueConstraint("key", "window_start"),
        Index("ix_rate_limit_window_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[int]  # epoch seconds, a multiple of the window length
    hits: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime]


def _window(window: timedelta) -> tuple[int, int]:
    seconds = max(1, int(window.total_seconds()))
    now = clock.now().timestamp()
    return int(math.floor(now / seconds) * seconds), seconds


def _count_db(session: Session, key: str, start: int, seconds: int) -> int:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = RateLimitWindow.__table__
    expires = datetime.fromtimestamp(start + seconds, tz=clock.now().tzinfo)
    stmt = insert(table).values(key=key, window_start=start, hits=1, expires_at=expires)
    stmt = stmt.on_conflict_do_update(index_elements=["key", "window_start"], set_={"hits": table.c.hits + 1})
    return int(session.execute(stmt.returning(table.c.hits)).scalar_one())


def _count_redis(url: str, key: str, start: int, seconds: int) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    name = f"ratelimit:{key}:{start}"
    pipe = client.pipeline()
    pipe.incr(name)
    pipe.expire(name, seconds + 5)
    count, _ = pipe.execute()
    return int(count)


def count(key: str, window: timedelta) -> int:
    """Count one attempt of ``key`` in the current window; returns the attempts so far (this one included)."""
    start, seconds = _window(window)
    key = key[:200]
    url = get_settings().redis_url
    if url:
        return _count_redis(url, key, start, seconds)
    with unit_of_work() as session:
        return _count_db(session, key, start, seconds)


def _read_db(session: Session, key: str, start: int) -> int:
    return int(session.scalar(select(RateLimitWindow.hits).where(RateLimitWindow.key == key,
                                                                 RateLimitWindow.window_start == start)) or 0)


def _sliding_redis(url: str, key: str, start: int, seconds: int, add: bool) -> tuple[int, int]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    name = f"ratelimit:{key}:{start}"
    pipe = client.pipeline()
    if add:
        pipe.incr(name)
        pipe.expire(name, 2 * seconds + 5)  # read again as the previous window
    else:
        pipe.get(name)
    pipe.get(f"ratelimit:{key}:{start - seconds}")
    results = pipe.execute()
    return int(results[0] or 0), int(results[-1] or 0)


def sliding(key: str, window: timedelta, *, add: bool = True, session: Session | None = None,
            database: bool = False) -> float:
    """The attempts of ``key`` in the last ``window`` (estimated), counting one more first when ``add``.

    ``database``: keep this key in the database even when Redis is configured, for low-volume counts that
    belong with the business data (login failures, staff intakes): counted in the caller's transaction
    they commit and roll back with it. ``session``: count in that session's transaction instead of a
    unit of work of its own (implies the database).
    """
    start, seconds = _window(window)
    key = key[:200]
    weight = 1 - (clock.now().timestamp() - start) / seconds
    url = None if database or session is not None else get_settings().redis_url
    if url:
        current, previous = _sliding_redis(url, key, start, seconds, add)
    else:
        def run(s: Session) -> tuple[int, int]:
            if add:
                # The row must outlive the next window too: it is read as the previous one.
                now_hits = _count_db(s, key, start, seconds)
                s.execute(RateLimitWindow.__table__.update().where(
                    RateLimitWindow.key == key, RateLimitWindow.window_start == start).values(
                    expires_at=datetime.fromtimestamp(start + 2 * seconds, tz=clock.now().tzinfo)))
            else:
                now_hits = _read_db(s, key, start)
            return now_hits, _read_db(s, key, start - seconds)

        if session is not None:
            current, previous = run(session)
        else:
            with unit_of_work() as own:
                current, previous = run(own)
    return current + previous * weight


def hit_sliding(key: str, limit: int, window: timedelta, message: str | None = None, *,
                session: Session | None = None, database: bool = False) -> None:
    """Count one attempt; raise :class:`RateLimited` once more than ``limit`` fall in the last ``window``.

    ``session``: count in the caller's transaction (see :func:`sliding`); a refusal then rolls its own count
    back with everything else, so only what went through is counted."""
    if sliding(key, window, session=session, database=database) > limit:
        start, seconds = _window(window)
        raise RateLimited(message, retry_after_seconds=max(1, start + seconds - int(clock.now().timestamp())))


def hit(key: str, limit: int, window: timedelta, message: str | None = None) -> None:
    """Count one attempt; raise :class:`RateLimited` (Chinese message, 429) once ``limit`` is exceeded."""
    attempts = count(key, window)
    if attempts > limit:
        start, seconds = _window(window)
        raise RateLimited(message, retry_after_seconds=max(1, start + seconds - int(clock.now().timestamp())))


PURGE_TASK = "core.ratelimit_purge"


@task(PURGE_TASK)
def purge_expired() -> int:
    """Delete finished windows (database backend)."""
    with unit_of_work() as session:
        return session.execute(delete(RateLimitWindow).where(RateLimitWindow.expires_at < clock.now())).rowcount or 0


periodic(PURGE_TASK, timedelta(hours=1))
