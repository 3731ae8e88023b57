"""签单试算: the all-in annualised cost of agreement terms (IRR, as the agreement is checked) and the cap,
before anything is saved; on the console form and in the API. Above the cap: refused with the figure."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm import auth_service
from finance import agreements
from finance.exceptions import AprAboveCap, FinanceInvalid
from finance.models import Agreement
from tests.finance_support import V, make_world
from tests.test_admin_support import bearer, console_client, log_in

# 200,000 元, 36 months at 6%, 3% service fee, 800 元 appraisal fee.
TERMS = {"loan_amount": 20_000_000, "term_months": 36, "funder_annual_rate": Decimal("0.06"),
         "service_fee_rate": Decimal("0.03"), "other_fees": [{"name": "评估费", "amount": 80_000}]}
# 10,000 元 over 6 months at 10% with an 8% service fee: far above 24%.
CAPPED = {"loan_amount": 1_000_000, "term_months": 6, "funder_annual_rate": Decimal("0.10"),
          "service_fee_rate": Decimal("0.08")}


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(Agreement))


def test_the_quote_is_the_cost_the_agreement_is_saved_with(session):
    w = make_world(session)
    q = agreements.quote(TERMS, viewer=V(w.sales))
    assert q.within_cap and q.cap == Decimal("0.24") and q.service_fee_amount == 600_000
    assert q.charges_amount == 680_000
    assert _count(session) == 0  # nothing saved
    from tests.finance_support import agreement_input

    a = agreements.create_agreement(session, agreement_input(w), viewer=V(w.sales))
    assert a.apr_rate == q.apr


def test_a_quote_above_the_cap_is_refused_with_the_figure_and_bad_terms_in_chinese(session):
    w = make_world(session)
    with pytest.raises(AprAboveCap, match=r"综合年化成本 \d+\.\d\d%.*超过上限 24\.00%，不能签约") as exc:
        agreements.quote(CAPPED, viewer=V(w.sales))
    assert Decimal(exc.value.details["apr"]) > Decimal("0.24")
    with pytest.raises(FinanceInvalid, match="期限须是"):
        agreements.quote({**TERMS, "term_months": 0}, viewer=V(w.sales))


def test_the_console_form_quotes_without_saving(session):
    w = make_world(session)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    form = {"csrf_token": csrf, "customer_id": "", "sales_staff_id": str(w.sales.id), "case_officer_id": "",
            "loan_amount": "200000", "term_months": "36", "funder_annual_rate": "6",
            "repayment_method": "equal_installment", "service_fee_rate": "3", "other_name_1": "评估费",
            "other_amount_1": "800"}
    page = client.post("/console/finance/agreements/new", data={**form, "action": "quote"})
    assert page.status_code == 200, page.text[:500]
    q = agreements.quote(TERMS, viewer=V(w.sales))
    assert f"试算：综合年化成本 {q.apr_text}%" in page.text and "上限 24.00%" in page.text
    assert "服务费 ¥6,000.00" in page.text and 'value="200000"' in page.text  # the form keeps what was typed
    assert _count(session) == 0
    capped = client.post("/console/finance/agreements/new", data={
        **form, "action": "quote", "loan_amount": "10000", "term_months": "6", "funder_annual_rate": "10",
        "service_fee_rate": "8", "other_name_1": "", "other_amount_1": ""})
    assert capped.status_code == 422 and "超过上限 24.00%，不能签约" in capped.text and "试算：" not in capped.text
    assert _count(session) == 0


def test_the_api_quotes_without_saving(session):
    w = make_world(session)
    token, _ = auth_service.issue_api_token(session, w.sales.id, "测试")
    c = console_client()
    body = {"loan_amount": 20_000_000, "term_months": 36, "funder_annual_rate": "0.06", "service_fee_rate": "0.03",
            "other_fees": [{"name": "评估费", "amount": 80_000}]}
    r = c.post("/api/v1/finance/agreements/quote", headers=bearer(token), json=body)
    assert r.status_code == 200, r.text
    q = agreements.quote(TERMS, viewer=V(w.sales))
    assert Decimal(r.json()["apr_rate"]) == q.apr and r.json()["within_cap"] is True
    assert r.json()["charges_amount"] == 680_000 and "上限 24.00%" in r.json()["message"]
    capped = c.post("/api/v1/finance/agreements/quote", headers=bearer(token), json={
        "loan_amount": 1_000_000, "term_months": 6, "funder_annual_rate": "0.10", "service_fee_rate": "0.08"})
    assert capped.status_code == 422 and capped.json()["code"] == "apr_above_cap"
    assert "超过上限 24.00%" in capped.json()["message"] and "apr" in capped.json()["details"]
    assert _count(session) == 0
    spec = c.get("/api/openapi.json").json()
    assert "/api/v1/finance/agreements/quote" in spec["paths"]
