"""Console pages and JSON API of servicing: loan list and page, record a repayment (CSRF), reversal, collections
queue and actions, phone reveal audited; the API's repayments and OpenAPI docs."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from core import pii
from core.audit import AuditLog
from crm import auth_service
from lending.models import Repayment, RepaymentRefund, Restructure
from lending.servicing import rollover
from postloan.models import CollectionAction
from tests.factories import make_staff
from tests.lending_flow_support import count
from tests.servicing_support import days, make_loan, on, rows
from tests.test_admin_support import bearer, console_client, log_in

DUE = date(2026, 12, 23)


def _token(session, staff) -> str:
    token, _ = auth_service.issue_api_token(session, staff.id, "测试")
    return token


def _overdue(session):
    w, loan = make_loan(session)
    collector = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    on(DUE + days(10))
    rollover.roll_over(session)
    session.refresh(loan)
    return w, loan, collector


def test_finance_records_a_repayment_from_the_loan_page(session):
    w, loan, _ = _overdue(session)
    client = console_client()
    csrf = log_in(client, session, w.finance)
    page = client.get(f"/console/lending/loans/{loan.id}")
    assert page.status_code == 200
    for text in ("还款计划", "罚息", "登记还款", "¥4.73", "M1", "逾期天数"):
        assert text in page.text, text
    r = client.post(f"/console/lending/loans/{loan.id}/repayments", data={
        "csrf_token": csrf, "amount": "1,000.00", "channel": "bank_transfer", "external_reference": "HD-001",
        "repayment_date": str(DUE + days(10))})
    assert r.status_code == 303, r.text
    again = client.post(f"/console/lending/loans/{loan.id}/repayments", data={
        "csrf_token": csrf, "amount": "1000", "channel": "bank_transfer", "external_reference": "HD-001",
        "repayment_date": str(DUE + days(10))})
    assert again.status_code == 303  # the double click lands on the same booking
    assert count(session, Repayment) == 1
    first = rows(session, loan)[0]
    assert first.paid_amount == 100_000
    page = client.get(f"/console/lending/loans/{loan.id}?done=repaid")
    assert "还款已入账" in page.text and "HD-001" in page.text


def test_a_repayment_without_csrf_or_above_what_is_due_writes_nothing(session):
    w, loan, _ = _overdue(session)
    client = console_client()
    csrf = log_in(client, session, w.finance)
    r = client.post(f"/console/lending/loans/{loan.id}/repayments",
                    data={"amount": "10", "external_reference": "X1"})
    assert r.status_code == 403
    r = client.post(f"/console/lending/loans/{loan.id}/repayments", data={
        "csrf_token": csrf, "amount": "999999", "external_reference": "X2"})
    assert r.status_code == 422 and "超过" in r.text and "应还金额" in r.text
    assert count(session, Repayment) == 0


def test_a_salesperson_sees_the_loan_but_cannot_book(session):
    w, loan, _ = _overdue(session)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    page = client.get(f"/console/lending/loans/{loan.id}")
    assert page.status_code == 200 and "登记还款" not in page.text
    r = client.post(f"/console/lending/loans/{loan.id}/repayments", data={
        "csrf_token": csrf, "amount": "10", "external_reference": "S1"})
    assert r.status_code == 403 and count(session, Repayment) == 0
    assert client.get("/console/lending/collections").status_code == 403


def test_a_reversal_and_its_refund_from_the_history(session):
    w, loan, _ = _overdue(session)
    client = console_client()
    csrf = log_in(client, session, w.finance)
    client.post(f"/console/lending/loans/{loan.id}/repayments", data={
        "csrf_token": csrf, "amount": "100", "external_reference": "R-1"})
    repayment = session.scalar(select(Repayment))
    r = client.post(f"/console/lending/repayments/{repayment.id}/reverse", data={"csrf_token": csrf, "reason": "错账"})
    assert r.status_code == 303
    r = client.post(f"/console/lending/repayments/{repayment.id}/reverse", data={"csrf_token": csrf, "reason": "再来"})
    assert r.status_code == 409 and "已冲正" in r.text
    assert count(session, Repayment) == 2 and rows(session, loan)[0].paid_amount == 0
    page = client.get(f"/console/lending/loans/{loan.id}")
    assert "登记退款" in page.text and "转出流水号" in page.text
    assert "<td>还款</td>" in page.text and ">installment<" not in page.text  # the payments console's filter of the same name
    r = client.post(f"/console/lending/repayments/{repayment.id}/refund", data={"csrf_token": csrf, "reason": "退回"})
    assert r.status_code == 422 and "退款流水号" in r.text and count(session, RepaymentRefund) == 0
    r = client.post(f"/console/lending/repayments/{repayment.id}/refund",
                    data={"csrf_token": csrf, "reason": "退回客户", "reference": "OUT-77"})
    assert r.status_code == 303 and count(session, RepaymentRefund) == 1
    page = client.get(r.headers["location"])
    assert "退款已办理" in page.text and "已退款 OUT-77" in page.text
    api = client.post(f"/api/v1/lending/repayments/{repayment.id}/refund", json={"reason": "再退", "reference": "X"},
                      headers=bearer(_token(session, w.finance)))
    assert api.status_code == 409 and api.json()["code"] == "refund_refused"
    listed = client.get(f"/api/v1/lending/loans/{loan.id}/refunds", headers=bearer(_token(session, w.finance)))
    assert [(f["amount"], f["route"], f["external_reference"]) for f in listed.json()] == [(10_000, "manual", "OUT-77")]


def test_the_loan_list_filters_by_bucket(session):
    w, loan, _ = _overdue(session)
    client = console_client()
    log_in(client, session, w.finance)
    assert f"/console/lending/loans/{loan.id}" in client.get("/console/lending/loans?bucket=M1").text
    assert f"/console/lending/loans/{loan.id}" not in client.get("/console/lending/loans?bucket=M2").text
    assert f"/console/lending/loans/{loan.id}" in client.get("/console/lending/loans?status=active").text


def test_the_collector_works_the_queue_and_never_sees_the_full_phone(session):
    w, loan, collector = _overdue(session)
    other = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    client = console_client()
    csrf = log_in(client, session, collector)
    queue = client.get("/console/lending/collections")
    assert queue.status_code == 200 and f"/console/lending/loans/{loan.id}" in queue.text
    assert w.customer.phone_masked in queue.text
    r = client.post(f"/console/lending/loans/{loan.id}/actions", data={
        "csrf_token": csrf, "kind": "promise", "note": "周五还", "promised_date": str(DUE + days(12)),
        "promised_amount": "500"})
    assert r.status_code == 303, r.text
    assert count(session, CollectionAction, CollectionAction.kind == "promise") == 1
    # the number is dialled by the server from the collection case; the loan page never shows it (issue 16.5)
    phone = pii.open_sealed(pii.PHONE, w.customer.phone_enc)
    page = client.get(f"/console/lending/loans/{loan.id}")
    assert page.status_code == 200 and w.customer.phone_masked in page.text and phone not in page.text
    gone = client.post(f"/console/lending/loans/{loan.id}/reveal-phone", data={"csrf_token": csrf, "reason": "电话催收"})
    assert gone.status_code in (404, 405) and phone not in gone.text
    assert session.scalar(select(AuditLog).where(AuditLog.action == "pii.reveal")) is None
    client2 = console_client()
    log_in(client2, session, other)
    assert f"/console/lending/loans/{loan.id}" not in client2.get("/console/lending/collections").text
    assert client2.get(f"/console/lending/loans/{loan.id}").status_code == 404


def test_the_api_books_once_per_reference_and_reads_the_schedule(session):
    w, loan, collector = _overdue(session)
    api = console_client()
    fin = bearer(_token(session, w.finance))
    body = {"amount": 50_000, "external_reference": "API-1", "channel": "withholding"}
    a = api.post(f"/api/v1/lending/loans/{loan.id}/repayments", headers=fin, json=body)
    b = api.post(f"/api/v1/lending/loans/{loan.id}/repayments", headers=fin, json=body)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    clash = api.post(f"/api/v1/lending/loans/{loan.id}/repayments", headers=fin, json={**body, "amount": 1})
    assert clash.status_code == 409 and clash.json()["code"] == "repayment_reference_taken"
    over = api.post(f"/api/v1/lending/loans/{loan.id}/repayments", headers=fin,
                    json={"amount": 10**9, "external_reference": "API-2"})
    assert over.status_code == 422 and over.json()["code"] == "overpayment"
    detail = api.get(f"/api/v1/lending/loans/{loan.id}", headers=fin).json()
    first = detail["installments"][0]
    assert first["paid_penalty_amount"] == 473 and first["status"] == "overdue"
    assert detail["bucket"] == "M1" and detail["overdue_days"] == 10
    rev = api.post(f"/api/v1/lending/repayments/{a.json()['id']}/reversal", headers=fin, json={"reason": "测试"})
    assert rev.status_code == 201 and rev.json()["kind"] == "reversal"
    queue = api.get("/api/v1/lending/collections/queue", headers=bearer(_token(session, collector))).json()
    assert [q["loan_id"] for q in queue] == [loan.id] and "*" in queue[0]["customer_phone_masked"]
    paths = api.get("/api/openapi.json").json()["paths"]
    for path in ("/api/v1/lending/loans", "/api/v1/lending/loans/{loan_id}/repayments",
                 "/api/v1/lending/repayments/{repayment_id}/reversal", "/api/v1/lending/collections/queue"):
        assert path in paths, path


def test_an_extension_requested_on_the_page_and_approved_through_the_api(session):
    w, loan = make_loan(session)
    on(DUE + days(1))
    client = console_client()
    csrf = log_in(client, session, w.sales)
    page = client.get(f"/console/lending/loans/{loan.id}")
    assert "展期 / 重组" in page.text and "提交申请" in page.text
    r = client.post(f"/console/lending/loans/{loan.id}/restructures",
                    data={"csrf_token": csrf, "kind": "extension", "periods": "x", "reason": "收入下降"})
    assert r.status_code == 422 and "期数" in r.text and count(session, Restructure) == 0
    r = client.post(f"/console/lending/loans/{loan.id}/restructures",
                    data={"csrf_token": csrf, "kind": "extension", "periods": "3", "reason": "收入下降"})
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "展期/重组申请已提交" in page.text and "待审批" in page.text
    asked = session.scalar(select(Restructure))
    api = client.post(f"/api/v1/lending/restructures/{asked.id}/approve", json={"note": "同意"},
                      headers=bearer(_token(session, w.manager)))
    assert api.status_code == 200, api.text
    assert api.json()["status"] == "approved" and api.json()["periods"] == 14
    assert len(rows(session, loan)) == 15
    listed = client.get(f"/api/v1/lending/loans/{loan.id}/schedule-versions",
                        headers=bearer(_token(session, w.manager))).json()
    assert [v["reason"] for v in listed] == ["original", "extension"]
