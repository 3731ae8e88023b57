"""The ``cache`` fixture of the ``core.figure_cache`` users' tests (the dashboards, the list's drop-downs): the
cache switched on, in this process or in the test Redis db, emptied (with the refresher's watches) before and
after, the clock at noon."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from core import clock, figure_cache, figure_refresh
from core.settings import get_settings, reset_settings_cache
from tests.conftest import HAS_REDIS
from tests.factories import make_staff

NOON = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


def cache_fixture(setting: str, seconds: int, *prefixes: str) -> Callable[..., Any]:
    """A ``cache`` fixture: ``setting`` (an environment variable) at ``seconds``, the entries under each of
    ``prefixes`` and the refresher's watches (``core.figure_refresh``) emptied before and after."""

    def empty() -> None:
        figure_cache.clear_local()
        figure_refresh.forget_all()
        url = get_settings().redis_url
        if url:
            import redis

            client = redis.Redis.from_url(url)
            for prefix in prefixes:
                for key in client.scan_iter(f"{prefix}:*"):
                    client.delete(key)

    @pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.skipif(
        not HAS_REDIS, reason="needs SCRM_TEST_REDIS_URL"))])
    def cache(request, monkeypatch):  # noqa: ANN001, ANN202
        monkeypatch.setenv(setting, str(seconds))
        if request.param == "local":
            monkeypatch.setenv("SCRM_REDIS_URL", "")
        reset_settings_cache()
        empty()
        clock.freeze(NOON)
        yield request.param
        empty()
        monkeypatch.undo()
        reset_settings_cache()

    return cache


def scoped_people(session, org) -> dict[str, Any]:  # noqa: ANN001 - a Session and make_org's departments
    """The staff whose scopes the cache tests tell apart: two managers of one branch, a supervisor and a
    salesperson in each of its two teams, an admin, and a salesperson outside the branch."""
    return {
        "manager": make_staff(session, role="manager", department=org["branch"], password=None),
        "manager2": make_staff(session, role="manager", department=org["branch"], password=None),
        "supervisor_a": make_staff(session, role="supervisor", department=org["team_a"], password=None),
        "supervisor_b": make_staff(session, role="supervisor", department=org["team_b"], password=None),
        "admin": make_staff(session, role="admin", department=org["company"], password=None),
        "a": make_staff(session, department=org["team_a"], password=None),
        "b": make_staff(session, department=org["team_b"], password=None),
        "outside": make_staff(session, department=org["center"], password=None),
    }
