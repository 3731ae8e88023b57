"""Customer 360 and the list with the sibling areas: tags, follow-ups, claim/release (crm.pool_service)."""

from __future__ import annotations

import pytest

from crm import followups, tags
from crm.models import Customer
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import console_client, log_in


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def people(session, org):
    return {
        "supervisor": make_staff(session, role="supervisor", department=org["team_a"], password=None),
        "a": make_staff(session, department=org["team_a"], display_name="一组销售", password=None),
        "b": make_staff(session, department=org["team_b"], display_name="二组销售", password=None),
    }


def _client(session, staff):
    client = console_client()
    return client, log_in(client, session, staff)


def test_360_shows_the_customers_tags(session, people):
    c = make_customer(session, owner=people["a"])
    group = tags.create_group(session, None, "资产")
    tag = tags.create_tag(session, None, group.id, "有车")
    tags.tag_customer(session, None, c.id, [tag.id])
    client, _ = _client(session, people["a"])
    assert '<span class="badge tag">有车</span>' in client.get(f"/console/customers/{c.id}").text


def test_list_search_finds_customers_by_tag(session, people):
    c = make_customer(session, owner=people["a"], name="带标签")
    make_customer(session, owner=people["a"], name="没标签")
    group = tags.create_group(session, None, "资产")
    tag = tags.create_tag(session, None, group.id, "有房产")
    tags.tag_customer(session, None, c.id, [tag.id])
    client, _ = _client(session, people["a"])
    page = client.get("/console/customers", params={"q": "房产"}).text
    assert "带标签" in page and "没标签" not in page


def test_360_embeds_the_followup_form_and_lists_followups(session, people):
    c = make_customer(session, owner=people["a"])
    followups.log_followup(session, Viewer.of(people["a"]), c.id, kind="call", content="客户想要三十万")
    client, _ = _client(session, people["a"])
    page = client.get(f"/console/customers/{c.id}").text
    assert f'action="/console/work/customers/{c.id}/followups"' in page
    assert "客户想要三十万" in page


def test_claim_from_the_360_page(session, people):
    c = make_customer(session, name="公海客户")
    client, csrf = _client(session, people["a"])
    assert "领取" in client.get(f"/console/customers/{c.id}").text
    response = client.post(f"/console/customers/{c.id}/claim", data={"csrf_token": csrf})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Customer, c.id).owner_id == people["a"].id


def test_release_from_the_360_page_needs_a_reason(session, people):
    c = make_customer(session, owner=people["a"])
    client, csrf = _client(session, people["a"])
    refused = client.post(f"/console/customers/{c.id}/release", data={"csrf_token": csrf, "reason": ""})
    assert refused.status_code == 422 and "请填写释放原因" in refused.text
    assert client.post(f"/console/customers/{c.id}/release",
                       data={"csrf_token": csrf, "reason": "无法联系"}).status_code == 303
    session.expire_all()
    assert session.get(Customer, c.id).status == "pool"


def test_bulk_release_reports_each_refusal(session, people):
    mine = make_customer(session, owner=people["a"])
    pooled = make_customer(session)
    theirs = make_customer(session, owner=people["b"])
    client, csrf = _client(session, people["a"])
    response = client.post("/console/customers/bulk", data={
        "csrf_token": csrf, "action": "release", "reason": "客户无意向", "ids": [mine.id, pooled.id, theirs.id]})
    assert response.status_code == 200
    assert "成功 <strong>1</strong> 位" in response.text and "拒绝 <strong>2</strong> 位" in response.text
    session.expire_all()
    assert session.get(Customer, mine.id).status == "pool"
    assert session.get(Customer, theirs.id).owner_id == people["b"].id


def test_bulk_release_without_a_reason_changes_nothing(session, people):
    mine = make_customer(session, owner=people["a"])
    client, csrf = _client(session, people["a"])
    response = client.post("/console/customers/bulk", data={
        "csrf_token": csrf, "action": "release", "reason": "", "ids": [mine.id]})
    assert response.status_code == 422 and "请填写释放原因" in response.text
    session.expire_all()
    assert session.get(Customer, mine.id).status == "owned"


@pytest.mark.parametrize("path", ["claim", "release"])
def test_claim_and_release_without_csrf_are_refused(session, people, path):
    c = make_customer(session, owner=people["a"] if path == "release" else None)
    client, _ = _client(session, people["a"])
    assert client.post(f"/console/customers/{c.id}/{path}", data={"reason": "x"}).status_code == 403
    session.expire_all()
    assert session.get(Customer, c.id).status == ("owned" if path == "release" else "pool")
