"""Refunds (退款): money paid back through the provider, and the provider's answer applied once.

Two kinds, one table (``payment_refund``, one ``out_refund_no`` each, unique):

- money held for review (a late or mismatched payment), refunded in full by a person
  (:func:`refund_held`); on success the order becomes ``refunded``;
- applied money its owner pays back (a finance deposit refunded 原路退回): :func:`request` with the
  owner's ``refund_ref``; the order keeps its status, the refunds are its rows here, and never more than
  was paid is refunded (the order's row is locked while the sum is checked).

The provider answers a refund request with SUCCESS (done at once) or PROCESSING; the final answer comes
by the signed refund notification (``REFUND.SUCCESS`` / ``REFUND.ABNORMAL`` / ``REFUND.CLOSED``, through
the same inbox as the payment notifications) or by a poll (:func:`poll`). Every answer goes through
:func:`record_result` under the refund's row lock: the first final answer is applied, the purpose's
``on_refund`` called in the same transaction; the same answer again (a re-delivery, a poll after the
notification) changes nothing. An answer for an unknown ``out_refund_no`` or with another amount is refused.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from payments import config, orders, purposes
from payments.exceptions import OrderNotFound, OrderStateConflict, PaymentInvalid
from payments.models import PaymentOrder, PaymentRefund
from payments.provider import RefundResult

log = logging.getLogger(__name__)

FINAL_OK = "SUCCESS"
FINAL_FAILED = frozenset({"CLOSED", "ABNORMAL"})
REFUNDABLE = frozenset({"succeeded", "reconciled"})


class RefundNotFound(OrderNotFound):
    code = "payment_refund_unknown"
    message = "退款单不存在"


def _notice_time(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def notice_result(data: dict) -> tuple[RefundResult, int | None, datetime | None]:
    """A decrypted refund notification's resource: (result, refunded amount in fen, success time)."""
    amount = (data.get("amount") or {}).get("refund")
    return (RefundResult(out_refund_no=str(data.get("out_refund_no", "")), status=str(data.get("refund_status", "")),
                         refund_id=data.get("refund_id") or None),
            amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            _notice_time(data.get("success_time")))


def refunded_total(session: Session, order_id: int) -> int:
    """Refunds of the order not failed (done or under way), fen."""
    return int(session.scalar(select(func.coalesce(func.sum(PaymentRefund.refund_amount), 0)).where(
        PaymentRefund.order_id == order_id, PaymentRefund.status != "failed")) or 0)


def _submit(session: Session, order: PaymentOrder, row: PaymentRefund, reason: str) -> PaymentRefund:
    """Ask the provider (idempotent on out_refund_no) and apply a synchronous final answer."""
    session.add(row)
    session.flush()
    result = config.provider().refund(out_refund_no=row.out_refund_no, out_trade_no=order.out_trade_no,
                                      refund_amount=row.refund_amount, total_amount=order.total_amount,
                                      reason=reason)
    row.provider_refund_id = result.refund_id
    session.flush()
    if result.status == FINAL_OK or result.status in FINAL_FAILED:
        record_result(session, result, source="staff")
    return row


def request(session: Session, order_id: int, *, amount: int, reason: str, out_refund_no: str, refund_ref: str,
            staff_id: int | None) -> PaymentRefund:
    """Refund part or all of an applied payment for its owner (``refund_ref`` names the owner's record).

    Idempotent on ``out_refund_no``: asking again returns the same refund. A provider that cannot be
    reached raises (the caller's transaction rolls back; asking again with the same number is safe)."""
    existing = session.scalar(select(PaymentRefund).where(PaymentRefund.out_refund_no == out_refund_no))
    if existing is not None:
        return existing
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentInvalid("退款金额必须是大于 0 的整数（分）", field="amount")
    reason = (reason or "").strip()
    if not reason:
        raise PaymentInvalid("请填写退款原因", field="reason")
    order = orders.get(session, order_id, for_update=True)
    if order.status not in REFUNDABLE or order.applied_at is None:
        raise OrderStateConflict(f"支付订单 {order.out_trade_no} 未入账，不能原路退款")
    paid = order.paid_amount or order.total_amount
    left = paid - refunded_total(session, order.id)
    if amount > left:
        raise PaymentInvalid(f"退款金额 {format_yuan(amount)} 超过该笔付款可退金额 {format_yuan(max(left, 0))}",
                             field="amount")
    row = PaymentRefund(order_id=order.id, out_refund_no=out_refund_no, refund_amount=amount, reason=reason[:80],
                        refund_ref=refund_ref[:64], status="submitted", by_staff_id=staff_id, created_at=clock.now())
    _submit(session, order, row, reason)
    audit.record(session, "payments.refund.requested", entity_type="payment_order", entity_id=order.id,
                 after={"out_refund_no": row.out_refund_no, "amount": amount, "status": row.status,
                        "ref": refund_ref}, detail=reason)
    return row


def refund_held(session: Session, order_id: int, *, reason: str, staff_id: int | None) -> PaymentRefund:
    """Refund money held for review (a late or mismatched payment) in full."""
    reason = (reason or "").strip()
    if not reason:
        raise PaymentInvalid("请填写退款原因", field="reason")
    order = orders.get(session, order_id, for_update=True)
    if order.status != "review" or order.applied_at is not None:
        raise OrderStateConflict("只有待复核且未入账的付款可以退款")
    amount = order.paid_amount or order.total_amount
    row = PaymentRefund(order_id=order.id, out_refund_no="R" + order.out_trade_no[1:], refund_amount=amount,
                        reason=reason[:80], status="submitted", by_staff_id=staff_id, created_at=clock.now())
    _submit(session, order, row, reason)
    audit.record(session, "payments.order.refund", entity_type="payment_order", entity_id=order.id,
                 after={"out_refund_no": row.out_refund_no, "amount": amount, "status": row.status}, detail=reason)
    session.flush()
    return row


def record_result(session: Session, result: RefundResult, *, source: str, amount: int | None = None,
                  success_at: datetime | None = None) -> bool:
    """Apply the provider's answer about a refund. Idempotent; True when it changed something."""
    row = session.scalar(select(PaymentRefund).where(PaymentRefund.out_refund_no == result.out_refund_no)
                         .with_for_update().execution_options(populate_existing=True))
    if row is None:
        raise RefundNotFound(f"没有退款单号为 {result.out_refund_no} 的退款")
    if amount is not None and amount != row.refund_amount:
        raise PaymentInvalid(f"退款通知金额 {format_yuan(amount)} 与退款单 {format_yuan(row.refund_amount)} 不符",
                             field="amount", code="payment_refund_amount_differs")
    if row.status != "submitted" or (result.status != FINAL_OK and result.status not in FINAL_FAILED):
        return False  # already final, or still processing
    ok = result.status == FINAL_OK
    row.status = "succeeded" if ok else "failed"
    row.finished_at = success_at or clock.now()
    row.provider_status = result.status
    row.provider_refund_id = row.provider_refund_id or result.refund_id
    order = orders.get(session, row.order_id, for_update=True)
    if row.refund_ref is None:  # money held for review
        if ok and order.status == "review":
            orders.move(session, order, "refunded", source=source, reason=row.reason, staff_id=row.by_staff_id)
    else:
        handler = purposes.get(order.purpose).on_refund
        if handler is not None:
            handler(session, purposes.RefundOutcome(
                refund_id=row.id, out_refund_no=row.out_refund_no, refund_ref=row.refund_ref, order_id=order.id,
                out_trade_no=order.out_trade_no, obligation_ref=order.obligation_ref, amount=row.refund_amount,
                succeeded=ok, provider_status=result.status, finished_at=row.finished_at))
    session.flush()
    audit.record(session, "payments.refund.finished", entity_type="payment_order", entity_id=order.id,
                 after={"out_refund_no": row.out_refund_no, "status": row.status, "source": source})
    if not ok:
        log.warning("refund %s ended %s", row.out_refund_no, result.status)
    return True


def poll(session: Session, refund_id: int) -> bool:
    """Ask the provider about a refund under way and record the answer."""
    row = session.get(PaymentRefund, refund_id)
    if row is None:
        raise RefundNotFound()
    if row.status != "submitted":
        return False
    return record_result(session, config.provider().query_refund(row.out_refund_no), source="poll")


def due_for_poll(session: Session, *, older_than: timedelta, limit: int = 200) -> list[int]:
    """Refunds under way for longer than ``older_than`` (their notification may be lost)."""
    return list(session.scalars(select(PaymentRefund.id).where(
        PaymentRefund.status == "submitted", PaymentRefund.created_at < clock.now() - older_than)
        .order_by(PaymentRefund.id).limit(limit)))
