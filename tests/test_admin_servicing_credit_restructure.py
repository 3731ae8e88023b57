"""Console and API of an overpayment credit (溢缴款: booked, refunded in part, the rest kept) and of a restructure at a
new rate with the overdue amounts capitalised; bad input refused on the form with nothing written."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from crm import auth_service
from lending.models import Repayment, RepaymentRefund, Restructure
from lending.servicing import refunds, repayments, state
from tests.lending_flow_support import count
from tests.servicing_support import make_loan, on, rows
from tests.test_admin_support import bearer, console_client, log_in


def _token(session, staff) -> str:
    token, _ = auth_service.issue_api_token(session, staff.id, "测试")
    return token


def test_an_overpayment_is_booked_as_credit_and_refunded_in_part_from_the_loan_page(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    due = repayments.payable(session, loan)
    client = console_client()
    csrf = log_in(client, session, w.finance)
    url = f"/console/lending/loans/{loan.id}/repayments"
    yuan = f"{(due + 50_000) // 100}.{(due + 50_000) % 100:02d}"
    refused = client.post(url, data={"csrf_token": csrf, "amount": yuan, "external_reference": "C-1"})
    assert refused.status_code == 422 and count(session, Repayment) == 0
    booked = client.post(url, data={"csrf_token": csrf, "amount": yuan, "external_reference": "C-1", "keep_excess": "1"})
    assert booked.status_code == 303, booked.text
    r = session.scalar(select(Repayment))
    page = client.get(f"/console/lending/loans/{loan.id}").text
    assert "溢缴款合计 ¥500.00" in page and "退溢缴款" in page
    over = client.post(f"/console/lending/repayments/{r.id}/refund-overpayment",
                       data={"csrf_token": csrf, "amount": "500.01", "reason": "多付", "reference": "OUT-1"})
    assert over.status_code == 409 and "超过" in over.text and count(session, RepaymentRefund) == 0
    part = client.post(f"/console/lending/repayments/{r.id}/refund-overpayment",
                       data={"csrf_token": csrf, "amount": "200", "reason": "多付退回", "reference": "OUT-1"})
    assert part.status_code == 303
    page = client.get(part.headers["location"]).text
    assert "溢缴款退款已办理" in page and "溢缴款 ¥300.00" in page and "溢缴款退款 ¥200.00" in page
    api = client.post(f"/api/v1/lending/repayments/{r.id}/refund-overpayment",
                      json={"amount": 30_000, "reason": "余款退回", "reference": "OUT-2"},
                      headers=bearer(_token(session, w.finance)))
    assert api.status_code == 201 and (api.json()["kind"], api.json()["amount"]) == ("overpayment", 30_000)
    assert refunds.loan_credit(session, loan.id) == 0


def test_a_restructure_at_a_new_rate_capitalising_the_overdue_from_the_page_and_the_api(session):
    w, loan = make_loan(session)
    on(date(2027, 1, 10))  # the first bill unpaid
    state.refresh(session, loan)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    url = f"/console/lending/loans/{loan.id}/restructures"
    bad = client.post(url, data={"csrf_token": csrf, "kind": "restructure", "periods": "12", "annual_rate": "abc",
                                 "reason": "重组"})
    assert bad.status_code == 422 and "利率格式不正确" in bad.text and count(session, Restructure) == 0
    ext = client.post(url, data={"csrf_token": csrf, "kind": "extension", "periods": "3", "capitalise": "1",
                                 "reason": "展期"})
    assert ext.status_code == 422 and "只能随重组" in ext.text and count(session, Restructure) == 0
    ok = client.post(url, data={"csrf_token": csrf, "kind": "restructure", "periods": "12", "annual_rate": "8",
                                "capitalise": "1", "reason": "逾期重组"})
    assert ok.status_code == 303, ok.text
    asked = session.scalar(select(Restructure))
    assert asked.annual_rate == Decimal("0.08") and asked.capitalised_amount > 0
    page = client.get(f"/console/lending/loans/{loan.id}").text
    assert "含逾期资本化" in page and "年利率 8.00%" in page
    api = client.post(f"/api/v1/lending/restructures/{asked.id}/approve", json={"note": "同意"},
                      headers=bearer(_token(session, w.risk)))
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["status"] == "approved" and Decimal(body["annual_rate"]) == Decimal("0.08")
    assert body["capitalised_amount"] == asked.capitalised_amount  # approved the same day: the same figure
    assert rows(session, loan)[0].status == "paid"
    listed = client.get(f"/api/v1/lending/loans/{loan.id}/restructures", headers=bearer(_token(session, w.risk)))
    assert listed.json()[0]["capitalised_amount"] == body["capitalised_amount"]
