"""Payment tables. Nothing here knows what is paid for: an order carries a ``purpose``
(``lending.installment``, ``finance.fee`` …) and an ``obligation_ref`` the purpose's owner understands.

- ``payment_order``: one row per obligation attempt (one ``out_trade_no``), JSAPI payment or withholding.
- ``payment_transition``: every state change of an order, with who, when and why (append-only).
- ``payment_refund``: refunds of an order (one ``out_refund_no`` each), final answer by notification or poll.
- ``payment_notification`` / ``payment_nonce``: the provider's signed notifications (the inbox) and
  the nonces seen inside the timestamp window.
- ``withholding_authorization``: the customer's 代扣 authorisation (account sealed by core.pii).
- ``reconciliation_run`` / ``reconciliation_item``: a day's bill matched against our orders.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core import pii_rotation
from core.db import Base

ORDER_STATUS_LABELS = {
    "created": "已创建", "submitted": "待支付", "succeeded": "已支付", "failed": "失败", "unknown": "结果未知",
    "closed": "已关闭", "review": "待复核", "refunded": "已退款", "reconciled": "已对账",
}
METHOD_LABELS = {"jsapi": "微信支付", "withholding": "代扣"}
REFUND_STATUS_LABELS = {"submitted": "退款中", "succeeded": "已退款", "failed": "退款失败"}
AUTHORIZATION_STATUS_LABELS = {"active": "有效", "revoked": "已撤销"}
ITEM_KIND_LABELS = {"missing_ours": "我方无记录", "missing_provider": "渠道无记录", "amount_differs": "金额不符",
                    "status_differs": "状态不符"}
ITEM_STATUS_LABELS = {"open": "待处理", "resolved": "已处理"}
OPEN_STATUSES = ("created", "submitted", "unknown")  # an attempt still under way (payments.orders.OPEN)
OPEN_SQL = "status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"


class PaymentOrder(Base):
    __tablename__ = "payment_order"
    __table_args__ = (
        UniqueConstraint("purpose", "obligation_ref", "attempt_no"),
        CheckConstraint("total_amount > 0", name="amount_positive"),
        CheckConstraint("method IN ('jsapi', 'withholding')", name="method_known"),
        Index("ix_payment_order_status_next", "status", "next_check_at"),
        Index("ix_payment_order_paid_date", "paid_date"),
        Index("ix_payment_order_obligation", "purpose", "obligation_ref"),
        # at most one open attempt per obligation: two simultaneous checkouts or debits of one bill cannot
        # both open an attempt (the second finds the first, see payments.orders.create)
        Index("uq_payment_order_open_attempt", "purpose", "obligation_ref", unique=True,
              postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(40))
    obligation_ref: Mapped[str] = mapped_column(String(64))
    attempt_no: Mapped[int] = mapped_column(default=1)
    customer_id: Mapped[int | None] = mapped_column(index=True)
    method: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(127))
    total_amount: Mapped[int]  # fen
    paid_amount: Mapped[int | None]  # fen, as the provider reported it
    payer_openid: Mapped[str | None] = mapped_column(String(128))
    authorization_id: Mapped[int | None] = mapped_column(ForeignKey("withholding_authorization.id"))
    status: Mapped[str] = mapped_column(String(16), default="created")
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    paid_at: Mapped[datetime | None]
    paid_date: Mapped[date | None]  # Asia/Shanghai business date of the payment (the bill it belongs to)
    applied_at: Mapped[datetime | None]
    applied_ref: Mapped[str | None] = mapped_column(String(64))  # e.g. "lending_repayment:12"
    review_reason: Mapped[str | None] = mapped_column(String(300))
    checks: Mapped[int] = mapped_column(default=0)  # provider queries and submissions made
    next_check_at: Mapped[datetime | None]  # next poll (submitted / unknown) or retry (failed withholding)
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("payment_order.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    reconciled_at: Mapped[datetime | None]


class PaymentTransition(Base):
    __tablename__ = "payment_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("payment_order.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # notify | poll | staff | system | customer
    by_staff_id: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[datetime]


class PaymentRefund(Base):
    __tablename__ = "payment_refund"
    __table_args__ = (CheckConstraint("refund_amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("payment_order.id"), index=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    refund_amount: Mapped[int]
    reason: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))
    provider_status: Mapped[str | None] = mapped_column(String(16))  # SUCCESS | CLOSED | ABNORMAL (the final answer)
    refund_ref: Mapped[str | None] = mapped_column(String(64))  # the owner's record (None: money held for review)
    by_staff_id: Mapped[int | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class PaymentNotification(Base):
    """Every verified provider notification, stored under its notification id before we answer."""

    __tablename__ = "payment_notification"
    __table_args__ = (Index("ix_payment_notification_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)  # the notification's own id
    event_type: Mapped[str] = mapped_column(String(40))  # TRANSACTION.SUCCESS, REFUND.SUCCESS …
    resource_enc: Mapped[str] = mapped_column(Text)  # decrypted resource, sealed (it names the payer)
    summary: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


pii_rotation.register(PaymentNotification.resource_enc, "payload")


class PaymentNonce(Base):
    __tablename__ = "payment_nonce"
    __table_args__ = (UniqueConstraint("nonce", "timestamp"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(16))
    # sha256 of the request body: the same (nonce, timestamp) with the same body is WeChat Pay re-delivering
    # a notification it got no answer to (acknowledged); with another body it is a replay (refused).
    digest: Mapped[str | None] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(index=True)


class WithholdingAuthorization(Base):
    """A customer's 代扣 authorisation: who, when, which account (sealed), for what, until revoked."""

    __tablename__ = "withholding_authorization"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(index=True)
    contract_code: Mapped[str] = mapped_column(String(32), unique=True)  # ours, sent to the provider
    provider_contract_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    account_enc: Mapped[str] = mapped_column(Text)  # bank account number, sealed
    account_masked: Mapped[str] = mapped_column(String(32))
    bank_name: Mapped[str] = mapped_column(String(40))
    holder_name: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(200))  # purposes, comma separated
    max_amount: Mapped[int]  # fen per debit
    signed_via: Mapped[str] = mapped_column(String(16))  # miniprogram | console
    consent_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    by_staff_id: Mapped[int | None]
    signed_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(200))
    revoked_by_staff_id: Mapped[int | None]


pii_rotation.register(WithholdingAuthorization.account_enc, "payload")


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    bill_date: Mapped[date] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16))  # done | failed
    bill_lines: Mapped[int] = mapped_column(default=0)
    matched: Mapped[int] = mapped_column(default=0)
    mismatched: Mapped[int] = mapped_column(default=0)
    bill_amount: Mapped[int] = mapped_column(default=0)  # fen, successful payments in the bill
    our_amount: Mapped[int] = mapped_column(default=0)  # fen, our succeeded orders of the day
    error: Mapped[str | None] = mapped_column(String(500))
    by_staff_id: Mapped[int | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class ReconciliationItem(Base):
    __tablename__ = "reconciliation_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_run.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    out_trade_no: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("payment_order.id"))
    our_amount: Mapped[int | None]
    bill_amount: Mapped[int | None]
    our_status: Mapped[str | None] = mapped_column(String(16))
    bill_status: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    action: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(300))
    resolved_by_staff_id: Mapped[int | None]
    resolved_at: Mapped[datetime | None]
