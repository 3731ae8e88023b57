"""analytics.dashboard_cache: department- and company-scope dashboards reused for a short time, keyed by the
viewer's exact scope identity (never shown to another viewer), expired by age; own scope stays live. In this
process and in Redis (when SCRM_TEST_REDIS_URL is set)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics import dashboard_cache
from analytics.metrics import Filters
from core import clock
from core.settings import reset_settings_cache
from crm.models import CustomerCollaborator
from crm.scope import Viewer
from tests.factories import make_customer, make_org
from tests.figure_cache_support import NOON, cache_fixture, scoped_people
from tests.test_admin_support import console_client, log_in

cache = cache_fixture("SCRM_DASHBOARD_CACHE_SECONDS", 60, "dashboard")


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def people(session, org):
    return scoped_people(session, org)


def leads(session, staff) -> int:
    board, _ = dashboard_cache.build(session, Viewer.of(staff), Filters.this_month())
    return next(c.value for c in board.cards if c.key == "funnel_lead")


def test_department_figures_are_reused_until_they_are_older_than_the_setting(session, people, cache):
    make_customer(session, owner=people["a"])
    board, at = dashboard_cache.build(session, Viewer.of(people["manager"]), Filters.this_month())
    assert at == NOON and leads(session, people["manager"]) == 1
    make_customer(session, owner=people["a"])
    clock.advance(timedelta(seconds=59))
    again, at = dashboard_cache.build(session, Viewer.of(people["manager"]), Filters.this_month())
    assert at == NOON and again == board  # the same figures, kept whole (Decimal, tuples, cards)
    assert leads(session, people["manager"]) == 1
    clock.advance(timedelta(seconds=1))  # 60 s old: computed again
    fresh, at = dashboard_cache.build(session, Viewer.of(people["manager"]), Filters.this_month())
    assert at == NOON + timedelta(seconds=60) and leads(session, people["manager"]) == 2


def test_no_viewer_ever_sees_figures_cached_for_another_scope(session, people, cache):
    make_customer(session, owner=people["a"])
    make_customer(session, owner=people["b"])
    assert leads(session, people["supervisor_a"]) == 1  # cached for team A's supervisor
    assert leads(session, people["manager"]) == 2  # cached for the branch manager
    make_customer(session, owner=people["b"])
    make_customer(session, owner=people["outside"])
    # another team, a salesperson: neither reads those entries (another manager of the same branch who co-handles
    # nobody does: test_two_managers_of_one_department_who_co_handle_nobody_share_one_entry)
    assert leads(session, people["supervisor_b"]) == 2
    assert leads(session, people["b"]) == 2
    assert leads(session, people["supervisor_a"]) == 1 and leads(session, people["manager"]) == 2  # still cached


def test_two_managers_of_one_department_are_two_scopes(session, people, cache):
    """A department-scope viewer also sees what they co-handle: the key holds the staff id."""
    shared = make_customer(session, owner=people["outside"])
    session.add(CustomerCollaborator(customer_id=shared.id, staff_id=people["manager"].id, added_at=clock.now()))
    session.flush()
    assert leads(session, people["manager"]) == 1
    assert leads(session, people["manager2"]) == 0
    m1, m2 = Viewer.of(people["manager"]), Viewer.of(people["manager2"])
    flt = Filters.this_month()
    assert dashboard_cache.key_for(m1, flt) != dashboard_cache.key_for(m2, flt)
    assert dashboard_cache.key_for(m1, flt) != dashboard_cache.key_for(m1, Filters.this_month(source="朋友介绍"))


def test_two_managers_of_one_department_who_co_handle_nobody_share_one_entry(session, people, cache):
    make_customer(session, owner=people["a"])
    assert leads(session, people["manager"]) == 1
    make_customer(session, owner=people["a"])
    assert leads(session, people["manager2"]) == 1  # the same scope: the figures cached for the first manager
    m1, m2 = Viewer.of(people["manager"]), Viewer.of(people["manager2"])
    flt = Filters.this_month()
    assert dashboard_cache.key_for(m1, flt, co_handles=False) == dashboard_cache.key_for(m2, flt, co_handles=False)
    assert dashboard_cache.key_for(m1, flt, co_handles=False) != dashboard_cache.key_for(
        Viewer.of(people["supervisor_a"]), flt, co_handles=False)


def test_a_salespersons_own_dashboard_stays_live(session, people, cache):
    make_customer(session, owner=people["a"])
    board, at = dashboard_cache.build(session, Viewer.of(people["a"]), Filters.this_month())
    assert at is None and leads(session, people["a"]) == 1
    make_customer(session, owner=people["a"])
    assert leads(session, people["a"]) == 2


def test_zero_seconds_turns_the_cache_off(session, people, cache, monkeypatch):
    monkeypatch.setenv("SCRM_DASHBOARD_CACHE_SECONDS", "0")
    reset_settings_cache()
    assert leads(session, people["manager"]) == 0
    make_customer(session, owner=people["a"])
    board, at = dashboard_cache.build(session, Viewer.of(people["manager"]), Filters.this_month())
    assert at is None and leads(session, people["manager"]) == 1


def test_the_home_page_says_when_cached_figures_were_computed(session, people, cache):
    client = console_client()
    log_in(client, session, people["manager"])
    page = client.get("/console/")
    assert page.status_code == 200 and "数据更新于 12:00:00" in page.text
    log_in(client, session, people["a"])
    assert "数据更新于" not in client.get("/console/").text  # own scope: live
