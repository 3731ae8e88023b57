"""A mini-program repayment end to end over real HTTP: JSAPI order at the simulator, signed notification
to /payments/wechat/notify, inbox, task, repayment booked through lending's servicing; duplicates,
replays, forgeries, stale notifications, polls, late and mismatched payments."""

import pytest
from sqlalchemy import func, select

from core.errors import AppError
from lending.models import Repayment
from lending.payment_purposes import PURPOSE, current_bill
from payments import checkout, orders, purposes, refunds
from payments.models import PaymentNonce, PaymentNotification, PaymentOrder, PaymentTransition
from tests.servicing_support import make_loan


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def loan(session):
    _, loan = make_loan(session)
    return loan


def _start(session, loan, openid="o-openid-1"):
    bill = current_bill(session, loan)
    order, params = checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                         customer_id=loan.customer_id, amount=bill.amount,
                                         description=f"贷款 #{loan.id} 第 {bill.period} 期还款", openid=openid)
    session.commit()
    return bill, order, params


def test_a_paid_bill_is_booked_as_a_repayment_once(session, loan, pay_server, task_runner):
    bill, order, params = _start(session, loan)
    assert order.status == "submitted" and params["package"] == f"prepay_id={order.prepay_id}"
    assert pay_server.pay(order.out_trade_no)["deliveries"] == [204]
    assert _count(session, PaymentNotification) == 1
    task_runner.drain()
    session.expire_all()
    order = session.get(PaymentOrder, order.id)
    assert order.status == "succeeded" and order.paid_amount == bill.amount
    repayment = session.scalar(select(Repayment).where(Repayment.external_reference == order.out_trade_no))
    assert repayment is not None and repayment.amount == bill.amount and repayment.channel == "wechat"
    assert order.applied_ref == f"lending_repayment:{repayment.id}"
    assert [t.to_status for t in orders.transitions(session, order.id)] == ["created", "submitted", "succeeded"]


def test_redelivery_replay_and_poll_change_nothing(session, loan, pay_server, task_runner):
    _, order, _ = _start(session, loan)
    pay_server.pay(order.out_trade_no)
    task_runner.drain()
    nonces = _count(session, PaymentNonce)
    assert pay_server.notify(order.out_trade_no, copies=2) == [204, 204]  # WeChat's re-deliveries: same id
    assert pay_server.notify(order.out_trade_no, replay=True) == [204, 204]  # the same request again: success
    assert _count(session, PaymentNotification) == 1
    assert _count(session, PaymentNonce) == nonces + 3  # the identical request stored nothing twice
    assert [name for name, _, _ in task_runner.sent] == []  # nothing new to process
    assert orders.poll(session, order.id) is False
    assert session.scalar(select(func.count()).select_from(Repayment)
                          .where(Repayment.external_reference == order.out_trade_no)) == 1


def test_a_used_nonce_with_another_body_is_refused_and_nothing_is_stored(session, loan, pay_server, task_runner):
    _, order, _ = _start(session, loan)
    pay_server.pay(order.out_trade_no, notify=False)
    # the first request is stored; a correctly signed request with another body (a fresh notification id)
    # under the same nonce and timestamp is a replay
    assert pay_server.notify(order.out_trade_no, reuse_nonce=True) == [204, 403]
    assert _count(session, PaymentNotification) == 1
    assert _count(session, PaymentNonce) == 1
    task_runner.drain()
    assert session.scalar(select(func.count()).select_from(Repayment)
                          .where(Repayment.external_reference == order.out_trade_no)) == 1


@pytest.mark.parametrize("forge", ["signature", "stale", "serial", "body", "resource"])
def test_forged_or_stale_notifications_are_refused_and_nothing_is_stored(session, loan, pay_server, task_runner,
                                                                        forge):
    _, order, _ = _start(session, loan)
    pay_server.pay(order.out_trade_no, notify=False)
    before = (_count(session, PaymentNotification), _count(session, PaymentNonce))
    assert pay_server.notify(order.out_trade_no, forge=forge) == [401]
    assert (_count(session, PaymentNotification), _count(session, PaymentNonce)) == before
    task_runner.drain()
    assert session.get(PaymentOrder, order.id).status == "submitted"


def test_a_lost_notification_is_made_good_by_the_poll(session, loan, pay_server, task_runner):
    _, order, _ = _start(session, loan)
    pay_server.pay(order.out_trade_no, notify=False)
    assert orders.poll(session, order.id) is True
    assert order.status == "succeeded" and order.applied_ref.startswith("lending_repayment:")
    assert [t.source for t in orders.transitions(session, order.id)][-1] == "poll"
    pay_server.notify(order.out_trade_no)  # the notification arrives after all: nothing new
    task_runner.drain()
    assert session.scalar(select(func.count()).select_from(Repayment)
                          .where(Repayment.external_reference == order.out_trade_no)) == 1


def test_paying_the_same_bill_twice_reuses_the_open_attempt(session, loan, pay_server):
    _, first, _ = _start(session, loan)
    _, again, _ = _start(session, loan)
    assert again.id == first.id and again.out_trade_no == first.out_trade_no
    _, other_payer, _ = _start(session, loan, openid="o-openid-2")
    assert other_payer.attempt_no == 2 and session.get(PaymentOrder, first.id).status == "closed"
    assert pay_server.sim_order(first.out_trade_no)["trade_state"] == "CLOSED"


def test_a_payment_after_the_order_was_closed_is_held_for_review_then_refunded(session, loan, pay_server,
                                                                                task_runner):
    _, order, _ = _start(session, loan)
    orders.cancel(session, order.id, reason="客户取消", staff_id=None)
    session.commit()
    assert order.status == "closed"
    pay_server.pay(order.out_trade_no)  # the money arrives anyway (the close raced the payment)
    task_runner.drain()
    session.expire_all()
    order = session.get(PaymentOrder, order.id)
    assert order.status == "review" and "关闭" in order.review_reason and order.applied_at is None
    assert _count(session, Repayment) == 0
    refund = refunds.refund_held(session, order.id, reason="订单已取消，原路退回", staff_id=None)
    assert refund.status == "succeeded" and order.status == "refunded"
    assert pay_server.sim_order(order.out_trade_no)["trade_state"] == "REFUND"


def test_a_cancel_that_finds_the_order_paid_records_the_payment(session, loan, pay_server):
    _, order, _ = _start(session, loan)
    pay_server.pay(order.out_trade_no, notify=False)
    orders.cancel(session, order.id, reason="客户取消", staff_id=None)
    assert order.status == "succeeded" and order.applied_at is not None


def test_a_payment_of_another_amount_is_held_for_review(session, loan, pay_server, task_runner):
    bill, order, _ = _start(session, loan)
    pay_server.pay(order.out_trade_no, amount=bill.amount - 1)
    task_runner.drain()
    session.expire_all()
    order = session.get(PaymentOrder, order.id)
    assert order.status == "review" and "不符" in order.review_reason
    assert _count(session, Repayment) == 0


def test_money_the_owner_refuses_is_held_and_can_be_applied_after_review(session, pay_server, task_runner):
    refusing = {"on": True}

    def apply(session, settlement):
        if refusing["on"]:
            raise AppError("账户已冻结", code="test_frozen")
        return f"test:{settlement.out_trade_no}"

    purposes.register("test.refusing", "测试", apply)
    order, _ = checkout.start_jsapi(session, purpose="test.refusing", obligation_ref="x:1", customer_id=None,
                                    amount=100, description="测试", openid="o-openid-1")
    session.commit()
    pay_server.pay(order.out_trade_no)
    task_runner.drain()
    session.expire_all()
    order = session.get(PaymentOrder, order.id)
    assert order.status == "review" and "账户已冻结" in order.review_reason
    refusing["on"] = False
    orders.apply_reviewed(session, order.id, staff_id=None, note="已解冻")
    assert order.status == "succeeded" and order.applied_ref == f"test:{order.out_trade_no}"
    sources = [(t.from_status, t.to_status) for t in session.scalars(
        select(PaymentTransition).where(PaymentTransition.order_id == order.id).order_by(PaymentTransition.id))]
    assert sources[-3:] == [("submitted", "succeeded"), ("succeeded", "review"), ("review", "succeeded")]
