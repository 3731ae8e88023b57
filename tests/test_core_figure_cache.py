"""core.figure_cache: entries read back while younger than their time to live, and a missing entry computed once
when several requests ask for it at the same moment (in this process, and across processes through Redis when
SCRM_TEST_REDIS_URL is set)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from core import clock, figure_cache
from core.settings import get_settings, reset_settings_cache
from tests.conftest import HAS_REDIS


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.skipif(
    not HAS_REDIS, reason="needs SCRM_TEST_REDIS_URL"))])
def store(request, monkeypatch):
    if request.param == "local":
        monkeypatch.setenv("SCRM_REDIS_URL", "")
    reset_settings_cache()
    key = figure_cache.make_key("test_figure", {"test": request.node.name})
    _drop(key)
    yield key
    _drop(key)
    monkeypatch.undo()
    reset_settings_cache()


def _drop(key: str) -> None:
    figure_cache.clear_local()
    url = get_settings().redis_url
    if url:
        import redis

        redis.Redis.from_url(url).delete(key, f"{key}:computing")


def test_an_entry_is_computed_once_and_read_until_it_is_as_old_as_its_ttl(store):
    clock.freeze(clock.now())
    calls = []
    at, payload = figure_cache.cached(store, 60, lambda: calls.append(1) or "first")
    assert payload == "first" and calls == [1]
    assert figure_cache.cached(store, 60, lambda: "second") == (at, "first")
    clock.advance(timedelta(seconds=60))
    assert figure_cache.cached(store, 60, lambda: "third")[1] == "third"


def test_requests_missing_the_same_entry_at_once_compute_it_once(store):
    calls = []

    def slow() -> str:
        calls.append(threading.get_ident())
        time.sleep(0.3)
        return "figures"

    answers = []
    threads = [threading.Thread(target=lambda: answers.append(figure_cache.cached(store, 60, slow)[1]))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert answers == ["figures"] * 4 and len(calls) == 1
