"""The mini-program's commission endpoints: balance and entries derived from the ledger, withdrawal
refused above the withdrawable balance with nothing written."""

from datetime import timedelta

from sqlalchemy import func, select

from referral import ledger
from referral.models import Referrer, WithdrawalRequest
from tests.referral_support import T0, principal_rule, referred_customer
from tests.test_referral_ledger import disburse


def withdrawals(session):
    return session.scalar(select(func.count()).select_from(WithdrawalRequest))


def earn(session, mp, principal=1_000_000):
    """Someone the logged-in customer referred takes a loan; the commission (1%) is confirmed."""
    code = mp.get("/referral").json()["code"]
    referrer = session.scalar(select(Referrer).where(Referrer.code == code))
    principal_rule(session, level2="0")
    customer_id = referred_customer(session, referrer)
    disburse(session, customer_id, principal, at=T0)
    ledger.confirm_due(session, T0 + timedelta(days=31))
    return referrer


def test_a_new_user_has_a_zero_balance_and_cannot_withdraw(session, mp):
    mp.login("carol")
    body = mp.get("/referral/commission").json()
    assert body["balance"]["withdrawable"] == "0.00" and body["entries"] == []
    response = mp.post("/referral/withdrawals", {"amount": "10.00"})
    assert response.status_code == 409 and "佣金" in response.json()["message"]
    assert withdrawals(session) == 0


def test_balance_and_entries_follow_the_ledger(session, mp):
    mp.login("dave")
    earn(session, mp)
    body = mp.get("/referral/commission").json()
    assert body["balance"]["available"] == "100.00" and body["balance"]["withdrawable"] == "100.00"
    assert {e["kind"] for e in body["entries"]} >= {"accrued", "confirmed"}


def test_a_withdrawal_above_the_balance_is_refused_and_writes_nothing(session, mp):
    mp.login("erin")
    earn(session, mp)
    response = mp.post("/referral/withdrawals", {"amount": "100.01"})
    assert 400 <= response.status_code < 500 and response.json()["message"]
    assert withdrawals(session) == 0


def test_a_withdrawal_needs_a_payee_account(session, mp):
    mp.login("hank")
    earn(session, mp)
    response = mp.post("/referral/withdrawals", {"amount": "10.00"})
    assert response.status_code == 422 and "收款账户" in response.json()["message"]
    assert withdrawals(session) == 0


def test_the_payee_account_is_stored_sealed_and_shown_masked(session, mp):
    mp.login("ivy")
    response = mp.client.put("/mp/referral/payee", headers=mp.headers, json={
        "name": "王小明", "channel": "bank", "bank": "招商银行", "account": "6225880212345678"})
    assert response.status_code == 200, response.text
    assert "6225880212345678" not in response.text
    referrer = session.scalar(select(Referrer).where(Referrer.code == mp.get("/referral").json()["code"]))
    assert "6225880212345678" not in (referrer.payee_account_enc or "")


def test_a_withdrawal_within_the_balance_is_held(session, mp):
    mp.login("frank")
    earn(session, mp)
    mp.client.put("/mp/referral/payee", headers=mp.headers, json={
        "name": "王小明", "channel": "wechat", "account": "wxid_frank01"})
    response = mp.post("/referral/withdrawals", {"amount": "60.00"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "requested"
    body = mp.get("/referral/commission").json()
    assert (body["balance"]["held"], body["balance"]["withdrawable"]) == ("60.00", "40.00")
    assert [w["amount"] for w in body["withdrawals"]] == ["60.00"]


def test_a_float_amount_is_refused_in_chinese(session, mp):
    mp.login("gina")
    response = mp.post("/referral/withdrawals", {"amount": 10.5})
    assert response.status_code == 422 and response.json()["message"]
    assert withdrawals(session) == 0


def test_the_endpoints_need_a_login(session, mp):
    assert mp.get("/referral/commission").status_code == 401
    assert mp.post("/referral/withdrawals", {"amount": "1.00"}).status_code == 401
