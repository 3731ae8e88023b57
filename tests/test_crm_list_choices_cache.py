"""The customer list's 地区 / 来源 drop-downs (crm.customer_queries.choice_values): a department- or company-scope
viewer's values reused for SCRM_LIST_CHOICES_CACHE_SECONDS, keyed by the viewer's exact scope identity (never
shown to another viewer), expired by age; own scope stays live. In this process (core.figure_cache) and in
Redis (when SCRM_TEST_REDIS_URL is set)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.settings import reset_settings_cache
from crm import customer_queries
from crm.models import CustomerCollaborator
from crm.scope import Viewer
from tests.factories import make_customer, make_org
from tests.figure_cache_support import cache_fixture, scoped_people
from tests.test_admin_support import console_client, log_in

cache = cache_fixture("SCRM_LIST_CHOICES_CACHE_SECONDS", 300, "list_choices")


@pytest.fixture
def people(session):
    return scoped_people(session, make_org(session))


def regions(session, staff) -> list[str]:
    return customer_queries.choice_values(session, Viewer.of(staff))["region"]


def test_department_values_are_reused_until_they_are_older_than_the_setting(session, people, cache):
    make_customer(session, owner=people["a"], region="上海", source="朋友介绍")
    assert customer_queries.choice_values(session, Viewer.of(people["supervisor_a"])) == {
        "region": ["上海"], "source": ["朋友介绍"]}
    make_customer(session, owner=people["a"], region="杭州")
    clock.advance(timedelta(seconds=299))
    assert regions(session, people["supervisor_a"]) == ["上海"]
    clock.advance(timedelta(seconds=1))  # 300 s old: counted again
    assert sorted(regions(session, people["supervisor_a"])) == ["上海", "杭州"]


def test_no_viewer_ever_sees_values_cached_for_another_scope(session, people, cache):
    make_customer(session, owner=people["a"], region="上海")
    make_customer(session, owner=people["b"], region="北京")
    assert regions(session, people["supervisor_a"]) == ["上海"]
    assert sorted(regions(session, people["manager"])) == sorted(["上海", "北京"])
    make_customer(session, owner=people["b"], region="南京")
    make_customer(session, owner=people["outside"], region="广州")
    assert sorted(regions(session, people["supervisor_b"])) == sorted(["北京", "南京"])
    assert sorted(regions(session, people["admin"])) == sorted(["上海", "北京", "南京", "广州"])
    assert regions(session, people["supervisor_a"]) == ["上海"]  # still cached
    assert sorted(regions(session, people["manager"])) == sorted(["上海", "北京"])


def test_two_managers_of_one_department_who_co_handle_nobody_share_one_entry(session, people, cache):
    make_customer(session, owner=people["a"], region="上海")
    assert regions(session, people["manager"]) == ["上海"]
    make_customer(session, owner=people["b"], region="北京")
    assert regions(session, people["manager2"]) == ["上海"]  # the same customers: the same (cached) values


def test_what_a_department_viewer_co_handles_is_theirs_alone(session, people, cache):
    make_customer(session, owner=people["a"], region="上海")
    assert regions(session, people["manager2"]) == ["上海"]  # cached for the branch's scope
    shared = make_customer(session, owner=people["outside"], region="广州")
    session.add(CustomerCollaborator(customer_id=shared.id, staff_id=people["manager"].id, added_at=clock.now()))
    session.flush()
    assert sorted(regions(session, people["manager"])) == sorted(["上海", "广州"])  # their own entry, computed
    assert regions(session, people["manager2"]) == ["上海"]


def test_a_salespersons_own_values_stay_live(session, people, cache):
    make_customer(session, owner=people["a"], region="上海")
    assert regions(session, people["a"]) == ["上海"]
    make_customer(session, owner=people["a"], region="杭州")
    assert sorted(regions(session, people["a"])) == ["上海", "杭州"]


def test_zero_seconds_turns_the_cache_off(session, people, cache, monkeypatch):
    monkeypatch.setenv("SCRM_LIST_CHOICES_CACHE_SECONDS", "0")
    reset_settings_cache()
    make_customer(session, owner=people["a"], region="上海")
    assert regions(session, people["supervisor_a"]) == ["上海"]
    make_customer(session, owner=people["a"], region="杭州")
    assert sorted(regions(session, people["supervisor_a"])) == ["上海", "杭州"]


def test_the_list_page_offers_the_cached_values(session, people, cache):
    make_customer(session, owner=people["a"], region="上海")
    client = console_client()
    log_in(client, session, people["supervisor_a"])
    assert '<option value="上海"' in client.get("/console/customers").text
    make_customer(session, owner=people["a"], region="杭州")
    page = client.get("/console/customers")
    assert page.status_code == 200 and '<option value="杭州"' not in page.text
    assert "杭州" in client.get("/console/customers?region=杭州").text  # typed, the filter still finds it
