"""推荐佣金 console pages and the staff JSON API: roles, CSRF, forms calling the domain, exports."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from crm import auth_service
from referral import ledger, payouts, referrers, rules
from referral.models import CommissionRule, Referrer
from tests.factories import make_customer, make_staff
from tests.referral_support import T0, make_agent, principal_rule, referred_customer
from tests.test_admin_support import bearer, console_client, log_in
from tests.test_referral_ledger import disburse


@pytest.fixture
def client():
    return console_client()


def _as(client, session, role="manager"):
    staff = make_staff(session, role=role, data_scope="all")
    return staff, log_in(client, session, staff)


def _earned(session, principal=1_000_000):
    agent = make_agent(session, "经纪人甲")
    principal_rule(session, level2="0")
    disburse(session, referred_customer(session, agent), principal)
    ledger.confirm_due(session, T0 + timedelta(days=31))
    return agent


@pytest.mark.parametrize("path", ["", "/attributions", "/rules", "/withdrawals", "/batches", "/reports"])
def test_pages_render_for_finance(client, session, path):
    _as(client, session, "finance")
    response = client.get(f"/console/referral{path}")
    assert response.status_code == 200, response.text
    assert "推荐佣金" in response.text


def test_salesperson_is_refused(client, session):
    _as(client, session, "sales")
    assert client.get("/console/referral").status_code == 403


def test_nav_shows_the_entry_to_finance(client, session):
    _as(client, session, "finance")
    assert 'href="/console/referral"' in client.get("/console/").text


def test_create_referrer_form(client, session):
    _, csrf = _as(client, session)
    response = client.post("/console/referral/referrers", data={
        "csrf_token": csrf, "kind": "channel", "name": "某渠道", "payee_channel": "bank",
        "payee_account": "6222000011112222", "payee_name": "某公司"})
    assert response.status_code == 303
    row = session.scalar(select(Referrer).where(Referrer.name == "某渠道"))
    assert row.kind == "channel" and row.payee_account_masked == "****2222"


def test_form_without_csrf_is_refused(client, session):
    _as(client, session)
    response = client.post("/console/referral/referrers", data={"kind": "agent", "name": "x"})
    assert response.status_code == 403
    assert session.scalar(select(Referrer).where(Referrer.name == "x")) is None


def test_overlapping_tiers_are_refused_on_the_form_with_the_reason(client, session):
    _, csrf = _as(client, session)
    response = client.post("/console/referral/rules", data={
        "csrf_token": csrf, "name": "阶梯", "beneficiary_kind": "referrer", "basis": "principal",
        "tiers": "0,200000,1%,0.2%\n100000,,1.5%,0.3%", "clawback_days": "30"})
    assert response.status_code == 422
    assert "阶梯区间重叠" in response.text
    assert session.scalar(select(func.count()).select_from(CommissionRule)) == 0


def test_rule_form_creates_a_rule_with_tiers(client, session):
    _, csrf = _as(client, session)
    response = client.post("/console/referral/rules", data={
        "csrf_token": csrf, "name": "阶梯", "beneficiary_kind": "referrer", "basis": "principal",
        "tiers": "0,200000,1%,0.2%\n200000,,1.5%,0.3%", "per_loan_cap": "5000", "clawback_days": "15"})
    assert response.status_code == 303, response.text
    ((_, version),) = rules.list_rules(session)
    assert version.tiers[1] == {"min_amount": 20_000_000, "max_amount": None, "level1_rate": "0.015",
                                "level2_rate": "0.003"}
    assert version.per_loan_cap_amount == 500_000 and version.clawback_days == 15


def test_referrer_page_shows_balance_and_reversal_works(client, session):
    agent = _earned(session)
    _, csrf = _as(client, session, "finance")
    page = client.get(f"/console/referral/referrers/{agent.id}")
    assert page.status_code == 200 and "¥100.00" in page.text
    entry = ledger.entries(session, agent.id)[-1]
    response = client.post(f"/console/referral/entries/{entry.id}/reverse",
                           data={"csrf_token": csrf, "referrer_id": str(agent.id), "reason": "退款"})
    assert response.status_code == 303
    again = client.post(f"/console/referral/entries/{entry.id}/reverse",
                        data={"csrf_token": csrf, "referrer_id": str(agent.id), "reason": "退款"})
    assert again.status_code == 409 and "不能重复冲回" in again.text
    assert ledger.balance(session, agent.id).available == 0


def test_withdrawal_approval_batch_and_export(client, session):
    agent = _earned(session)
    request = payouts.request_withdrawal(session, agent.id, 10_000)
    _, csrf = _as(client, session, "finance")
    assert client.post(f"/console/referral/withdrawals/{request.id}/approve",
                       data={"csrf_token": csrf}).status_code == 303
    assert client.post("/console/referral/batches", data={"csrf_token": csrf, "channel": "bank"}).status_code == 303
    session.refresh(request)
    batch_id = request.payout_batch_id
    export = client.get(f"/console/referral/batches/{batch_id}/export.xlsx")
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet.cell(2, 2).value == payouts.mask_name(agent.payee_name)
    assert client.post(f"/console/referral/batches/{batch_id}/paid", data={"csrf_token": csrf}).status_code == 303
    assert ledger.balance(session, agent.id).available == 0


def test_manual_attribution_form_refuses_a_self_referral(client, session):
    customer = make_customer(session)
    own = referrers.create_referrer(session, referrers.ReferrerInput(kind="customer", customer_id=customer.id))
    _, csrf = _as(client, session)
    response = client.post("/console/referral/attributions", data={
        "csrf_token": csrf, "customer_id": str(customer.id), "referrer_code": own.code})
    assert response.status_code == 409 and "不能推荐自己" in response.text


def test_report_and_statement_exports(client, session):
    agent = _earned(session)
    _as(client, session, "finance")
    report = client.get("/console/referral/reports?month=2026-03")
    assert report.status_code == 200 and "经纪人甲" in report.text
    xlsx = client.get("/console/referral/reports/export.xlsx?month=2026-03")
    assert load_workbook(io.BytesIO(xlsx.content)).active.cell(2, 1).value == "经纪人甲"
    statement = client.get(f"/console/referral/referrers/{agent.id}/statement.xlsx?month=2026-03")
    assert statement.status_code == 200


def test_api_lists_referrers_with_balances_and_refuses_withdrawal_approval_to_sales(client, session):
    agent = _earned(session)
    finance = make_staff(session, role="finance", data_scope="all")
    token = auth_service.issue_api_token(session, finance.id, "t")[0]
    rows = client.get("/api/v1/referral/referrers", headers=bearer(token)).json()
    mine = next(r for r in rows if r["id"] == agent.id)
    assert mine["balance"]["available"] == 10_000
    sales = make_staff(session, role="sales")
    sales_token = auth_service.issue_api_token(session, sales.id, "t")[0]
    assert client.get("/api/v1/referral/referrers", headers=bearer(sales_token)).status_code == 403


def test_api_rule_with_overlapping_tiers_is_422(client, session):
    manager = make_staff(session, role="manager", data_scope="all")
    token = auth_service.issue_api_token(session, manager.id, "t")[0]
    response = client.post("/api/v1/referral/rules", headers=bearer(token), json={
        "name": "r", "terms": {"basis": "principal", "tiers": [
            {"min_amount": 0, "max_amount": 100, "level1_rate": "0.01"},
            {"min_amount": 50, "max_amount": None, "level1_rate": "0.02"}]}})
    assert response.status_code == 422 and response.json()["code"] == "overlapping_tiers"


def test_api_rule_with_an_unknown_field_is_422(client, session):
    manager = make_staff(session, role="manager", data_scope="all")
    token = auth_service.issue_api_token(session, manager.id, "t")[0]
    response = client.post("/api/v1/referral/rules", headers=bearer(token),
                           json={"name": "r", "terms": {"basis": "principal", "levle1_rate": "0.01"}})
    assert response.status_code == 422 and "levle1_rate" in response.json()["message"]


def test_settings_form_accepts_a_percent_tax_rate(client, session):
    _, csrf = _as(client, session)
    response = client.post("/console/referral/config", data={
        "csrf_token": csrf, "lock_days": "90", "max_levels": "1", "payout_tax_rate": "20%", "payout_fee": "1.50"})
    assert response.status_code == 303
    config = referrers.get_config(session)
    session.refresh(config)
    assert (config.lock_days, config.max_levels, str(config.payout_tax_rate.normalize()), config.payout_fee_amount) == (
        90, 1, "0.2", 150)


def test_settings_form_refuses_three_levels(client, session):
    _, csrf = _as(client, session)
    response = client.post("/console/referral/config", data={"csrf_token": csrf, "max_levels": "3"})
    assert response.status_code == 422 and "1 或 2" in response.text
