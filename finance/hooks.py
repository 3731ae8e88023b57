"""Finance's events for the packages above it (referral's staff commission schemes).

A downstream package appends ``fn(session, FeeEvent)`` to a list; finance calls each inside the unit of
work that settles the case (fees actually collected at 结单) or refunds a fee, so the commission moves
in the same transaction as the money, or not at all. Finance never imports referral.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class FeeEvent:
    settlement_id: int
    agreement_id: int
    customer_id: int
    sales_staff_id: int
    loan_id: int | None
    funder_type: str | None
    fee_amount: int  # fen: fee revenue collected (service fee − discount + added fees); after a refund, what is kept
    key: str  # names the collection or refund: a re-delivery does nothing
    at: datetime
    refunded_amount: int = 0  # a refund: the amount paid back


ON_FEES_COLLECTED: list[Callable[[Session, FeeEvent], None]] = []
ON_FEES_REFUNDED: list[Callable[[Session, FeeEvent], None]] = []


def fees_collected(session: Session, event: FeeEvent) -> None:
    for fn in ON_FEES_COLLECTED:
        fn(session, event)


def fees_refunded(session: Session, event: FeeEvent) -> None:
    for fn in ON_FEES_REFUNDED:
        fn(session, event)
