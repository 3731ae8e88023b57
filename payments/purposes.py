"""What money is for: the owning domain registers a purpose and the function that applies the money.

    from payments import purposes

    def apply_fee(session, settlement: purposes.Settlement) -> str:
        ...book it (finance's journal entry, lending's repayment) with settlement.out_trade_no as the
        unique reference; only flush; return a reference such as "finance_entry:12"...

    purposes.register("finance.fee", "服务费", apply_fee)

The applier runs inside the transaction that marks the order applied (a savepoint of it): if it
raises an ``AppError`` the money is held for review (status ``review``), never lost, and nothing of the
application is kept. It must be idempotent on ``settlement.out_trade_no``.

A purpose whose owner starts refunds of applied money (``payments.refunds.request`` with its own
``refund_ref``) registers ``on_refund`` too: it is called once per refund when the provider's final
answer arrives (the refund notification, a poll, or the synchronous answer), in the transaction that
records it, with a :class:`RefundOutcome`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from payments.exceptions import PurposeUnknown


@dataclass(frozen=True)
class Settlement:
    """A payment received, handed to the purpose's applier."""

    order_id: int
    out_trade_no: str
    purpose: str
    obligation_ref: str
    customer_id: int | None
    amount: int  # fen received
    paid_at: datetime
    paid_date: date  # Asia/Shanghai
    method: str  # jsapi | withholding
    transaction_id: str | None


Applier = Callable[[Session, Settlement], str]


@dataclass(frozen=True)
class RefundOutcome:
    """A refund's final answer, handed to the purpose's ``on_refund``."""

    refund_id: int
    out_refund_no: str
    refund_ref: str  # the owner's own reference given to payments.refunds.request
    order_id: int
    out_trade_no: str
    obligation_ref: str
    amount: int  # fen
    succeeded: bool  # False: closed or abnormal, the money did not go back
    provider_status: str  # SUCCESS | CLOSED | ABNORMAL
    finished_at: datetime


RefundHandler = Callable[[Session, RefundOutcome], None]


@dataclass(frozen=True)
class Purpose:
    name: str
    label: str
    apply: Applier
    on_refund: RefundHandler | None = None


_REGISTRY: dict[str, Purpose] = {}


def register(name: str, label: str, apply: Applier, *, on_refund: RefundHandler | None = None) -> None:
    """Register (or replace, on re-import) the applier of a purpose such as ``lending.installment``."""
    _REGISTRY[name] = Purpose(name, label, apply, on_refund)


def get(name: str) -> Purpose:
    found = _REGISTRY.get(name)
    if found is None:
        raise PurposeUnknown(f"未登记的支付用途：{name}")
    return found


def label(name: str) -> str:
    found = _REGISTRY.get(name)
    return found.label if found else name


def registered() -> list[str]:
    return sorted(_REGISTRY)
