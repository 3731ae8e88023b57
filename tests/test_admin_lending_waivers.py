"""Waivers through the console (request by collections, approval by a manager) and the staff API (limits,
approval above the limit refused)."""

from __future__ import annotations

from datetime import date

from crm import auth_service
from lending.models import Waiver
from lending.servicing import rollover, waivers
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, rows
from tests.test_admin_support import bearer, console_client, log_in


def _world(session):
    w, loan = make_loan(session)
    collector = make_staff(session, role="collector", department=w.manager.department, data_scope="all")
    admin = make_staff(session, role="admin", department=w.manager.department, data_scope="all")
    on(date(2027, 1, 2))
    rollover.roll_over(session)
    return w, loan, collector, admin


def test_collections_requests_and_a_manager_approves_on_the_loan_page(session):
    w, loan, collector, admin = _world(session)
    waivers.set_limit(session, "manager", 50_000, viewer=V(admin))
    client = console_client()
    csrf = log_in(client, session, collector)
    r = client.post(f"/console/lending/loans/{loan.id}/waivers", data={
        "csrf_token": csrf, "installment_number": "1", "component": "penalty", "amount": "4.73", "reason": "困难客户"})
    assert r.status_code == 303, r.text
    bad = client.post(f"/console/lending/loans/{loan.id}/waivers", data={
        "csrf_token": csrf, "installment_number": "1", "component": "penalty", "amount": "9.99", "reason": "多减"})
    assert bad.status_code == 422 and "尚欠" in bad.text
    page = client.get(f"/console/lending/loans/{loan.id}").text
    assert "困难客户" in page and "待审批" in page and "没有审批权限" in page
    manager = console_client()
    csrf2 = log_in(manager, session, w.manager)
    asked = session.query(Waiver).one()
    ok = manager.post(f"/console/lending/waivers/{asked.id}/approve", data={"csrf_token": csrf2, "note": "同意"})
    assert ok.status_code == 303, ok.text
    session.refresh(asked)
    assert asked.status == "approved" and rows(session, loan)[0].paid_penalty_amount == 473
    after = manager.get(f"/console/lending/loans/{loan.id}").text
    assert "已批准" in after and f"WAIVER-{asked.id}" in after


def test_the_api_sets_limits_and_refuses_an_approval_above_one(session):
    w, loan, collector, admin = _world(session)
    api = console_client()
    adm = bearer(auth_service.issue_api_token(session, admin.id, "t")[0])
    mgr = bearer(auth_service.issue_api_token(session, w.manager.id, "t")[0])
    col = bearer(auth_service.issue_api_token(session, collector.id, "t")[0])
    assert api.put("/api/v1/lending/waiver-limits/manager", headers=mgr, json={"max_amount": 1}).status_code == 403
    assert api.put("/api/v1/lending/waiver-limits/manager", headers=adm,
                   json={"max_amount": 5_000}).json() == {"manager": 5_000}
    asked = api.post(f"/api/v1/lending/loans/{loan.id}/waivers", headers=col, json={
        "installment_number": 1, "component": "interest", "amount": 12_000, "reason": "利息减免"})
    assert asked.status_code == 201, asked.text
    over = api.post(f"/api/v1/lending/waivers/{asked.json()['id']}/approve", headers=mgr, json={})
    assert over.status_code == 403 and over.json()["code"] == "waiver_above_limit"
    assert api.get(f"/api/v1/lending/loans/{loan.id}/waivers", headers=mgr).json()[0]["status"] == "requested"
    rejected = api.post(f"/api/v1/lending/waivers/{asked.json()['id']}/reject", headers=mgr, json={"note": "超额"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
