"""JSAPI checkout (小程序支付): the order for an obligation and the signed ``wx.requestPayment`` parameters.

Paying the same obligation again while an attempt is open returns that attempt (same out_trade_no, same
prepay): a double tap pays once, also when the two taps arrive together (the database keeps one open
attempt per obligation; the second request finds the first's). If the amount changed (the bill moved on),
the open attempt is closed at the provider and a new attempt made. While a debit's result is unknown the
bill cannot be paid again. A failure to reach the provider writes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core import clock
from payments import config, orders
from payments.exceptions import OpenAttemptExists, OrderStateConflict
from payments.models import PaymentOrder


def _open_attempt(session: Session, provider: Any, *, purpose: str, obligation_ref: str, amount: int,
                  openid: str) -> tuple[PaymentOrder, dict[str, str]] | None:
    """The open attempt to pay again (a double tap), or None once no attempt is open (a stale one closed)."""
    for existing in orders.latest_attempts(session, purpose, obligation_ref):
        if existing.status == "unknown":  # a debit whose result is not known yet: paying now could pay twice
            raise OrderStateConflict(f"该应付事项有一笔结果未知的代扣（{existing.out_trade_no}），请稍后再试")
        if existing.status not in ("created", "submitted"):
            continue
        existing = orders.get(session, existing.id, for_update=True)
        if (existing.method == "jsapi" and existing.total_amount == amount and existing.payer_openid == openid
                and existing.prepay_id and clock.now() < orders.expires_at(existing)):
            return existing, provider.mp_pay_params(existing.prepay_id)
        if existing.status in ("created", "submitted"):
            orders.cancel(session, existing.id, reason="应付金额或付款人变化，重新下单", source="customer")
        if existing.status != "closed":  # it was paid while we closed it: that payment stands
            session.refresh(existing)
            return existing, {}
    return None


def start_jsapi(session: Session, *, purpose: str, obligation_ref: str, customer_id: int | None, amount: int,
                description: str, openid: str) -> tuple[PaymentOrder, dict[str, str]]:
    provider = config.provider()
    for _ in range(2):
        found = _open_attempt(session, provider, purpose=purpose, obligation_ref=obligation_ref, amount=amount,
                              openid=openid)
        if found is not None:
            return found
        try:
            order = orders.create(session, purpose=purpose, obligation_ref=obligation_ref, customer_id=customer_id,
                                  amount=amount, description=description, method="jsapi", payer_openid=openid,
                                  source="customer")
        except OpenAttemptExists:
            continue  # a simultaneous request opened one (committed now): pay that one
        order.prepay_id = provider.create_jsapi(out_trade_no=order.out_trade_no, description=order.description,
                                                amount=amount, openid=openid, expire_at=orders.expires_at(order))
        orders.move(session, order, "submitted", source="customer", reason="已下单，等待支付")
        order.next_check_at = clock.now() + orders.POLL_DELAYS[0]
        session.flush()
        return order, provider.mp_pay_params(order.prepay_id)
    raise OrderStateConflict("同一应付事项正在被同时发起支付，请稍后再试")
