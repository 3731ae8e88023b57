"""Outsourcing (委外): a manager hands a case to an agency at its commission rate; the agency's user logs into
the portal, sees only that case (masked), records an action; a case not assigned to the agency, and the
case once recalled, answer 404; every access is in the audit log; two assignments of one case: one wins."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core import pii
from core.audit import AuditLog
from crm.models import Customer
from lending.servicing import cob
from postloan.agency import service
from postloan.agency_models import AgencyAssignment, AgencyUser
from postloan.models import CollectionAction, CollectionCase
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on
from tests.test_admin_support import console_client, log_in
from tests.test_postloan_cases import D

PASSWORD = "Waibao-Portal-2026"


@pytest.fixture
def world(session):
    w, first = make_loan(session)
    _, second = make_loan(session)
    make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    on(D)
    cob.run_date(D)
    cases = list(session.scalars(select(CollectionCase).order_by(CollectionCase.id)))
    assert len(cases) == 2
    manager = V(w.manager)
    agency = service.create_agency(session, manager, name="华信催收", commission_rate=service.parse_rate("15"))
    other = service.create_agency(session, manager, name="远航资产", commission_rate=service.parse_rate("12.5"))
    service.create_user(session, manager, agency_id=agency.id, username="huaxin01", display_name="周经理",
                        password=PASSWORD)
    service.assign(session, manager, case_id=cases[0].id, agency_id=agency.id)
    service.assign(session, manager, case_id=cases[1].id, agency_id=other.id)
    session.commit()
    return w, manager, cases, agency


def _audit(session, prefix):
    return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action.like(prefix + "%")))


def test_rates_and_a_second_assignment_of_one_case_is_refused(session, world):
    w, manager, cases, agency = world
    assert agency.commission_rate == Decimal("0.1500")
    assert session.scalar(select(AgencyAssignment.commission_rate).where(AgencyAssignment.case_id == cases[1].id)) \
        == Decimal("0.1250")
    with pytest.raises(service.AlreadyOutsourced):
        service.assign(session, manager, case_id=cases[0].id, agency_id=agency.id)
    for bad in ("0", "100", "abc", "12.345"):
        with pytest.raises(service.AgencyInvalid):
            service.parse_rate(bad)
    with pytest.raises(service.AgencyInvalid):  # a password the policy refuses
        service.create_user(session, manager, agency_id=agency.id, username="weak", display_name="", password="12345678")


def test_the_portal_shows_only_the_agencys_cases_masked_and_logs_every_access(session, world):
    w, manager, cases, agency = world
    mine, theirs = cases
    customer = session.get(Customer, mine.customer_id)
    phone = pii.open_sealed(pii.PHONE, customer.phone_enc)
    client = console_client()
    refused = client.post("/agency/login", data={"username": "huaxin01", "password": "wrong-password-1"})
    assert refused.status_code == 401 and "不正确" in refused.text
    assert client.get("/agency/").status_code == 303  # not logged in: to the login page
    assert client.post("/agency/login", data={"username": "huaxin01", "password": PASSWORD}).status_code == 303
    listing = client.get("/agency/")
    assert listing.status_code == 200 and f"案件 #{mine.id}" in listing.text and f"案件 #{theirs.id}" not in listing.text
    assert phone not in listing.text and customer.phone_masked in listing.text
    assert customer.name not in listing.text  # the name masked too
    page = client.get(f"/agency/cases/{mine.id}")
    assert page.status_code == 200 and phone not in page.text
    assert client.get(f"/agency/cases/{theirs.id}").status_code == 404  # another agency's case
    assert client.get("/agency/cases/999999").status_code == 404
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    forged = client.post(f"/agency/cases/{mine.id}/action", data={"kind": "call", "note": "x", "csrf": "bad"})
    assert forged.status_code == 403
    saved = client.post(f"/agency/cases/{mine.id}/action",
                        data={"kind": "call", "note": "已电话联系，客户称周五还款", "csrf": csrf})
    assert saved.status_code == 303
    action = session.scalar(select(CollectionAction).where(CollectionAction.case_id == mine.id,
                                                           CollectionAction.kind == "call"))
    assert action is not None and "华信催收" in action.note and "周五还款" in action.note
    into_other = client.post(f"/agency/cases/{theirs.id}/action", data={"kind": "note", "note": "x", "csrf": csrf})
    assert into_other.status_code == 404
    assert session.scalar(select(func.count()).select_from(CollectionAction)
                          .where(CollectionAction.case_id == theirs.id, CollectionAction.kind == "note")) == 0
    logged = {a for (a,) in session.execute(select(AuditLog.action).where(AuditLog.actor_kind == "agency"))}
    assert {"agency.portal.login", "agency.portal.list", "agency.portal.view", "agency.portal.denied",
            "agency.portal.action"} <= logged
    # recalled: gone from the portal at once
    service.recall(session, manager, case_id=mine.id, reason="机构回款慢")
    session.commit()
    assert client.get(f"/agency/cases/{mine.id}").status_code == 404
    assert f"案件 #{mine.id}" not in client.get("/agency/").text
    assert _audit(session, "agency.recall") == 1


def test_the_manager_page_assigns_and_recalls(session, world):
    w, manager, cases, agency = world
    client = console_client()
    csrf = log_in(client, session, w.manager)
    session.commit()
    page = client.get("/console/collections/agencies")
    assert page.status_code == 200 and "华信催收" in page.text and "15.00%" in page.text
    again = client.post("/console/collections/agencies/assign",
                        data={"case_id": str(cases[0].id), "agency_id": str(agency.id), "csrf_token": csrf})
    assert again.status_code == 409 and "已委外" in again.text
    assert client.post(f"/console/collections/agencies/recall/{cases[0].id}",
                       data={"reason": "", "csrf_token": csrf}).status_code == 303
    assert client.post("/console/collections/agencies/assign",
                       data={"case_id": str(cases[0].id), "agency_id": str(agency.id),
                             "csrf_token": csrf}).status_code == 303
    assert session.scalar(select(func.count()).select_from(AgencyAssignment)
                          .where(AgencyAssignment.case_id == cases[0].id)) == 2
    collector = make_staff(session, role="collector", department=w.manager.department)
    other = console_client()
    log_in(other, session, collector)
    session.commit()
    assert other.get("/console/collections/agencies").status_code == 403


def test_failed_portal_logins_are_audited_with_the_reason_kept_there(session, world):
    w, manager, cases, agency = world
    client = console_client()
    for username, password in (("huaxin01", "wrong-password-1"), ("nobody", PASSWORD)):
        refused = client.post("/agency/login", data={"username": username, "password": password})
        assert refused.status_code == 401 and "登录名或密码不正确" in refused.text
    user = session.scalar(select(AgencyUser).where(AgencyUser.username == "huaxin01"))
    user.active = False
    session.commit()
    assert client.post("/agency/login", data={"username": "huaxin01", "password": PASSWORD}).status_code == 401
    failed = list(session.scalars(select(AuditLog).where(AuditLog.action == "agency.portal.login_failed")
                                  .order_by(AuditLog.id)))
    assert [(f.actor_kind, f.actor_label, f.detail) for f in failed] == [
        ("agency", "huaxin01", "bad_credentials; recent failures=1"),
        ("agency", "nobody", "bad_credentials; recent failures=1"),
        ("agency", "huaxin01", "user_inactive; recent failures=2")]
    assert failed[0].entity_id == str(user.id) and failed[1].entity_id is None
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "agency.portal.login")) == 0  # no successful login among them


def test_the_portal_login_is_throttled_like_the_consoles(session, world, monkeypatch):
    """Issue 20 §4 applied to the agency portal: a username under attack waits longer each time (never locked:
    the right password still gets in), and one client past its window of failures is refused before any
    password is checked. The console's counters are not the portal's."""
    from datetime import UTC, datetime

    from admin import agency_portal
    from core import clock
    from core.settings import get_settings
    from crm import auth_service

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(agency_portal, "_wait", record)
    clock.freeze(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    client = console_client()
    max_failures = get_settings().login_max_failures
    for _ in range(max_failures + 3):
        assert client.post("/agency/login", data={"username": "huaxin01", "password": "wrong-password-1"}
                           ).status_code == 401
    assert waits == [1.0, 2.0, 4.0]
    assert auth_service.login_delay_seconds("huaxin01") == 0.0  # the console's realm is untouched
    assert client.post("/agency/login", data={"username": "huaxin01", "password": PASSWORD}).status_code == 303
    for n in range(auth_service.IP_LIMIT[0] - max_failures - 3):
        client.post("/agency/login", data={"username": f"guess{n}", "password": "wrong-password-1"})
    refused = client.post("/agency/login", data={"username": "huaxin01", "password": PASSWORD})
    assert refused.status_code == 429 and "登录失败次数过多" in refused.text and "Retry-After" in refused.headers
