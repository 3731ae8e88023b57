"""core.figure_refresh: a cached dashboard or drop-down that someone keeps viewing is recomputed before it expires,
so its viewer never waits for it; a starting server computes those of the staff with an open console session; a
figure nobody views any more, or whose viewer left, is let go. In this process and in Redis (when
SCRM_TEST_REDIS_URL is set)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics import dashboard_cache, periods
from core import clock, figure_cache, figure_refresh
from crm import customer_queries, org_service
from crm.models import StaffSession
from crm.scope import Viewer
from tests.conftest import postgres_only
from tests.factories import make_customer, make_org, make_staff
from tests.figure_cache_support import NOON, cache_fixture, scoped_people
from tests.test_admin_support import console_client, log_in

cache = cache_fixture("SCRM_DASHBOARD_CACHE_SECONDS", 60, "dashboard", "list_choices", "test_figure")

DASHBOARD_DUE = 45  # the last quarter of 60 s


@pytest.fixture
def people(session):
    return scoped_people(session, make_org(session))


def home(session, staff):
    """The manager's home dashboard as the console asks for it: (leads card, computed at)."""
    _, flt = periods.resolve(periods.DEFAULT)
    board, at = dashboard_cache.build(session, Viewer.of(staff), flt, period=periods.DEFAULT)
    return next(c.value for c in board.cards if c.key == "funnel_lead"), at


def test_a_viewed_dashboard_is_recomputed_in_its_last_quarter_and_its_viewer_reads_that(session, people, cache):
    make_customer(session, owner=people["a"])
    assert home(session, people["manager"]) == (1, NOON)  # computed by the view, and watched
    make_customer(session, owner=people["a"])
    clock.advance(timedelta(seconds=DASHBOARD_DUE - 1))
    assert figure_refresh.run_pass() == 0  # not due yet
    clock.advance(timedelta(seconds=1))
    assert figure_refresh.run_pass() == 1
    assert figure_refresh.run_pass() == 0  # fresh again
    clock.advance(timedelta(seconds=14))  # 59 s after the view: the refresher's figures, with the second lead
    assert home(session, people["manager"]) == (2, NOON + timedelta(seconds=DASHBOARD_DUE))


def test_a_figure_nobody_viewed_for_the_window_is_let_go(session, people, cache):
    home(session, people["manager"])
    clock.advance(timedelta(minutes=14, seconds=59))
    assert figure_refresh.run_pass() == 1 and figure_refresh.watched()
    clock.advance(timedelta(seconds=2))  # 15 minutes since the view
    assert figure_refresh.run_pass() == 0 and figure_refresh.watched() == []


def test_a_departed_viewer_is_no_longer_refreshed(session, people, cache):
    home(session, people["manager"])
    org_service.mark_departed(session, people["manager"].id)
    clock.advance(timedelta(seconds=DASHBOARD_DUE))
    assert figure_refresh.run_pass() == 0 and figure_refresh.watched() == []


def test_a_starting_server_computes_the_figures_of_open_sessions_beyond_their_own_scope(session, people, cache):
    for who in ("manager", "supervisor_a", "a"):
        log_in(console_client(), session, people[who])
    revoked = make_staff(session, role="manager", department=people["manager"].department, password=None)
    log_in(console_client(), session, revoked)
    session.query(StaffSession).filter_by(staff_id=revoked.id).update({"revoked_at": clock.now()})
    session.flush()

    assert figure_refresh.seed() == 4  # manager and supervisor: the home dashboard and the list's drop-downs
    assert sorted((kind, spec["staff_id"]) for kind, spec in figure_refresh.watched()) == sorted(
        (kind, people[who].id) for kind in ("dashboard", "list_choices") for who in ("manager", "supervisor_a"))
    assert figure_refresh.run_pass() == 4
    make_customer(session, owner=people["a"])  # after the warm-up: the manager's first view reads its figures
    assert home(session, people["manager"]) == (0, NOON)


def test_the_console_watches_what_a_manager_views(session, people, cache):
    client = console_client()
    log_in(client, session, people["manager"])
    assert client.get("/console/").status_code == 200
    assert client.get("/console/customers").status_code == 200
    assert sorted(figure_refresh.watched(), key=lambda w: w[0]) == [
        ("dashboard", {"staff_id": people["manager"].id, "period": periods.DEFAULT, "funnel_mode": "cohort"}),
        ("list_choices", {"staff_id": people["manager"].id}),
    ]
    # a salesperson's own figures are live: nothing to keep warm
    sales = console_client()
    log_in(sales, session, people["a"])
    assert sales.get("/console/").status_code == 200 and len(figure_refresh.watched()) == 2


def test_the_drop_downs_are_refreshed_too(session, people, cache):
    make_customer(session, owner=people["a"], region="杭州")
    viewer = Viewer.of(people["manager"])
    assert customer_queries.choice_values(session, viewer)["region"] == ["杭州"]
    make_customer(session, owner=people["a"], region="宁波")
    clock.advance(timedelta(seconds=225))  # the last quarter of 300 s
    assert figure_refresh.run_pass() == 1
    assert sorted(customer_queries.choice_values(session, viewer)["region"]) == ["宁波", "杭州"]


def test_one_failing_figure_does_not_stop_the_others_and_a_figure_being_computed_is_skipped(cache, monkeypatch):
    computed: list[str] = []

    def resolve(_session, spec):
        if spec["n"] == 1:
            raise RuntimeError("boom")
        key = f"test_figure:{spec['n']}"
        return figure_refresh.Target(key, 60, lambda: computed.append(key) or "figure")

    monkeypatch.setitem(figure_refresh._kinds, "test", figure_refresh._Kind(resolve, None))
    for n in (1, 2, 3):
        figure_refresh.watch("test", {"n": n})
    busy = "test_figure:3"
    with figure_cache._redis_try_turn(_redis_url(), busy) if cache == "redis" else figure_cache._local_turn(
            busy, wait=False) as held:
        assert held
        assert figure_refresh.run_pass() == 1  # 1 failed (logged), 3 is being computed elsewhere: skipped
    assert computed == ["test_figure:2"]
    assert figure_refresh.run_pass() == 1 and computed == ["test_figure:2", "test_figure:3"]


def test_a_pass_looks_a_figure_up_again_only_when_it_falls_due(cache, monkeypatch):
    resolved: list[int] = []

    def resolve(_session, spec):
        resolved.append(spec["n"])
        return figure_refresh.Target("test_figure:due", 60, lambda: "figure")

    monkeypatch.setitem(figure_refresh._kinds, "test", figure_refresh._Kind(resolve, None))
    figure_refresh.watch("test", {"n": 1})
    assert figure_refresh.run_pass() == 1 and resolved == [1]
    clock.advance(timedelta(seconds=DASHBOARD_DUE - 1))
    assert figure_refresh.run_pass() == 0 and resolved == [1]  # fresh: not even resolved
    clock.advance(timedelta(seconds=1))
    assert figure_refresh.run_pass() == 1 and resolved == [1, 1]


def test_no_refresher_runs_on_sqlite(monkeypatch):
    """On SQLite a process runs one transaction at a time: a background computation would hold up the requests."""
    from core.settings import reset_settings_cache

    monkeypatch.setenv("SCRM_DATABASE_URL", "sqlite:///var/never-opened.db")
    reset_settings_cache()
    try:
        assert figure_refresh.start() is None
    finally:
        monkeypatch.undo()
        reset_settings_cache()


@postgres_only
def test_a_served_process_computes_the_open_sessions_figures_by_itself(committed, monkeypatch):
    """The wiring, with a real thread and real commits: `scrm serve`'s application (warmed up) starts the
    refresher, which computes the dashboard of a manager logged in before it started, with no request."""
    import time

    from fastapi.testclient import TestClient

    from core.db import unit_of_work
    from core.settings import reset_settings_cache
    from core.web import create_app
    from crm import auth_service

    monkeypatch.setenv("SCRM_DASHBOARD_CACHE_SECONDS", "60")
    reset_settings_cache()
    figure_cache.clear_local()
    figure_refresh.forget_all()
    with unit_of_work() as s:
        manager = make_staff(s, role="manager", department=make_org(s)["branch"], password=None)
        auth_service.open_session(s, manager)
        key = dashboard_cache.key_for(Viewer.of(manager), periods.resolve(periods.DEFAULT)[1], co_handles=False)
    try:
        assert figure_cache.age_seconds(key) is None
        with TestClient(create_app(start_tasks=False, warm=True)):
            deadline = time.monotonic() + 60  # a bound for a slow machine, not a timing assertion
            while figure_cache.age_seconds(key) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert figure_cache.age_seconds(key) is not None
    finally:
        figure_cache.clear_local()
        figure_refresh.forget_all()
        url = _redis_url()
        if url:
            import redis

            redis.Redis.from_url(url).delete(key)
        monkeypatch.undo()
        reset_settings_cache()


def _redis_url() -> str:
    from core.settings import get_settings

    return get_settings().redis_url


def test_only_the_landing_view_of_the_dashboard_is_kept_warm(session, people, cache):
    """A period or funnel mode clicked to is cached but not refreshed: a boss clicking through twelve periods
    would otherwise cost twelve dashboards every 45 s."""
    viewer = Viewer.of(people["manager"])
    for period in ("7d", "last_month"):
        dashboard_cache.build(session, viewer, periods.resolve(period)[1], period=period)
    dashboard_cache.build(session, viewer, periods.resolve(periods.DEFAULT)[1], "activity", period=periods.DEFAULT)
    assert figure_refresh.watched() == []
    home(session, people["manager"])
    assert [kind for kind, _ in figure_refresh.watched()] == ["dashboard"]
