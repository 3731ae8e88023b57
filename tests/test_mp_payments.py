"""Mini-program repayment end to end: my bills, pay this bill (signed wx.requestPayment parameters from
the simulator over HTTP), the simulator's signed notification, the result; scoped to the customer;
withholding authorisation from the mini-program."""

import pytest
from sqlalchemy import select

from lending.models import Loan, Repayment
from miniprogram_api.models import MpSession
from tests.servicing_support import make_loan


@pytest.fixture
def mine(session, mp, pay_server):
    mp.login("alice")
    customer_id = session.scalar(select(MpSession.customer_id).order_by(MpSession.id.desc()))
    _, loan = make_loan(session)
    session.get(Loan, loan.id).customer_id = customer_id
    session.commit()
    return loan


def test_my_bill_paid_through_wechat_pay_is_booked(session, mp, mine, pay_server, task_runner):
    bills = mp.get("/bills").json()["bills"]
    assert [b["loan_id"] for b in bills] == [mine.id]
    bill = bills[0]
    paid = mp.post(f"/bills/{mine.id}/pay")
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["amount"] == bill["amount"] and body["pay_params"]["signType"] == "RSA"
    assert body["pay_params"]["package"].startswith("prepay_id=wx")
    again = mp.post(f"/bills/{mine.id}/pay").json()  # a double tap: the same order
    assert again["out_trade_no"] == body["out_trade_no"]
    result = mp.get(f"/payments/{body['out_trade_no']}").json()
    assert (result["status"], result["paid"]) == ("submitted", False)
    pay_server.pay(body["out_trade_no"])
    task_runner.drain()
    result = mp.get(f"/payments/{body['out_trade_no']}").json()
    assert (result["status"], result["paid"], result["message"]) == ("succeeded", True, "还款成功")
    assert session.scalar(select(Repayment.channel).where(Repayment.external_reference == body["out_trade_no"])) \
        == "wechat"


def test_the_result_page_polls_when_the_notification_is_late(session, mp, mine, pay_server):
    body = mp.post(f"/bills/{mine.id}/pay").json()
    pay_server.pay(body["out_trade_no"], notify=False)
    result = mp.get(f"/payments/{body['out_trade_no']}").json()
    assert result["status"] == "succeeded"


def test_another_customers_bill_and_payment_are_not_found(session, mp, mp2, mine, pay_server):
    body = mp.post(f"/bills/{mine.id}/pay").json()
    mp2.login("bob")
    assert mp2.get("/bills").json()["bills"] == []
    assert mp2.post(f"/bills/{mine.id}/pay").status_code == 404
    assert mp2.get(f"/payments/{body['out_trade_no']}").status_code == 404


def test_withholding_authorisation_from_the_mini_program(session, mp, mine, pay_server):
    r = mp.post("/withholding/authorizations", {"account_no": "6222 0202 0011 2233 445", "holder_name": "王先生",
                                                "bank_name": "工商银行", "max_amount": "5000.00"})
    assert r.status_code == 200, r.text
    auth = r.json()
    assert auth["account"] == "6222 **** **** 3445" and auth["scope"] == ["lending.installment"]
    bad = mp.post("/withholding/authorizations", {"account_no": "12", "holder_name": "王先生", "bank_name": "工商银行",
                                                  "max_amount": "5000.00"})
    assert bad.status_code == 422 and "银行卡号" in bad.json()["message"]
    revoked = mp.post(f"/withholding/authorizations/{auth['id']}/revoke", {"reason": "不再需要"}).json()
    assert revoked["status"] == "revoked"
