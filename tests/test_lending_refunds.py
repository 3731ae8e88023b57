"""Refunds (退款) of a reversed repayment: back through the WeChat Pay order it came by (over real HTTP to the
payment simulator), or recorded as paid out by finance; once, only after the reversal, nothing written when
refused."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from core.errors import PermissionDenied
from lending.models import Repayment, RepaymentRefund
from lending.payment_purposes import PURPOSE, current_bill
from lending.servicing import refunds, repayments
from lending.servicing.exceptions import Overpayment, RefundRefused, RepaymentInvalid
from payments import checkout
from payments.models import PaymentOrder, PaymentRefund
from tests.lending_flow_support import V
from tests.servicing_support import make_loan, on, pay, rows


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


def _paid_by_wechat(session, pay_server, task_runner, loan, amount):
    bill = current_bill(session, loan)
    order, _ = checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                    customer_id=loan.customer_id, amount=amount, description="还款",
                                    openid="o-openid-1")
    session.commit()
    pay_server.pay(order.out_trade_no)
    task_runner.drain()
    session.expire_all()
    return order, session.scalar(select(Repayment).where(Repayment.external_reference == order.out_trade_no))


def test_a_failed_refund_of_a_reversed_repayment_is_retried_and_never_refunded_twice(session, pay_server,
                                                                                    task_runner):
    w, loan = make_loan(session)
    order, r = _paid_by_wechat(session, pay_server, task_runner, loan, current_bill(session, loan).amount)
    repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="客户重复支付")
    session.commit()
    pay_server.admin("refund_next", {"outcomes": ["processing"]})
    first = refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="原路退回")
    session.commit()
    assert first.status == "submitted"
    with pytest.raises(RefundRefused, match="处理中"):  # under way: no second one
        refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="again")
    session.rollback()
    assert pay_server.admin("refund_settle", {"out_refund_no": first.external_reference, "outcome": "abnormal"}
                            )["deliveries"] == [204]
    task_runner.drain()
    session.expire_all()
    assert session.get(RepaymentRefund, first.id).status == "failed"
    retry = refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="原路再退")
    session.commit()
    assert (retry.status, retry.amount) == ("succeeded", r.amount)
    assert retry.external_reference != first.external_reference  # a new refund number, never a failed one reused
    with pytest.raises(RefundRefused, match="已于退款"):
        refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="third")
    session.rollback()
    live = session.scalar(select(func.count()).select_from(RepaymentRefund).where(
        RepaymentRefund.repayment_id == r.id, RepaymentRefund.status != "failed"))
    assert live == 1
    assert session.scalar(select(func.sum(PaymentRefund.refund_amount)).where(
        PaymentRefund.order_id == order.id, PaymentRefund.status == "succeeded")) == r.amount


def test_the_database_refuses_a_second_live_refund_of_a_reversed_repayment(session):
    from sqlalchemy.exc import IntegrityError

    from core import clock

    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    r = pay(session, w, loan, 50_000)
    repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="串户")
    refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="串户退回", reference="OUT-1")
    with pytest.raises(IntegrityError), session.begin_nested():  # past the service's check: the index decides
        session.add(RepaymentRefund(loan_id=loan.id, repayment_id=r.id, kind="reversed", amount=50_000,
                                    route="manual", external_reference="OUT-2", status="submitted", reason="x",
                                    created_at=clock.now()))
        session.flush()
    session.add(RepaymentRefund(loan_id=loan.id, repayment_id=r.id, kind="reversed", amount=50_000, route="manual",
                                external_reference="OUT-3", status="failed", reason="a failed one is history",
                                created_at=clock.now()))
    session.flush()


def test_an_overpayment_is_kept_as_credit_and_refunded_in_part_then_the_rest(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    due = repayments.payable(session, loan)
    with pytest.raises(Overpayment):
        pay(session, w, loan, due + 30_000)
    r = pay(session, w, loan, due + 30_000, keep_excess=True)
    assert refunds.loan_credit(session, loan.id) == 30_000
    assert sum(x.paid_amount for x in rows(session, loan)) == due  # only what was payable is written off
    with pytest.raises(RefundRefused, match="超过"):
        refunds.refund_overpayment(session, r.id, viewer=V(w.finance), amount=30_001, reason="多付", reference="O-1")
    with pytest.raises(RepaymentInvalid, match="退款流水号"):
        refunds.refund_overpayment(session, r.id, viewer=V(w.finance), amount=10_000, reason="多付")
    with pytest.raises(RepaymentInvalid, match="大于 0"):
        refunds.refund_overpayment(session, r.id, viewer=V(w.finance), amount=0, reason="多付", reference="O-1")
    assert _count(session, RepaymentRefund) == 0
    part = refunds.refund_overpayment(session, r.id, viewer=V(w.finance), amount=10_000, reason="多付部分退回",
                                      reference="O-1")
    assert (part.kind, part.route, part.amount, part.status) == ("overpayment", "manual", 10_000, "succeeded")
    assert refunds.loan_credit(session, loan.id) == 20_000  # the rest stays as credit
    refunds.refund_overpayment(session, r.id, viewer=V(w.finance), amount=20_000, reason="余款退回", reference="O-2")
    assert refunds.loan_credit(session, loan.id) == 0
    with pytest.raises(RefundRefused, match="没有溢缴款"):
        refunds.refund_overpayment(session, r.id, viewer=V(w.finance), amount=1, reason="again", reference="O-3")
    with pytest.raises(RefundRefused, match="尚未冲正"):  # the written-off part still pays the bill
        refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="x", reference="O-4")
    # reversed afterwards: its full refund is what is left of the money, never the refunded credit again
    repayments.reverse_repayment(session, r.id, viewer=V(w.finance), reason="串户")
    whole = refunds.refund_reversed(session, r.id, viewer=V(w.finance), reason="串户退回", reference="O-5")
    assert whole.amount == due
    with pytest.raises(PermissionDenied):
        refunds.refund_overpayment(session, r.id, viewer=V(w.sales), amount=1, reason="x", reference="O-6")


def test_an_overpayment_through_wechat_is_credit_refunded_in_part_back_through_the_order(session, pay_server,
                                                                                        task_runner):
    w, loan = make_loan(session)
    bill = current_bill(session, loan)
    pay(session, w, loan, 10_000)  # part of the bill paid at the counter meanwhile
    session.commit()
    order, r = _paid_by_wechat(session, pay_server, task_runner, loan, bill.amount)
    assert r is not None and refunds.loan_credit(session, loan.id) == 10_000  # booked, the excess kept as credit
    row = refunds.refund_overpayment(session, r.id, viewer=V(w.finance), amount=4_000, reason="多付退回")
    session.commit()
    sent = session.get(PaymentRefund, row.payment_refund_id)
    assert (row.route, row.status, sent.refund_amount, sent.order_id) == ("payments", "succeeded", 4_000, order.id)
    assert refunds.loan_credit(session, loan.id) == 6_000


def test_a_reversal_before_a_credit_bearing_repayment_writes_its_credit_off_first(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    first = pay(session, w, loan, repayments.payable(session, loan))
    on(date(2026, 12, 24))
    later = pay(session, w, loan, 50_000, keep_excess=True)  # the first bill is paid: all of it is credit
    refunds.refund_overpayment(session, later.id, viewer=V(w.finance), amount=20_000, reason="退一部分",
                               reference="O-7")
    assert refunds.loan_credit(session, loan.id) == 30_000
    repayments.reverse_repayment(session, first.id, viewer=V(w.finance), reason="串户")
    # the later payment's remaining 30,000 now pays the reopened bill; the refunded 20,000 is never counted
    assert refunds.loan_credit(session, loan.id) == 0
    assert sum(x.paid_amount for x in rows(session, loan)) == 30_000
