"""Refunds (退款) of a reversed repayment: the money of a repayment booked by mistake goes back to the payer.

Only a repayment that was reversed (冲正: it no longer pays anything) is refunded, in full, once (unique on the
repayment in the database). The route follows the money:

- it came through ``payments`` (WeChat Pay or withholding 代扣, its reference the order's ``out_trade_no``):
  refunded back to where it came from, through :func:`payments.refunds.request` (the provider's refund;
  the simulator in development);
- otherwise (bank transfer, cash, other): finance pays it out and records the outgoing slip's reference here.

Finance, managers and administrators refund; audited and on the customer's timeline. Refused with the reason,
nothing written: a repayment not reversed, a waiver, a second refund, a manual refund without its reference.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from crm import customers
from crm.scope import Viewer
from lending.models import Loan, Repayment, RepaymentRefund
from lending.servicing.exceptions import RefundRefused, RepaymentInvalid
from lending.servicing.repayments import check_recorder, get_repayment, reversal_of
from payments import orders
from payments import refunds as payment_refunds

__all__ = ["PAYMENT_CHANNELS", "refund_of", "refund_reversed", "refunds"]

PAYMENT_CHANNELS = frozenset({"wechat", "withholding"})  # money that came through ``payments``


def refund_of(session: Session, repayment_id: int) -> RepaymentRefund | None:
    return session.scalar(select(RepaymentRefund).where(RepaymentRefund.repayment_id == repayment_id))


def refunds(session: Session, loan_id: int) -> list[RepaymentRefund]:
    return list(session.scalars(select(RepaymentRefund).where(RepaymentRefund.loan_id == loan_id)
                                .order_by(RepaymentRefund.id)))


def _through_payments(session: Session, repayment: Repayment) -> bool:
    return (repayment.channel in PAYMENT_CHANNELS and repayment.external_reference is not None
            and orders.by_out_trade_no(session, repayment.external_reference) is not None)


def refund_reversed(session: Session, repayment_id: int, *, viewer: Viewer | None, reason: str,
                    reference: str | None = None) -> RepaymentRefund:
    """Refund a reversed repayment in full (see the module docstring). Only flushes."""
    check_recorder(viewer)
    reason = (reason or "").strip()
    if not reason:
        raise RepaymentInvalid("请填写退款原因", field="reason")
    repayment = get_repayment(session, viewer, repayment_id)
    if repayment.kind != "repayment":
        raise RefundRefused("只有还款可以退款（减免和冲正记录没有收到钱）")
    if reversal_of(session, repayment.id) is None:
        raise RefundRefused(f"还款 #{repayment.id} 尚未冲正，仍在冲抵欠款，不能退款；请先冲正")
    if (done := refund_of(session, repayment.id)) is not None:
        raise RefundRefused(f"还款 #{repayment.id} 已于退款 #{done.id} 退款，不能重复退款")
    staff_id = viewer.staff_id if viewer else None
    via_payments = _through_payments(session, repayment)
    reference = (reference or "").strip()
    if not via_payments and not reference:
        raise RepaymentInvalid("请填写退款流水号（转出款项的银行回单号或凭证号，最多 64 位）", field="reference")
    if len(reference) > 64:
        raise RepaymentInvalid("退款流水号最多 64 位", field="reference")
    try:
        with session.begin_nested():
            if via_payments:
                assert repayment.external_reference is not None
                order = orders.by_out_trade_no(session, repayment.external_reference)
                if order is None:
                    raise RefundRefused(f"找不到还款 #{repayment.id} 的支付订单 {repayment.external_reference}")
                sent = payment_refunds.request(
                    session, order.id, amount=repayment.amount, reason=f"还款冲正退款：{reason}",
                    out_refund_no=f"R{order.out_trade_no[1:]}-L{repayment.id}",
                    refund_ref=f"lending_repayment:{repayment.id}", staff_id=staff_id)
                row = RepaymentRefund(loan_id=repayment.loan_id, repayment_id=repayment.id, amount=repayment.amount,
                                      route="payments", payment_refund_id=sent.id,
                                      external_reference=sent.out_refund_no,
                                      status="succeeded" if sent.status == "succeeded" else "submitted",
                                      reason=reason[:300], by_staff_id=staff_id, created_at=clock.now())
            else:
                row = RepaymentRefund(loan_id=repayment.loan_id, repayment_id=repayment.id, amount=repayment.amount,
                                      route="manual", external_reference=reference, status="succeeded",
                                      reason=reason[:300], by_staff_id=staff_id, created_at=clock.now())
            session.add(row)
            session.flush()
    except IntegrityError:
        raise RefundRefused(f"还款 #{repayment.id} 已退款，或退款流水号 {reference} 已被使用") from None
    audit.record(session, "lending.repayment.refund", entity_type="lending_loan", entity_id=repayment.loan_id,
                 after={"refund_id": row.id, "repayment_id": repayment.id, "amount": row.amount, "route": row.route,
                        "reference": row.external_reference, "status": row.status}, detail=reason)
    loan = session.get(Loan, repayment.loan_id)
    assert loan is not None
    customers.record_event(session, loan.customer_id, "lending_repayment_refunded",
                           f"贷款 #{loan.id} 已冲正的还款 #{repayment.id} 退款 {format_yuan(row.amount)}"
                           f"（{'原路退回' if row.route == 'payments' else '财务转出'} {row.external_reference}）",
                           actor_staff_id=staff_id, ref_type="lending_repayment_refund", ref_id=row.id)
    return row
