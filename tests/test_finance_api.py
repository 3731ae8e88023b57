"""The staff API under /api/v1/finance: the main path over HTTP, refusals with stable codes and Chinese
messages, data scope, OpenAPI."""

from __future__ import annotations

from io import BytesIO

from openpyxl import load_workbook
from sqlalchemy import func, select

from crm import auth_service
from finance import settlements
from finance.models import Deposit, JournalLine
from tests.finance_support import V, make_world, working_agreement
from tests.test_admin_support import bearer, console_client


def _h(session, staff) -> dict[str, str]:
    token, _ = auth_service.issue_api_token(session, staff.id, "测试")
    return bearer(token)


def test_main_path_over_the_api(session):
    w = make_world(session)
    c = console_client()
    sales, fin, sup, off = _h(session, w.sales), _h(session, w.finance), _h(session, w.supervisor), _h(session, w.officer)
    r = c.post("/api/v1/finance/agreements", headers=sales, json={
        "customer_id": w.customer.id, "case_officer_id": w.officer.id, "loan_amount": 20_000_000, "term_months": 36,
        "funder_annual_rate": "0.06", "service_fee_rate": "0.03", "deposit_amount": 300_000})
    assert r.status_code == 201, r.text
    agreement = r.json()
    assert agreement["status"] == "draft" and agreement["sales_staff_id"] == w.sales.id
    aid = agreement["id"]
    assert c.post(f"/api/v1/finance/agreements/{aid}/confirm", headers=fin).json()["status"] == "confirmed"
    locked = c.patch(f"/api/v1/finance/agreements/{aid}", headers=sales, json={"deposit_amount": 1})
    assert locked.status_code == 409 and locked.json()["code"] == "amount_locked"
    assert c.post(f"/api/v1/finance/agreements/{aid}/approve", headers=sup).json()["status"] == "approved"
    d = c.post(f"/api/v1/finance/agreements/{aid}/deposits", headers=off, json={"amount": 300_000, "method": "cash"})
    assert d.status_code == 201, d.text
    assert c.post(f"/api/v1/finance/deposits/{d.json()['id']}/confirm", headers=fin).json()["status"] == "confirmed"
    assert [a["id"] for a in c.get("/api/v1/finance/work-list", headers=off).json()] == [aid]
    undisbursed = c.get(f"/api/v1/finance/agreements/{aid}/settlement", headers=fin)
    assert undisbursed.status_code == 409 and undisbursed.json()["code"] == "not_disbursed"
    s = c.post(f"/api/v1/finance/agreements/{aid}/disbursement", headers=fin, json={
        "funder_name": "某银行", "funder_type": "bank", "amount": 20_000_000}).json()
    sid = s["id"]
    too_much = c.post(f"/api/v1/finance/settlements/{sid}/charge", headers=fin, json={
        "discount_kind": "fixed", "discount_amount": 700_000, "payments": [], "expected_revision": 0})
    assert too_much.status_code == 422 and "超过服务费" in too_much.json()["message"]
    charged = c.post(f"/api/v1/finance/settlements/{sid}/charge", headers=fin, json={
        "discount_kind": "fixed", "discount_amount": 50_000, "expected_revision": 0,
        "payments": [{"method": "wechat", "amount": 150_000}, {"method": "bank", "amount": 100_000}]})
    assert charged.status_code == 200, charged.text
    assert charged.json()["total_due_amount"] == 250_000
    rev = charged.json()["revision"]
    for who, h in (("officer", off), ("supervisor", sup), ("sales", sales)):
        r = c.post(f"/api/v1/finance/settlements/{sid}/confirmations", headers=h, json={"as": who, "revision": rev})
        assert r.status_code == 200, r.text
    done = c.post(f"/api/v1/finance/settlements/{sid}/close", headers=fin)
    assert done.status_code == 200 and done.json()["status"] == "settled"
    again = c.post(f"/api/v1/finance/settlements/{sid}/close", headers=fin)
    assert again.status_code == 409 and again.json()["code"] == "settlement_conflict"
    xlsx = c.get("/api/v1/finance/settlements/export.xlsx", headers=fin)
    assert xlsx.status_code == 200
    rows = list(load_workbook(BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][1] == agreement["number"] and rows[1][-2] == "已结算"
    check = c.get("/api/v1/finance/ledger/check", headers=fin).json()
    assert check["ok"] is True and check["entries"] == 2


def test_refusals_carry_a_code_and_a_chinese_message_and_write_nothing(session):
    w = make_world(session)
    c = console_client()
    sales = _h(session, w.sales)
    capped = c.post("/api/v1/finance/agreements", headers=sales, json={
        "customer_id": w.customer.id, "case_officer_id": w.officer.id, "loan_amount": 1_000_000, "term_months": 6,
        "funder_annual_rate": "0.10", "service_fee_rate": "0.08"})
    assert capped.status_code == 422 and capped.json()["code"] == "apr_above_cap"
    assert "综合年化成本" in capped.json()["message"] and "details" in capped.json()
    negative = c.post("/api/v1/finance/agreements", headers=sales, json={
        "customer_id": w.customer.id, "case_officer_id": w.officer.id, "loan_amount": -5, "term_months": 6,
        "funder_annual_rate": "0.10"})
    assert negative.status_code == 422 and "负数" in negative.json()["message"]
    fractional = c.post("/api/v1/finance/agreements", headers=sales, json={
        "customer_id": w.customer.id, "case_officer_id": w.officer.id, "loan_amount": 100.5, "term_months": 6,
        "funder_annual_rate": "0.10"})
    assert fractional.status_code == 422
    assert session.scalar(select(func.count()).select_from(Deposit)) == 0
    assert session.scalar(select(func.count()).select_from(JournalLine)) == 0


def test_out_of_scope_is_404_and_roles_are_enforced(session):
    w = make_world(session)
    c = console_client()
    r = c.post("/api/v1/finance/agreements", headers=_h(session, w.sales), json={
        "customer_id": w.customer.id, "case_officer_id": w.officer.id, "loan_amount": 20_000_000, "term_months": 36,
        "funder_annual_rate": "0.06", "service_fee_rate": "0.03"})
    aid = r.json()["id"]
    assert c.get(f"/api/v1/finance/agreements/{aid}", headers=_h(session, w.other_sales)).status_code == 404
    assert c.post(f"/api/v1/finance/agreements/{aid}/confirm", headers=_h(session, w.sales)).status_code == 403
    assert c.get("/api/v1/finance/ledger/accounts", headers=_h(session, w.sales)).status_code == 403


def test_the_finance_api_is_in_the_openapi():
    spec = console_client().get("/api/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/finance/agreements", "/api/v1/finance/settlements/{settlement_id}/close",
                 "/api/v1/finance/settlements/export.xlsx", "/api/v1/finance/ledger/check"):
        assert path in paths


def test_reimbursements_and_performance_over_the_api(session):
    from core import clock
    from tests.finance_support import working_agreement

    w = make_world(session)
    a = working_agreement(session, w)
    c = console_client()
    r = c.post("/api/v1/finance/reimbursements", headers=_h(session, w.officer), json={
        "agreement_id": a.id, "category": "下户费", "amount": 20_000})
    assert r.status_code == 201 and r.json()["status"] == "submitted"
    fin = _h(session, w.finance)
    assert c.post(f"/api/v1/finance/reimbursements/{r.json()['id']}/confirm", headers=fin).json()["status"] == "confirmed"
    paid = c.post(f"/api/v1/finance/reimbursements/{r.json()['id']}/pay", headers=fin, json={"method": "bank"})
    assert paid.json()["status"] == "paid"
    today = clock.today().isoformat()
    report = c.get(f"/api/v1/finance/performance?since={today}&until={today}", headers=fin)
    assert report.status_code == 200
    assert report.json()["staff"][0]["signed_count"] == 1
    assert c.get(f"/api/v1/finance/performance?since={today}&until={today}",
                 headers=_h(session, w.sales)).status_code == 403


def test_a_charge_needs_the_revision_it_saw_and_of_two_against_the_same_revision_one_wins(session):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=100_000)
    s = settlements.record_disbursement(session, a.id, funder_name="某银行", funder_type="bank", amount=20_000_000,
                                        disbursed_date=None, viewer=V(w.finance))
    c = console_client()
    fin = _h(session, w.finance)
    body = {"payments": [{"method": "bank", "amount": 580_000}]}
    missing = c.post(f"/api/v1/finance/settlements/{s.id}/charge", headers=fin, json=body)
    assert missing.status_code == 422, missing.text
    assert missing.json()["code"] == "validation_failed"
    assert "收费版本（expected_revision" in missing.json()["message"] and "不能为空" in missing.json()["message"]
    session.refresh(s)
    assert s.status == "pending" and s.revision == 0
    first = c.post(f"/api/v1/finance/settlements/{s.id}/charge", headers=fin, json={**body, "expected_revision": 0})
    assert first.status_code == 200 and first.json()["revision"] == 1
    second = c.post(f"/api/v1/finance/settlements/{s.id}/charge", headers=fin,
                    json={"payments": [{"method": "cash", "amount": 580_000}], "expected_revision": 0})
    assert second.status_code == 409 and "已被他人修改" in second.json()["message"]
    schema = c.get("/api/openapi.json").json()["components"]["schemas"]["ChargeBody"]
    assert "expected_revision" in schema["required"]
