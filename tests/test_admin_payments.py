"""Console pages of payments (支付订单, 代扣, 代扣授权, 对账) for finance: lists, the order page and its actions
(refund money held for review), a debit started for a loan, an authorisation recorded and revoked, a
reconciliation run and a difference resolved; sales staff are refused."""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core import clock
from lending.models import Repayment
from lending.payment_purposes import PURPOSE, current_bill
from payments import checkout, orders
from payments.models import PaymentOrder, ReconciliationItem, WithholdingAuthorization
from tests.servicing_support import make_loan
from tests.test_admin_support import console_client, log_in


def _paid_order(session, loan, pay_server, task_runner, notify=True):
    bill = current_bill(session, loan)
    order, _ = checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                    customer_id=loan.customer_id, amount=bill.amount, description="贷款还款",
                                    openid="o-openid-1")
    session.commit()
    pay_server.pay(order.out_trade_no, notify=notify)
    task_runner.drain()
    return order


def test_finance_sees_orders_and_refunds_a_late_payment(session, pay_server, task_runner):
    w, loan = make_loan(session)
    bill = current_bill(session, loan)
    order, _ = checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                    customer_id=loan.customer_id, amount=bill.amount, description="贷款还款",
                                    openid="o-openid-1")
    orders.cancel(session, order.id, reason="客户取消", staff_id=None)
    session.commit()
    pay_server.pay(order.out_trade_no)
    task_runner.drain()
    client = console_client()
    csrf = log_in(client, session, w.finance)
    listing = client.get("/console/payments?status=review")
    assert listing.status_code == 200 and order.out_trade_no in listing.text and "待复核" in listing.text
    page = client.get(f"/console/payments/orders/{order.id}")
    for text in ("订单关闭后仍收到付款", "原路退款", "状态记录", "支付通知"):
        assert text in page.text, text
    r = client.post(f"/console/payments/orders/{order.id}/refund", data={"csrf_token": csrf, "reason": ""})
    assert r.status_code == 422 and "请填写退款原因" in r.text
    r = client.post(f"/console/payments/orders/{order.id}/refund", data={"csrf_token": csrf, "reason": "订单已取消"})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(PaymentOrder, order.id).status == "refunded"
    assert "已退款" in client.get(f"/console/payments/orders/{order.id}").text


def test_finance_records_an_authorisation_starts_a_debit_and_revokes(session, pay_server, task_runner):
    w, loan = make_loan(session)
    client = console_client()
    csrf = log_in(client, session, w.finance)
    form = {"csrf_token": csrf, "customer_id": str(loan.customer_id), "account_no": "6222020200112233445",
            "holder_name": "王先生", "bank_name": "工商银行", "max_amount": "5,000.00", "scope": PURPOSE}
    r = client.post("/console/payments/authorizations", data={**form, "account_no": "12ab"})
    assert r.status_code == 422 and "银行卡号" in r.text
    assert client.post("/console/payments/authorizations", data=form).status_code == 303
    page = client.get("/console/payments/authorizations")
    assert "6222 **** **** 3445" in page.text and "6222020200112233445" not in page.text
    r = client.post("/console/payments/withholding", data={"csrf_token": csrf, "loan_id": str(loan.id)})
    assert r.status_code == 303
    task_runner.drain()
    order = session.scalar(select(PaymentOrder).where(PaymentOrder.method == "withholding"))
    assert order.status == "submitted" and order.out_trade_no in client.get("/console/payments/withholding").text
    assert client.post(f"/console/payments/orders/{order.id}/poll", data={"csrf_token": csrf}).status_code == 303
    session.expire_all()
    assert session.get(PaymentOrder, order.id).status == "succeeded"
    assert session.scalar(select(Repayment.channel).where(Repayment.external_reference == order.out_trade_no)) \
        == "withholding"
    auth = session.scalar(select(WithholdingAuthorization))
    r = client.post(f"/console/payments/authorizations/{auth.id}/revoke", data={"csrf_token": csrf, "reason": "客户要求"})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(WithholdingAuthorization, auth.id).status == "revoked"


def test_finance_runs_a_reconciliation_and_resolves_a_difference(session, pay_server, task_runner):
    clock.freeze(datetime.now(UTC))
    w, loan = make_loan(session)
    clock.freeze(datetime.now(UTC))
    order = _paid_order(session, loan, pay_server, task_runner, notify=False)  # notification lost
    day = clock.today()
    clock.freeze(datetime.now(UTC) + timedelta(days=1))
    client = console_client()
    csrf = log_in(client, session, w.finance)
    r = client.post("/console/payments/reconciliation", data={"csrf_token": csrf, "bill_date": day.isoformat()})
    assert r.status_code == 303
    report = client.get(r.headers["location"])
    assert "状态不符" in report.text and order.out_trade_no in report.text
    item = session.scalar(select(ReconciliationItem))
    r = client.post(f"/console/payments/reconciliation/items/{item.id}",
                    data={"csrf_token": csrf, "action": "poll", "note": "", "run_id": str(item.run_id)})
    assert r.status_code == 303
    session.expire_all()
    assert session.get(PaymentOrder, order.id).status == "succeeded"
    assert "已处理" in client.get(f"/console/payments/reconciliation/{item.run_id}").text


def test_a_bill_line_we_hold_no_order_for_is_resolved_with_the_pages_own_choice(session, pay_server):
    w, _ = make_loan(session)
    clock.freeze(datetime.now(UTC))
    day = clock.today()
    pay_server.admin("bill", {"op": "extra", "out_trade_no": "PUNKNOWN00000002", "amount": 5_000,
                              "date": day.isoformat()})
    clock.freeze(datetime.now(UTC) + timedelta(days=1))
    client = console_client()
    csrf = log_in(client, session, w.finance)
    r = client.post("/console/payments/reconciliation", data={"csrf_token": csrf, "bill_date": day.isoformat()})
    report = client.get(r.headers["location"]).text
    item = session.scalar(select(ReconciliationItem).where(ReconciliationItem.out_trade_no == "PUNKNOWN00000002"))
    assert item.kind == "missing_ours"
    form = report[report.index(f"/reconciliation/items/{item.id}"):]
    form = form[:form.index("</form>")]
    # the page offers (and pre-selects) only what works without an order of ours: accept with a note
    assert re.findall(r'<option value="(\w+)" (selected)?', form) == [("accept", "selected")]
    assert "required" in form
    url = f"/console/payments/reconciliation/items/{item.id}"
    r = client.post(url, data={"csrf_token": csrf, "action": "accept", "note": "", "run_id": str(item.run_id)})
    assert r.status_code == 422 and "请填写核实说明" in r.text
    r = client.post(url, data={"csrf_token": csrf, "action": "accept", "note": "商户平台手工收款，已核实",
                               "run_id": str(item.run_id)})
    assert r.status_code == 303
    session.expire_all()
    assert (session.get(ReconciliationItem, item.id).status, session.get(ReconciliationItem, item.id).note) == \
        ("resolved", "商户平台手工收款，已核实")


def test_sales_staff_cannot_open_payments(session):
    w, _ = make_loan(session)
    client = console_client()
    log_in(client, session, w.sales)
    assert client.get("/console/payments").status_code == 403
