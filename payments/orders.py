"""Payment orders: one row (one ``out_trade_no``) per obligation attempt, and their state machine.

States::

    created ─► submitted ─► succeeded ─► reconciled
        │          │   ╲         ╲
        │          │    ╲         ► review ─► succeeded (applied after review) | refunded
        │          ▼     ► failed (withholding: a new attempt on the retry schedule)
        └────────► closed ──(paid after all)──► review
                   unknown (no readable answer) ─► succeeded | failed | closed

Every transition is checked against :data:`TRANSITIONS` and recorded (``payment_transition``: from, to,
source, staff, reason). Results come from notifications and from polls through one function,
:func:`record_result`, under the order's row lock: the same result twice changes nothing. A payment that
arrives after the order was closed, or whose amount differs, or whose application the owning domain
refuses, is held for review (``review``): refunded or applied by a person, never lost.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import AppError
from core.money import format_yuan
from payments import config, purposes
from payments.exceptions import (
    OpenAttemptExists,
    OrderNotFound,
    OrderStateConflict,
    PaymentInvalid,
    ProviderRefused,
)
from payments.models import OPEN_STATUSES, PaymentOrder, PaymentTransition
from payments.provider import FAILED_STATES, PAID_STATES, TradeResult

log = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"submitted", "closed", "failed", "unknown"}),
    "submitted": frozenset({"succeeded", "failed", "closed", "unknown", "review"}),
    "unknown": frozenset({"submitted", "succeeded", "failed", "closed", "review"}),
    "failed": frozenset({"succeeded", "review"}),
    "closed": frozenset({"review"}),
    "succeeded": frozenset({"reconciled", "review"}),
    "review": frozenset({"succeeded", "refunded"}),
    "reconciled": frozenset(),
    "refunded": frozenset(),
}
OPEN = frozenset(OPEN_STATUSES)  # at most one per obligation (the index uq_payment_order_open_attempt)
MONEY_IN = frozenset({"succeeded", "reconciled", "review", "refunded"})
JSAPI_EXPIRY = timedelta(minutes=30)
POLL_DELAYS = (timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5), timedelta(minutes=15),
               timedelta(hours=1))


def move(session: Session, order: PaymentOrder, to: str, *, source: str, reason: str = "",
         staff_id: int | None = None) -> None:
    if to not in TRANSITIONS[order.status]:
        raise OrderStateConflict(f"支付订单 {order.out_trade_no} 状态为{_label(order.status)}，不能变为{_label(to)}",
                                 status=order.status, target=to)
    now = clock.now()
    session.add(PaymentTransition(order_id=order.id, from_status=order.status, to_status=to, source=source,
                                  by_staff_id=staff_id, reason=reason[:300], at=now))
    order.status, order.updated_at = to, now


def _label(status: str) -> str:
    from payments.models import ORDER_STATUS_LABELS

    return ORDER_STATUS_LABELS.get(status, status)


def new_out_trade_no(method: str) -> str:
    """``P``/``W`` + Shanghai date + 16 hex: 25 characters, unique by the database."""
    return ("W" if method == "withholding" else "P") + clock.today().strftime("%Y%m%d") + secrets.token_hex(8).upper()


def listing_query(*, method: str | None = None, status: str | None = None) -> Select[Any]:
    """The order list's SELECT (支付订单, or 代扣 with ``method``; no order): the page and its export."""
    stmt = select(PaymentOrder)
    if method:
        stmt = stmt.where(PaymentOrder.method == method)
    if status:
        stmt = stmt.where(PaymentOrder.status == status)
    return stmt


def get(session: Session, order_id: int, *, for_update: bool = False) -> PaymentOrder:
    stmt = select(PaymentOrder).where(PaymentOrder.id == order_id).execution_options(populate_existing=True)
    order = session.scalar(stmt.with_for_update() if for_update else stmt)
    if order is None:
        raise OrderNotFound()
    return order


def by_out_trade_no(session: Session, out_trade_no: str, *, for_update: bool = False) -> PaymentOrder | None:
    stmt = (select(PaymentOrder).where(PaymentOrder.out_trade_no == out_trade_no)
            .execution_options(populate_existing=True))
    return session.scalar(stmt.with_for_update() if for_update else stmt)


def latest_attempts(session: Session, purpose: str, obligation_ref: str) -> list[PaymentOrder]:
    return list(session.scalars(select(PaymentOrder).where(
        PaymentOrder.purpose == purpose, PaymentOrder.obligation_ref == obligation_ref)
        .order_by(PaymentOrder.attempt_no.desc())))


def _open_attempt(session: Session, purpose: str, obligation_ref: str) -> PaymentOrder | None:
    return session.scalar(select(PaymentOrder).where(
        PaymentOrder.purpose == purpose, PaymentOrder.obligation_ref == obligation_ref,
        PaymentOrder.status.in_(OPEN_STATUSES)).execution_options(populate_existing=True))


def create(session: Session, *, purpose: str, obligation_ref: str, customer_id: int | None, amount: int,
           description: str, method: str, payer_openid: str | None = None, authorization_id: int | None = None,
           retry_of_id: int | None = None, source: str = "system", staff_id: int | None = None) -> PaymentOrder:
    """A new attempt for an obligation (attempt numbers decided by the unique constraint). The database
    keeps one open attempt per obligation: if another request opened one meanwhile, :class:`OpenAttemptExists`."""
    purposes.get(purpose)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentInvalid("支付金额必须是大于 0 的整数（分）", field="amount")
    if not obligation_ref or len(obligation_ref) > 64:
        raise PaymentInvalid("缺少应付事项", field="obligation_ref")
    for _ in range(3):
        attempt = (session.scalar(select(func.max(PaymentOrder.attempt_no)).where(
            PaymentOrder.purpose == purpose, PaymentOrder.obligation_ref == obligation_ref)) or 0) + 1
        now = clock.now()
        order = PaymentOrder(out_trade_no=new_out_trade_no(method), purpose=purpose, obligation_ref=obligation_ref,
                             attempt_no=attempt, customer_id=customer_id, method=method,
                             description=description[:127], total_amount=amount, payer_openid=payer_openid,
                             authorization_id=authorization_id, status="created", checks=0, retry_of_id=retry_of_id,
                             created_at=now, updated_at=now)
        try:
            with session.begin_nested():
                session.add(order)
                session.flush()
        except IntegrityError:
            open_attempt = _open_attempt(session, purpose, obligation_ref)
            if open_attempt is not None:  # another request opened an attempt meanwhile: it stands
                raise OpenAttemptExists(f"该应付事项已有进行中的支付（{open_attempt.out_trade_no}）") from None
            continue  # another attempt took the number meanwhile: take the next one
        session.add(PaymentTransition(order_id=order.id, from_status="", to_status="created", source=source,
                                      by_staff_id=staff_id, reason=f"第 {attempt} 次尝试", at=now))
        return order
    raise OrderStateConflict("同一应付事项正在被同时发起支付，请稍后再试")


def _settlement(order: PaymentOrder) -> purposes.Settlement:
    assert order.paid_at is not None and order.paid_date is not None
    return purposes.Settlement(order_id=order.id, out_trade_no=order.out_trade_no, purpose=order.purpose,
                               obligation_ref=order.obligation_ref, customer_id=order.customer_id,
                               amount=order.paid_amount or order.total_amount, paid_at=order.paid_at,
                               paid_date=order.paid_date, method=order.method, transaction_id=order.transaction_id)


def apply(session: Session, order: PaymentOrder, *, source: str, staff_id: int | None = None) -> bool:
    """Hand the money to the purpose's owner; on refusal hold it for review. True when applied."""
    purpose = purposes.get(order.purpose)
    try:
        with session.begin_nested():
            ref = purpose.apply(session, _settlement(order))
    except AppError as exc:
        reason = f"入账失败：{exc.message}"
        if order.status != "review":
            move(session, order, "review", source=source, reason=reason, staff_id=staff_id)
        order.review_reason = reason[:300]
        session.flush()
        log.warning("payment %s held for review: %s", order.out_trade_no, exc.code)
        return False
    order.applied_at, order.applied_ref = clock.now(), (ref or "")[:64]
    session.flush()
    return True


def record_result(session: Session, result: TradeResult, *, source: str) -> bool:
    """Apply what the provider says of an order (notification or poll). Idempotent; True if it changed."""
    order = by_out_trade_no(session, result.out_trade_no, for_update=True)
    if order is None:
        raise OrderNotFound(f"没有商户订单号为 {result.out_trade_no} 的支付订单", code="payment_order_unknown")
    state = result.trade_state
    if state in PAID_STATES:
        if order.status in MONEY_IN:
            return False
        now = clock.now()
        order.transaction_id = result.transaction_id
        order.paid_amount = result.amount if result.amount is not None else order.total_amount
        order.paid_at = result.success_at or now
        order.paid_date = clock.business_date(order.paid_at)
        order.next_check_at = None
        if order.status == "closed":
            order.review_reason = "订单关闭后仍收到付款，请退款或确认入账"
            move(session, order, "review", source=source, reason=order.review_reason)
        elif order.paid_amount != order.total_amount:
            order.review_reason = (f"实付 {format_yuan(order.paid_amount)} 与订单金额 "
                                   f"{format_yuan(order.total_amount)} 不符")
            move(session, order, "review", source=source, reason=order.review_reason)
        else:
            move(session, order, "succeeded", source=source, reason=result.transaction_id or "")
            apply(session, order, source=source)
        session.flush()
        audit.record(session, "payments.order.paid", entity_type="payment_order", entity_id=order.id,
                     after={"status": order.status, "amount": order.paid_amount, "source": source})
        return True
    if state in FAILED_STATES or (state == "NOTFOUND" and order.method == "withholding" and order.status == "unknown"):
        if order.status not in OPEN:
            return False
        move(session, order, "failed", source=source, reason=result.message or state)
        order.next_check_at = None
        _after_failure(session, order)
        session.flush()
        return True
    if state == "CLOSED":
        if order.status not in OPEN:
            return False
        move(session, order, "closed", source=source, reason="渠道已关闭订单")
        order.next_check_at = None
        session.flush()
        return True
    # still pending (NOTPAY, USERPAYING, ACCEPT, NOTFOUND of a JSAPI order): ask again later
    if order.status == "unknown" and state in ("ACCEPT", "USERPAYING"):
        move(session, order, "submitted", source=source, reason="渠道已受理")
    if order.status in OPEN:
        order.next_check_at = clock.now() + POLL_DELAYS[min(order.checks, len(POLL_DELAYS) - 1)]
    return False


# A failed debit is tried again as a new attempt after these delays (payments.withholding.retry).
WITHHOLDING_RETRY_SCHEDULE = (timedelta(hours=4), timedelta(days=1), timedelta(days=3))


def schedule_withholding_retry(order: PaymentOrder) -> None:
    """After a failed debit: when the next attempt is due (None after the last)."""
    attempt_index = order.attempt_no - 1
    if attempt_index < len(WITHHOLDING_RETRY_SCHEDULE):
        order.next_check_at = clock.now() + WITHHOLDING_RETRY_SCHEDULE[attempt_index]
    else:
        order.next_check_at = None


def _after_failure(session: Session, order: PaymentOrder) -> None:
    if order.method == "withholding":
        schedule_withholding_retry(order)


def poll(session: Session, order_id: int) -> bool:
    """Ask the provider about an open order and record the answer."""
    order = get(session, order_id)
    if order.status not in OPEN:
        return False
    p = config.provider()
    result = p.query_withholding(order.out_trade_no) if order.method == "withholding" else p.query(order.out_trade_no)
    order.checks += 1
    changed = record_result(session, result, source="poll")
    if (not changed and order.method == "jsapi" and order.status in OPEN
            and order.created_at < clock.now() - JSAPI_EXPIRY):
        cancel(session, order.id, reason="超过支付时限未支付，自动关闭", source="system")
        return True
    return changed


def due_for_poll(session: Session, limit: int = 200) -> list[int]:
    now = clock.now()
    return list(session.scalars(select(PaymentOrder.id).where(
        PaymentOrder.status.in_(("submitted", "unknown")),
        (PaymentOrder.next_check_at.is_(None)) | (PaymentOrder.next_check_at <= now))
        .order_by(PaymentOrder.next_check_at).limit(limit)))


def cancel(session: Session, order_id: int, *, reason: str, source: str = "staff",
           staff_id: int | None = None) -> PaymentOrder:
    """Close an unpaid order at the provider and here. If it was paid meanwhile, that payment is recorded."""
    order = get(session, order_id, for_update=True)
    if order.status not in OPEN:
        raise OrderStateConflict(f"支付订单状态为{_label(order.status)}，不能关闭")
    if order.method == "jsapi" and order.status != "created":
        try:
            config.provider().close(order.out_trade_no)
        except ProviderRefused:  # ORDERPAID: the customer paid while we were closing
            record_result(session, config.provider().query(order.out_trade_no), source="poll")
            return order
    move(session, order, "closed", source=source, reason=reason, staff_id=staff_id)
    order.next_check_at = None
    session.flush()
    return order


def apply_reviewed(session: Session, order_id: int, *, staff_id: int | None, note: str) -> PaymentOrder:
    """A person confirms money held for review: apply it now (the owner may still refuse)."""
    order = get(session, order_id, for_update=True)
    if order.status != "review" or order.applied_at is not None:
        raise OrderStateConflict("只有待复核且未入账的付款可以确认入账")
    if order.paid_amount != order.total_amount:
        raise OrderStateConflict("实付金额与订单金额不符，只能退款")
    if apply(session, order, source="staff", staff_id=staff_id):
        move(session, order, "succeeded", source="staff", reason=note or "复核后入账", staff_id=staff_id)
        order.review_reason = None
    audit.record(session, "payments.order.apply", entity_type="payment_order", entity_id=order.id,
                 after={"status": order.status}, detail=note)
    session.flush()
    return order


def transitions(session: Session, order_id: int) -> list[PaymentTransition]:
    return list(session.scalars(select(PaymentTransition).where(PaymentTransition.order_id == order_id)
                                .order_by(PaymentTransition.id)))


def expires_at(order: PaymentOrder) -> datetime:
    return order.created_at + JSAPI_EXPIRY
