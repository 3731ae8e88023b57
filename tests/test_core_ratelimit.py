"""The fixed-window rate limiter: database backend (and Redis when SCRM_TEST_REDIS_URL is set)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import clock, ratelimit
from core.errors import RateLimited
from core.settings import reset_settings_cache
from tests.conftest import redis_only

WINDOW = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _database_backend(monkeypatch):
    """The database backend, also when the suite runs on Redis (the Redis test sets its URL itself)."""
    monkeypatch.setenv("SCRM_REDIS_URL", "")
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()


def test_attempts_up_to_the_limit_pass(session):
    clock.freeze(datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC))
    for _ in range(3):
        ratelimit.hit("k1", 3, WINDOW)


def test_the_attempt_over_the_limit_is_refused_in_chinese(session):
    clock.freeze(datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC))
    for _ in range(3):
        ratelimit.hit("k1", 3, WINDOW)
    with pytest.raises(RateLimited) as exc:
        ratelimit.hit("k1", 3, WINDOW, "太频繁了")
    assert exc.value.message == "太频繁了" and exc.value.status == 429
    assert exc.value.details["retry_after_seconds"] == 55


def test_a_new_window_starts_afresh(session):
    clock.freeze(datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC))
    for _ in range(3):
        ratelimit.hit("k1", 3, WINDOW)
    clock.advance(timedelta(minutes=1))
    ratelimit.hit("k1", 3, WINDOW)


def test_keys_are_counted_separately(session):
    for _ in range(3):
        ratelimit.hit("k1", 3, WINDOW)
    ratelimit.hit("k2", 3, WINDOW)


def test_one_row_per_key_and_window(session):
    for _ in range(5):
        ratelimit.count("k3", WINDOW)
    rows = session.scalars(select(ratelimit.RateLimitWindow).where(ratelimit.RateLimitWindow.key == "k3")).all()
    assert [r.hits for r in rows] == [5]


def test_the_count_survives_a_rolled_back_request(committed):
    from core.db import unit_of_work

    with pytest.raises(RuntimeError), unit_of_work():
        ratelimit.hit("k4", 5, WINDOW)
        raise RuntimeError("the request failed")
    with unit_of_work() as s:
        assert s.scalar(select(ratelimit.RateLimitWindow.hits).where(ratelimit.RateLimitWindow.key == "k4")) == 1


def test_expired_windows_are_purged(session):
    clock.freeze(datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC))
    ratelimit.count("old", WINDOW)
    clock.advance(timedelta(hours=2))
    ratelimit.count("new", WINDOW)
    assert ratelimit.purge_expired() == 1
    assert session.scalar(select(func.count()).select_from(ratelimit.RateLimitWindow)) == 1


@redis_only
def test_redis_backend_counts_with_incr(monkeypatch):
    monkeypatch.setenv("SCRM_REDIS_URL", os.environ["SCRM_TEST_REDIS_URL"])
    reset_settings_cache()
    key = f"test-{uuid.uuid4().hex}"
    assert [ratelimit.count(key, WINDOW) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(RateLimited):
        ratelimit.hit(key, 3, WINDOW)


# --- the sliding window ---------------------------------------------------------------------------

def test_sliding_window_weighs_the_previous_window_by_its_overlap(session):
    clock.freeze(datetime(2026, 1, 1, 10, 0, 50, tzinfo=UTC))  # last 10 s of the 10:00 window
    for _ in range(4):
        ratelimit.sliding("s1", WINDOW)
    clock.freeze(datetime(2026, 1, 1, 10, 1, 15, tzinfo=UTC))  # a quarter into the next: 3/4 of the 4 remain
    assert ratelimit.sliding("s1", WINDOW, add=False) == pytest.approx(3.0)
    assert ratelimit.sliding("s1", WINDOW) == pytest.approx(4.0)
    clock.freeze(datetime(2026, 1, 1, 10, 2, 30, tzinfo=UTC))  # two windows on: only the last one's half
    assert ratelimit.sliding("s1", WINDOW, add=False) == pytest.approx(0.5)


def test_sliding_limit_has_no_burst_across_the_window_boundary(session):
    clock.freeze(datetime(2026, 1, 1, 10, 0, 59, tzinfo=UTC))
    for _ in range(3):
        ratelimit.hit_sliding("s2", 3, WINDOW)
    clock.freeze(datetime(2026, 1, 1, 10, 1, 1, tzinfo=UTC))  # a fixed window would allow 3 more here
    with pytest.raises(RateLimited):
        ratelimit.hit_sliding("s2", 3, WINDOW)


@redis_only
def test_redis_backend_slides_too(monkeypatch):
    monkeypatch.setenv("SCRM_REDIS_URL", os.environ["SCRM_TEST_REDIS_URL"])
    reset_settings_cache()
    key = f"test-{uuid.uuid4().hex}"
    assert [ratelimit.sliding(key, WINDOW) >= n for n in (1, 2, 3)] == [True, True, True]
    with pytest.raises(RateLimited):
        for _ in range(10):
            ratelimit.hit_sliding(key, 3, WINDOW)


@redis_only
def test_a_database_key_stays_in_the_database_with_redis_configured(session, monkeypatch):
    monkeypatch.setenv("SCRM_REDIS_URL", os.environ["SCRM_TEST_REDIS_URL"])
    reset_settings_cache()
    clock.freeze(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC))  # both reads in one window, not across a boundary
    key = f"test-db-{uuid.uuid4().hex}"
    ratelimit.sliding(key, WINDOW, session=session)
    assert ratelimit.sliding(key, WINDOW, add=False, session=session) == 1.0
    assert session.scalar(select(func.count()).select_from(ratelimit.RateLimitWindow)
                          .where(ratelimit.RateLimitWindow.key == key)) == 1
