"""Refunds (退款) of a reversed repayment: back through the WeChat Pay order it came by (over real HTTP to the
payment simulator), or recorded as paid out by finance; once, only after the reversal, nothing written when
refused."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from lending.models import Repayment, RepaymentRefund
from lending.payment_purposes import PURPOSE, current_bill
from lending.servicing import refunds, repayments
from lending.servicing.exceptions import RefundRefused, RepaymentInvalid
from payments import checkout
from payments.models import PaymentOrder, PaymentRefund
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, pay


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_a_reversed_bank_repayment_is_refunded_once_with_the_outgoing_slip(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    r = pay(session, w, loan, 50_000)
    with pytest.raises(RefundRefused, match="尚未冲正"):
        refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="串户", reference="OUT-1")
    repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="串户")
    with pytest.raises(RepaymentInvalid, match="退款流水号"):
        refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="串户退回")
    assert _count(session, RepaymentRefund) == 0
    row = refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="串户退回", reference="OUT-1")
    assert (row.route, row.amount, row.status, row.external_reference) == ("manual", 50_000, "succeeded", "OUT-1")
    with pytest.raises(RefundRefused, match="已于退款"):
        refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="again", reference="OUT-2")
    assert _count(session, RepaymentRefund) == 1
    assert session.scalar(select(AuditLog).where(AuditLog.action == "lending.repayment.refund")).after["amount"] \
        == 50_000


def test_a_reversed_wechat_repayment_goes_back_through_the_order(session, pay_server, task_runner):
    w, loan = make_loan(session)
    bill = current_bill(session, loan)
    order, _ = checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                    customer_id=loan.customer_id, amount=bill.amount, description="还款",
                                    openid="o-openid-1")
    session.commit()
    pay_server.pay(order.out_trade_no)
    task_runner.drain()
    session.expire_all()
    r = session.scalar(select(Repayment).where(Repayment.external_reference == order.out_trade_no))
    repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="客户重复支付")
    row = refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="原路退回")
    sent = session.get(PaymentRefund, row.payment_refund_id)
    assert (row.route, row.status, sent.refund_amount, sent.status) == ("payments", "succeeded", bill.amount,
                                                                        "succeeded")
    assert sent.order_id == order.id and row.external_reference == sent.out_refund_no
    assert pay_server.sim_order(order.out_trade_no)["trade_state"] == "REFUND"  # the simulator gave it back
    assert session.get(PaymentOrder, order.id).status == "succeeded"  # the money did come in and was applied
