"""Customer 360 shows the customer's loans, repayments and the latest credit result (issue 17, section 2)."""

from __future__ import annotations

from sqlalchemy import select

from core import clock
from lending.models import Contract, RiskEvaluation
from tests.servicing_support import START, make_loan, pay
from tests.test_admin_support import console_client, log_in


def test_the_360_shows_loans_repayments_and_the_latest_credit_result(session):
    w, loan = make_loan(session)
    pay(session, w, loan, 50_000, START)
    session.add(RiskEvaluation(product_version_id=w.version_id, customer_id=w.customer.id, inputs={}, hits=[
        {"name": "多头申请", "outcome": "manual_review", "reason": "30 天内 2 笔"}], outcome="manual_review",
        credit_limit_amount=3_000_000, provider="fake", provider_status="ok", at=clock.now()))
    session.flush()
    number = session.scalar(select(Contract.number).where(Contract.id == loan.contract_id))
    client = console_client()
    log_in(client, session, w.manager)
    page = client.get(f"/console/customers/{w.customer.id}")
    assert page.status_code == 200
    section = page.text[page.text.index('id="lending"'):page.text.index("<h2>时间线</h2>")]
    assert number in section and "¥12,000.00" in section and "还款中" in section
    assert "¥500.00" in section and "银行转账" in section and "bank_transfer" not in section  # the repayment
    assert "转人工审核" in section and "¥30,000.00" in section and "多头申请" in section


def test_a_customer_without_loans_says_so(session):
    from tests.factories import make_customer, make_org, make_staff

    org = make_org(session)
    manager = make_staff(session, role="manager", department=org["company"], data_scope="all")
    customer = make_customer(session, name="无贷款")
    client = console_client()
    log_in(client, session, manager)
    page = client.get(f"/console/customers/{customer.id}")
    assert "暂无放款的贷款" in page.text and "尚未进行风控评估" in page.text
