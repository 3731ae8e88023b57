"""The demo walkthrough of docs/miniprogram-api.md ("A repayment on the demo data"), step by step against the
data `scrm seed-demo` leaves: the seeded borrower logs in with the simulator's code, sees the bill due, pays
it in the payment simulator, sees it paid, and the repayment is on the console's loan page."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from core import clock, plugins
from crm.models import Customer, Staff
from lending.models import Loan, Repayment
from miniprogram_api import demo as mp_demo
from tests.test_admin_support import console_client, log_in


def test_the_demo_borrower_repays_a_bill_from_the_mini_program_end_to_end(session, mp, pay_server, task_runner):
    clock.freeze(datetime.now(UTC))
    lines = [line for module in plugins.load_all("demo") for line in module.seed(session) or []]
    assert any(line.startswith("演示小程序还款：") for line in lines), lines
    session.commit()

    # POST /mp/login {"code": "demo-borrower:1"}: the seeded borrower, not a new customer
    login = mp.client.post("/mp/login", json={"code": f"{mp_demo.DEMO_BORROWER}:1"})
    assert login.status_code == 200, login.text
    mp.token = login.json()["token"]
    borrower = session.scalar(select(Customer).where(Customer.wechat_openid.is_not(None)))
    assert session.scalar(select(Loan.id).where(Loan.customer_id == borrower.id)) is not None

    # GET /mp/bills: a bill due
    bills = mp.get("/bills").json()["bills"]
    assert len(bills) >= 1, bills
    bill = bills[0]
    loan = session.get(Loan, bill["loan_id"])
    assert loan.customer_id == borrower.id

    # POST /mp/bills/{loan}/pay: the order and the wx.requestPayment parameters
    order = mp.post(f"/bills/{loan.id}/pay").json()
    assert order["status"] == "submitted" and order["amount"] == bill["amount"]
    assert order["pay_params"]["package"].startswith("prepay_id=")
    assert mp.get(f"/payments/{order['out_trade_no']}").json()["message"] == "支付结果确认中"

    # pay it in the payment simulator (its page's 支付成功 posts /_pay_sim/_admin/pay): notified at once
    assert pay_server.pay(order["out_trade_no"])["deliveries"] == [204]
    task_runner.drain()  # the notification's processing (the worker, under `make run`)

    # GET /mp/payments/{out_trade_no}: paid
    paid = mp.get(f"/payments/{order['out_trade_no']}").json()
    assert (paid["status"], paid["message"]) == ("succeeded", "还款成功")
    assert loan.id not in [b["loan_id"] for b in mp.get("/bills").json()["bills"]]  # nothing more due today

    # the repayment is on the loan's console page
    session.expire_all()
    repayment = session.scalar(select(Repayment).where(Repayment.external_reference == order["out_trade_no"]))
    assert repayment is not None and repayment.loan_id == loan.id and repayment.channel == "wechat"
    client = console_client()
    log_in(client, session, session.scalar(select(Staff).where(Staff.username == "finance")))
    page = client.get(f"/console/lending/loans/{loan.id}")
    assert page.status_code == 200 and order["out_trade_no"] in page.text
