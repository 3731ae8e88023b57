"""The collections pages never send a borrower's full phone number to the browser: the case page has no
查看完整号码 (its route is gone), the 拨打 button has the server dial, and every dial is audit-logged."""

from __future__ import annotations

from fastapi.routing import APIRoute
from sqlalchemy import select

from core import pii
from core.audit import AuditLog
from crm.models import Customer
from postloan.telephony.models import TelephonyCall
from tests.test_admin_support import console_client, log_in
from tests.test_postloan_case_calls import _case

HX = {"HX-Request": "true"}


def _collections_get_paths(case_id: int, call_id: int) -> list[str]:
    from admin.console import agencies, collections_analysis, collections_cases, collections_setup, telephony

    paths = []
    routes = [r for m in (agencies, collections_analysis, collections_cases, collections_setup, telephony)
              for r in m.router.routes]
    for route in routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if not route.path.startswith("/console/collections"):
            continue
        path = route.path.replace("{case_id}", str(case_id)).replace("{call_id}", str(call_id))
        if "{" not in path:
            paths.append(path)
    return paths


def test_no_collections_page_returns_the_plain_number_and_dials_are_audited(session, tel_server, task_runner):
    case, loan, holder, _ = _case(session)
    customer = session.get(Customer, loan.customer_id)
    plain = pii.open_sealed(pii.PHONE, customer.phone_enc)
    assert len(plain) == 11
    client = console_client()
    csrf = log_in(client, session, holder)
    session.commit()
    gone = client.post(f"/console/collections/cases/{case.id}/reveal-phone",
                       data={"csrf_token": csrf, "reason": "电话催收"})
    assert gone.status_code in (404, 405) and plain not in gone.text
    dialled = client.post(f"/console/collections/calls/case/{case.id}", data={"csrf_token": csrf}, headers=HX)
    assert dialled.status_code == 200 and plain not in dialled.text
    call = session.scalar(select(TelephonyCall))
    task_runner.drain()
    assert tel_server.complete(call.out_call_no, "answered", duration=30) == [204]
    task_runner.drain()
    paths = _collections_get_paths(case.id, call.id)
    assert f"/console/collections/cases/{case.id}" in paths and "/console/collections/calls" in paths
    for path in paths:
        page = client.get(path)
        assert page.status_code in (200, 403), (path, page.status_code)
        assert plain not in page.content.decode("utf-8", "replace"), path
    case_page = client.get(f"/console/collections/cases/{case.id}")
    assert customer.phone_masked in case_page.text and "reveal-phone" not in case_page.text
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "telephony.dial")).all()
    assert len(audit) == 1 and audit[0].entity_id == str(customer.id) and plain not in (audit[0].detail or "")
