"""The audit log page: who may open it, and its search."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core import audit, clock
from tests.factories import make_org, make_staff
from tests.test_admin_support import console_client, log_in


@pytest.fixture
def admin(session):
    org = make_org(session)
    return make_staff(session, role="admin", department=org["company"], username="root")


@pytest.fixture
def client(session, admin):
    c = console_client()
    log_in(c, session, admin)
    return c


def _entry(session, action, *, entity_type="thing", entity_id=1, actor=None, at=None, after=None):
    if at is not None:
        clock.freeze(at)
    # The page shows sentences, not codes: the action code rides in the 说明 column to be searched for.
    audit.record(session, action, entity_type=entity_type, entity_id=entity_id, actor=actor,
                 after=after or {"marker": action}, detail=action)
    clock.unfreeze()


def test_sales_is_refused_the_audit_log(session):
    sales = make_staff(session)
    c = console_client()
    log_in(c, session, sales)
    response = c.get("/console/audit")
    assert response.status_code == 403 and "无权访问" in response.text


def test_manager_may_open_the_audit_log(session, admin):
    manager = make_staff(session, role="manager", department=admin.department)
    c = console_client()
    log_in(c, session, manager)
    assert c.get("/console/audit").status_code == 200


def test_search_by_action_prefix(session, client):
    _entry(session, "widget.create")
    _entry(session, "gadget.create")
    page = client.get("/console/audit", params={"action": "widget."}).text
    assert "widget.create" in page and "gadget.create" not in page


def test_search_by_entity_type_and_id(session, client):
    _entry(session, "thing.touch_a", entity_type="thing", entity_id=7)
    _entry(session, "thing.touch_b", entity_type="thing", entity_id=8)
    _entry(session, "other.touch_c", entity_type="other", entity_id=7)
    page = client.get("/console/audit", params={"entity_type": "thing", "entity_id": "7"}).text
    assert "thing.touch_a" in page
    assert "thing.touch_b" not in page and "other.touch_c" not in page


@pytest.mark.parametrize("by", ["id", "username"])
def test_search_by_actor(session, client, admin, by):
    someone = make_staff(session, department=admin.department, username="actor1")
    _entry(session, "x.by_someone", actor=audit.Actor("staff", someone.id, "某人"))
    _entry(session, "x.by_admin", actor=audit.Actor("staff", admin.id, "管理员"))
    page = client.get("/console/audit", params={"actor": str(someone.id) if by == "id" else "actor1"}).text
    assert "x.by_someone" in page and "x.by_admin" not in page


def test_search_by_unknown_actor_finds_nothing(session, client):
    _entry(session, "x.anything")
    page = client.get("/console/audit", params={"actor": "no-such-user"}).text
    assert "x.anything" not in page and "找不到操作人" in page


def test_search_by_business_date_range(session, client):
    # 2025-03-01 23:30 in Shanghai is 15:30 UTC; 2025-03-02 00:30 Shanghai is 2025-03-01 16:30 UTC.
    _entry(session, "d.first_of_march", at=datetime(2025, 3, 1, 15, 30, tzinfo=UTC))
    _entry(session, "d.second_of_march", at=datetime(2025, 3, 1, 16, 30, tzinfo=UTC))
    page = client.get("/console/audit", params={"since": "2025-03-02", "until": "2025-03-02"}).text
    assert "d.second_of_march" in page and "d.first_of_march" not in page


def test_entries_show_before_and_after_as_a_sentence(session, client):
    audit.record(session, "json.change", entity_type="thing", entity_id=1,
                 before={"name": "旧名"}, after={"name": "新名"})
    page = client.get("/console/audit", params={"action": "json."}).text
    assert "名称 旧名 → 新名" in page and "&#34;name&#34;" not in page


def test_audit_log_paginates(session, client):
    for i in range(25):
        _entry(session, f"p.entry{i:02d}")
    first = client.get("/console/audit", params={"action": "p."}).text
    second = client.get("/console/audit", params={"action": "p.", "page": "2"}).text
    assert "p.entry24" in first and "p.entry04" not in first and "下一页</a>" in first
    assert "p.entry04" in second and "p.entry24" not in second
