"""Cached figures computed before their viewers ask for them (issue 18 item 3).

``core.figure_cache`` keeps a manager's dashboard or the customer list's drop-downs for a while, but the first
viewer after each expiry still waits for the figures to be computed. That costs 0.5–1 s on 1,000,000 customers, and
seconds when ten bosses open the console together after a deployment. Owners of such figures register a *kind*
here:

- ``resolve(session, spec)`` says what a figure is now: its cache key, its time to live, and how to compute it.
  ``spec`` is plain JSON, e.g. a staff id and a period name. It returns None when the spec no longer applies (a
  staff member left, or moved to their own scope).
- ``seed(session)`` gives the specs worth computing when a server starts: for the dashboards, those of the staff
  who have an open console session.

Each view of such a figure calls :func:`watch`. A refresher thread in every served process (:func:`start`) looks
every ``POLL_SECONDS`` at the figures viewed within ``SCRM_FIGURE_REFRESH_MINUTES``. It recomputes one at a time
each figure that is missing or in the last quarter of its life, so a regular viewer never meets an expired entry.
The figure cache's computing mark keeps two processes from computing the same figure.

What it costs: a watched figure is recomputed about every three quarters of its time to live for as long as it is
watched. For a manager's dashboard that is about 0.7 s of database time every 45 s, for 15 minutes after the last
view. The refresher runs one figure at a time per process, so it never takes more than one connection per process.

The watches are kept in Redis when ``SCRM_REDIS_URL`` is set (shared by the processes), in this process otherwise.
On SQLite no refresher runs (:func:`start`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core import clock, figure_cache
from core.db import get_session_factory
from core.settings import get_settings

__all__ = ["Refresher", "Target", "forget_all", "register", "run_pass", "seed", "start", "watch", "watched"]

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0
WATCHES_KEY = "figure_refresh:watched"  # a Redis hash: kind and spec as JSON → when last viewed (epoch seconds)


@dataclass(frozen=True)
class Target:
    """A figure as it is now: where it is cached, for how long, and how to compute it (in the resolving session)."""
    key: str
    ttl: int
    compute: Callable[[], str]


Resolve = Callable[[Session, dict[str, Any]], Target | None]
Seed = Callable[[Session], Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class _Kind:
    resolve: Resolve
    seed: Seed | None


_kinds: dict[str, _Kind] = {}
_local_watches: dict[str, float] = {}
_local_lock = threading.Lock()
# field → the key and ttl its last resolve gave: a pass skips a figure that is not due without a database look-up
# (a key that changed since, a role or a day later, is found when the old entry falls due)
_resolved: dict[str, tuple[str, int]] = {}


def register(kind: str, resolve: Resolve, seed: Seed | None = None) -> None:
    """Make ``kind``'s figures refreshable (at import of the module that owns them)."""
    _kinds[kind] = _Kind(resolve, seed)


def due_age(ttl: int) -> float:
    """The age at which a figure of ``ttl`` seconds is recomputed: its last quarter, and at least two polls early."""
    return max(0.0, ttl - max(ttl / 4, 2 * POLL_SECONDS))


def watch(kind: str, spec: dict[str, Any]) -> None:
    """Someone is looking at ``kind``'s figure for ``spec``: keep it fresh for the next while."""
    if _window_seconds() <= 0:
        return
    field, now = _field(kind, spec), clock.now().timestamp()
    url = get_settings().redis_url
    if not url:
        with _local_lock:
            _local_watches[field] = now
        return
    import redis

    try:
        figure_cache.redis_client(url).hset(WATCHES_KEY, field, now)
    except redis.RedisError as exc:
        log.warning("figure refresh: Redis write failed (%s)", exc)


def watched() -> list[tuple[str, dict[str, Any]]]:
    """``(kind, spec)`` of every figure viewed within the window, least recently viewed first; forgets the others."""
    horizon = clock.now().timestamp() - _window_seconds()
    url = get_settings().redis_url
    if not url:
        with _local_lock:
            for field in [f for f, at in _local_watches.items() if at < horizon]:
                del _local_watches[field]
            entries = dict(_local_watches)
    else:
        import redis

        client = figure_cache.redis_client(url)
        try:
            raw = client.hgetall(WATCHES_KEY)
            entries = {k.decode(): float(v) for k, v in raw.items()}
            old = [f for f, at in entries.items() if at < horizon]
            if old:
                client.hdel(WATCHES_KEY, *old)
        except redis.RedisError as exc:
            log.warning("figure refresh: Redis read failed (%s)", exc)
            return []
    fresh = sorted((at, f) for f, at in entries.items() if at >= horizon)
    return [(data["kind"], data["spec"]) for data in (json.loads(f) for _, f in fresh)]


def _unwatch(kind: str, spec: dict[str, Any]) -> None:
    field = _field(kind, spec)
    url = get_settings().redis_url
    if not url:
        with _local_lock:
            _local_watches.pop(field, None)
        return
    import redis

    try:
        figure_cache.redis_client(url).hdel(WATCHES_KEY, field)
    except redis.RedisError:
        pass  # forgotten when it leaves the window


def forget_all() -> None:
    """Forget every watch (tests)."""
    _resolved.clear()
    with _local_lock:
        _local_watches.clear()
    url = get_settings().redis_url
    if url:
        figure_cache.redis_client(url).delete(WATCHES_KEY)


def seed() -> int:
    """Watch what each kind's ``seed`` names (at a server's start); returns how many."""
    count = 0
    for name, kind in list(_kinds.items()):
        if kind.seed is None:
            continue
        try:
            with get_session_factory()() as session:
                for spec in kind.seed(session):
                    watch(name, spec)
                    count += 1
        except Exception:  # noqa: BLE001 - a start-up nicety: the viewers compute what it could not
            log.exception("figure refresh: seeding %s failed", name)
    return count


def run_pass(stop: threading.Event | None = None) -> int:
    """Recompute each watched figure that is missing or due; returns how many this process computed. One failing
    figure is logged and never stops the others."""
    computed = 0
    for name, spec in watched():
        if stop is not None and stop.is_set():
            break
        kind, field = _kinds.get(name), _field(name, spec)
        if kind is None:
            continue  # another version's kind, or one whose module this process has not loaded
        known = _resolved.get(field)
        age = figure_cache.age_seconds(known[0]) if known is not None else None
        if known is not None and age is not None and age < due_age(known[1]):
            continue
        with get_session_factory()() as session:
            try:
                target = kind.resolve(session, spec)
                if target is None:
                    _unwatch(name, spec)
                    _resolved.pop(field, None)
                    continue
                _resolved[field] = (target.key, target.ttl)
                if figure_cache.refresh_if_due(target.key, target.ttl, due_age(target.ttl), target.compute):
                    computed += 1
            except Exception:  # noqa: BLE001 - the figure is then computed by its next viewer, as without us
                log.exception("figure refresh: %s %s failed", name, spec)
            finally:
                session.rollback()
    return computed


class Refresher(threading.Thread):
    """A served process's refresher: seeds once, then :func:`run_pass` every ``POLL_SECONDS`` until stopped."""

    def __init__(self) -> None:
        super().__init__(name="figure-refresh", daemon=True)
        self._stop_event = threading.Event()

    def run(self) -> None:
        seed()
        while not self._stop_event.is_set():
            try:
                run_pass(self._stop_event)
            except Exception:  # noqa: BLE001 - e.g. the database is down: try again at the next poll
                log.exception("figure refresh: pass failed")
            self._stop_event.wait(POLL_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def start() -> Refresher | None:
    """Start this process's refresher (``scrm serve``); None when ``SCRM_FIGURE_REFRESH_MINUTES`` is 0, or on
    SQLite (the embedded default): there a process runs one transaction at a time (``core.db``), so a background
    computation would hold up every request, and a small company's figures are cheap to compute on view."""
    if _window_seconds() <= 0:
        return None
    if get_settings().database_url.startswith("sqlite"):
        log.info("figure refresh: off on SQLite (one transaction at a time); figures are computed on view")
        return None
    refresher = Refresher()
    refresher.start()
    return refresher


def _window_seconds() -> int:
    return get_settings().figure_refresh_minutes * 60


def _field(kind: str, spec: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, "spec": spec}, sort_keys=True, ensure_ascii=False)
