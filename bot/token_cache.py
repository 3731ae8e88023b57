"""Where the WeCom access token lives between calls, and the lock that makes one refresher fetch it.

- With Redis (``SCRM_REDIS_URL``): the token under ``scrm:wecom:token:<key>`` with a TTL; the refresh
  lock is ``SET … NX PX`` with a random value, released only by its holder.
- Without Redis (embedded default): one row of ``wecom_access_token`` per key; the refresh lock is
  that row held ``FOR UPDATE`` (on SQLite, ``BEGIN IMMEDIATE`` serialises writers the same way).

Either way :meth:`TokenCache.refresh` re-reads the cache under the lock, so of several processes or
threads that see an expiring token at once, one calls gettoken and the others reuse its result.
Expiry is measured with :mod:`core.clock` (freezable in tests).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select

from core import clock, pii
from core.db import holds_sqlite_writer, insert_ignore, sessions_are_independent, unit_of_work
from core.settings import get_settings

Fetch = Callable[[], tuple[str, int]]  # -> (access_token, expires_in seconds)

LOCK_TTL_MS = 15_000  # longer than gettoken's connect+read timeouts
LOCK_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: datetime

    def fresh(self, ahead: timedelta) -> bool:
        return bool(self.token) and self.expires_at - clock.now() > ahead

    def valid(self) -> bool:
        return bool(self.token) and self.expires_at > clock.now()


class TokenCache(Protocol):
    def get(self, key: str) -> CachedToken | None: ...

    def refresh(self, key: str, fetch: Fetch, *, ahead: timedelta, stale: str | None = None) -> CachedToken:
        """Under the lock: keep a token that is fresh and not ``stale``; otherwise fetch and store one."""
        ...


def cache_key(corp_id: str, secret: str) -> str:
    """Per corp and secret; the secret itself never appears in a key."""
    return hashlib.sha256(f"{corp_id}\x00{secret}".encode()).hexdigest()[:40]


def _keep(current: CachedToken | None, ahead: timedelta, stale: str | None) -> bool:
    return current is not None and current.fresh(ahead) and current.token != stale


class RedisTokenCache:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def _key(self, key: str) -> str:
        return f"scrm:wecom:token:{key}"

    def get(self, key: str) -> CachedToken | None:
        raw = self._redis.get(self._key(key))
        if not raw:
            return None
        data = json.loads(raw)
        return CachedToken(data["token"], datetime.fromtimestamp(data["expires_at"], UTC))

    def _store(self, key: str, token: CachedToken) -> None:
        ttl_ms = max(1000, int((token.expires_at - clock.now()).total_seconds() * 1000))
        self._redis.set(self._key(key), json.dumps({"token": token.token, "expires_at": token.expires_at.timestamp()}),
                        px=ttl_ms)

    def refresh(self, key: str, fetch: Fetch, *, ahead: timedelta, stale: str | None = None) -> CachedToken:
        lock_key, holder = self._key(key) + ":lock", secrets.token_hex(8)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not self._redis.set(lock_key, holder, nx=True, px=LOCK_TTL_MS):
            if time.monotonic() > deadline:
                break  # a crashed holder's lock expires by itself; fetching once more is harmless
            time.sleep(0.05)
        try:
            current = self.get(key)
            if _keep(current, ahead, stale):
                return current  # type: ignore[return-value]
            token, expires_in = fetch()
            fetched = CachedToken(token, clock.now() + timedelta(seconds=expires_in))
            self._store(key, fetched)
            return fetched
        finally:
            # Release only our own lock (compare-and-delete).
            self._redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
                             "else return 0 end", 1, lock_key, holder)


def _inside_own_sqlite_transaction() -> bool:
    """This thread holds the SQLite writer lock in a transaction of its own, so a unit of work opened now would
    wait for that very lock (tests binding every unit of work to one connection share it instead)."""
    return holds_sqlite_writer() and sessions_are_independent()


class DbTokenCache:
    """The token in the database, sealed by the PII vault; each operation is its own short transaction."""

    @staticmethod
    def _open(token_enc: str) -> str:
        if not token_enc:
            return ""
        try:
            return pii.open_sealed(pii.PAYLOAD, token_enc)
        except Exception:  # noqa: BLE001 - a retired vault key: treat as no token
            return ""

    def get(self, key: str) -> CachedToken | None:
        from bot.models_gateway import WecomAccessToken

        if _inside_own_sqlite_transaction():
            return None  # unreadable without waiting for ourselves: the caller fetches a token (see refresh)
        with unit_of_work() as session:
            row = session.scalar(select(WecomAccessToken).where(WecomAccessToken.cache_key == key))
            if row is None or not row.token_enc:
                return None
            return CachedToken(self._open(row.token_enc), row.expires_at)

    def refresh(self, key: str, fetch: Fetch, *, ahead: timedelta, stale: str | None = None) -> CachedToken:
        from bot.models_gateway import WecomAccessToken

        if _inside_own_sqlite_transaction():
            # Called inside this thread's open SQLite transaction (a WeCom call refused a stale token, e.g.
            # one stored before the simulator restarted): a unit of work of our own would wait for our own
            # writer lock. The new token serves this call (and the gateway's in-process copy); it is stored
            # by the next refresh made outside a transaction.
            token, expires_in = fetch()
            return CachedToken(token, clock.now() + timedelta(seconds=expires_in))
        with unit_of_work() as session:
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            insert_ignore(session, WecomAccessToken, {"cache_key": key, "token_enc": "", "expires_at": epoch,
                                                      "updated_at": clock.now()}, ["cache_key"])
            row = session.scalar(select(WecomAccessToken).where(WecomAccessToken.cache_key == key)
                                 .with_for_update().execution_options(populate_existing=True))
            current = CachedToken(self._open(row.token_enc), row.expires_at)
            if _keep(current, ahead, stale):
                return current
            token, expires_in = fetch()  # the row stays locked: concurrent refreshers wait, then reuse it
            row.token_enc = pii.seal(pii.PAYLOAD, token)
            row.expires_at = clock.now() + timedelta(seconds=expires_in)
            row.updated_at = clock.now()
            session.flush()
            return CachedToken(token, row.expires_at)


def default_cache() -> TokenCache:
    url = get_settings().redis_url
    return RedisTokenCache(url) if url else DbTokenCache()
