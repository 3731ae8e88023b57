"""A short-lived store of computed figures, shared by the web processes (issue 18 item 3).

Some console figures are an aggregate over most of the customer table (a manager's dashboard, the drop-downs of
the customer list): fifty staff clicking through the console cannot each pay for them. A caller keeps such a
figure here as text, with the instant it was computed, and reads it back while it is younger than its own
time to live: in Redis when ``SCRM_REDIS_URL`` is set (every server process sees one entry), in this process
otherwise (bounded). A Redis failure costs the cache, never the page.

The caller owns the key, and the key must hold everything the figure depends on (the viewer's whole scope
identity, the filters): an entry is never shown to anyone its key does not describe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from core import clock
from core.settings import get_settings

__all__ = ["age_seconds", "cached", "clear_local", "make_key", "read", "redis_client", "refresh_if_due", "write"]

log = logging.getLogger(__name__)

LOCAL_MAX_ENTRIES = 512
REDIS_TIMEOUT_SECONDS = 2
COMPUTE_WAIT_SECONDS = 30  # how long a viewer waits for another's computation of the same entry before doing it
POLL_SECONDS = 0.1

_local: dict[str, tuple[datetime, str]] = {}
_local_lock = threading.Lock()
_clients: dict[str, Any] = {}  # one Redis client (and its connection pool) per URL, not a connection per read
_computing: dict[str, threading.Lock] = {}  # in this process: one lock per key being computed


def make_key(prefix: str, identity: dict[str, Any]) -> str:
    """``prefix:`` and a hash of ``identity`` (plain JSON values): everything the figure depends on."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"{prefix}:{digest}"


def read(key: str, ttl: int) -> tuple[datetime, str] | None:
    """``(computed_at, payload)`` of ``key`` if it is younger than ``ttl`` seconds; None otherwise."""
    hit = _read(key)
    if hit is None or clock.now() - hit[0] >= timedelta(seconds=ttl):
        return None
    return hit


def cached(key: str, ttl: int, compute: Callable[[], str]) -> tuple[datetime, str]:
    """``(computed_at, payload)`` of ``key``: the entry if younger than ``ttl`` seconds, else ``compute()``'s,
    kept. Computed once when several requests miss it at the same moment (two managers of one department opening
    the console after a deployment): the first computes, the others wait for its entry (up to
    ``COMPUTE_WAIT_SECONDS``, then compute it themselves) — a lock in Redis across the server processes, in this
    process otherwise."""
    hit = read(key, ttl)
    if hit is not None:
        return hit
    url = get_settings().redis_url
    with _redis_turn(url, key, ttl) if url else _local_turn(key):
        hit = read(key, ttl)  # computed by whoever held the turn before us
        if hit is not None:
            return hit
        at = clock.now()
        payload = compute()
        write(key, at, payload, ttl)
        return at, payload


def refresh_if_due(key: str, ttl: int, due_age: float, compute: Callable[[], str]) -> bool:
    """Recompute ``key`` ahead of its expiry (``core.figure_refresh``): when it is missing or at least ``due_age``
    seconds old and nobody else is computing it at this moment. True when this call computed it. Unlike
    :func:`cached` it never waits for another computation: the refresher moves on to the next figure."""
    if not _due(key, due_age):
        return False
    url = get_settings().redis_url
    with _redis_try_turn(url, key) if url else _local_turn(key, wait=False) as held:
        if not held or not _due(key, due_age):
            return False
        at = clock.now()
        write(key, at, compute(), ttl)
        return True


def age_seconds(key: str) -> float | None:
    """How old ``key``'s entry is (None: there is none)."""
    hit = _read(key)
    return None if hit is None else (clock.now() - hit[0]).total_seconds()


def _due(key: str, due_age: float) -> bool:
    age = age_seconds(key)
    return age is None or age >= due_age


@contextlib.contextmanager
def _local_turn(key: str, *, wait: bool = True) -> Iterator[bool]:
    """This process's turn to compute ``key`` (True when held): waited for, or only taken if free."""
    with _local_lock:
        lock = _computing.setdefault(key, threading.Lock())
    got = lock.acquire(timeout=COMPUTE_WAIT_SECONDS) if wait else lock.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            lock.release()


@contextlib.contextmanager
def _redis_turn(url: str, key: str, ttl: int) -> Iterator[None]:
    """Hold ``key``'s computing mark (SET NX, expiring), or wait until its holder wrote the entry or let go."""
    import redis

    token = None
    deadline = time.monotonic() + COMPUTE_WAIT_SECONDS
    try:
        while time.monotonic() < deadline:
            token = _take_mark(url, key)
            if token is not None or read(key, ttl) is not None:
                break  # ours, or the holder wrote it: the caller reads it
            time.sleep(POLL_SECONDS)
    except redis.RedisError as exc:
        log.warning("figure cache: Redis lock failed (%s); computing the figures", exc)
    try:
        yield
    finally:
        _drop_mark(url, key, token)


@contextlib.contextmanager
def _redis_try_turn(url: str, key: str) -> Iterator[bool]:
    import redis

    try:
        token = _take_mark(url, key)
    except redis.RedisError as exc:
        log.warning("figure cache: Redis lock failed (%s); not refreshing", exc)
        token = None
    try:
        yield token is not None
    finally:
        _drop_mark(url, key, token)


def _take_mark(url: str, key: str) -> str | None:
    """``key``'s computing mark (expiring, in case its holder dies): a token if we got it, None if someone has it."""
    token = uuid.uuid4().hex
    return token if redis_client(url).set(f"{key}:computing", token, nx=True, ex=COMPUTE_WAIT_SECONDS) else None


def _drop_mark(url: str, key: str, token: str | None) -> None:
    if token is None:
        return
    import redis

    client, mark = redis_client(url), f"{key}:computing"
    try:
        if client.get(mark) == token.encode():
            client.delete(mark)
    except redis.RedisError:
        pass  # it expires


def write(key: str, at: datetime, payload: str, ttl: int) -> None:
    """Keep ``payload``, computed at ``at``, for (at least) ``ttl`` seconds."""
    url = get_settings().redis_url
    if not url:
        with _local_lock:
            if len(_local) >= LOCAL_MAX_ENTRIES:  # drop the oldest entries (bounded memory)
                for old in sorted(_local, key=lambda k: _local[k][0])[: LOCAL_MAX_ENTRIES // 4]:
                    del _local[old]
            _local[key] = (at, payload)
        return
    import redis

    try:
        redis_client(url).set(key, f"{at.isoformat()}\n{payload}", ex=ttl + 5)
    except redis.RedisError as exc:
        log.warning("figure cache: Redis write failed (%s)", exc)


def clear_local() -> None:
    """Forget the in-process entries (tests; a process starting afresh)."""
    with _local_lock:
        _local.clear()


def _read(key: str) -> tuple[datetime, str] | None:
    url = get_settings().redis_url
    if not url:
        with _local_lock:
            return _local.get(key)
    import redis

    try:
        raw = redis_client(url).get(key)
    except redis.RedisError as exc:
        log.warning("figure cache: Redis read failed (%s); computing the figures", exc)
        return None
    if raw is None:
        return None
    at, _, payload = raw.decode().partition("\n")
    return datetime.fromisoformat(at), payload


def redis_client(url: str) -> Any:
    """The Redis client of ``url`` (one client and connection pool per URL, not a connection per read)."""
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients.setdefault(url, redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                                               socket_connect_timeout=REDIS_TIMEOUT_SECONDS))
    return client
