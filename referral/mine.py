"""What a referrer sees of themselves (for the mini-program's endpoints): their code, invitees
(masked), ledger and balance, and withdrawing. The mini-program resolves the logged-in customer
to a referrer with :func:`referrer_for_customer` and calls these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Customer
from referral import ledger, payouts, referrers
from referral.models import ENTRY_KIND_LABELS, Attribution, CommissionEntry, Referrer, ReferrerKind, WithdrawalRequest


@dataclass(frozen=True)
class Invitee:
    name_masked: str
    phone_masked: str | None
    attributed_at: datetime
    stage: str


def referrer_for_customer(session: Session, customer_id: int, *, create: bool = True) -> Referrer | None:
    """The customer's own referrer record (created on first use, under whoever referred them)."""
    existing = session.scalar(select(Referrer).where(Referrer.customer_id == customer_id))
    if existing is not None or not create:
        return existing
    return referrers.create_referrer(session, referrers.ReferrerInput(kind=ReferrerKind.CUSTOMER,
                                                                       customer_id=customer_id))


def my_invitees(session: Session, referrer_id: int, *, limit: int = 100, offset: int = 0) -> list[Invitee]:
    rows = session.execute(
        select(Customer.name, Customer.phone_masked, Attribution.created_at, Customer.stage)
        .join(Attribution, Attribution.customer_id == Customer.id)
        .where(Attribution.referrer_id == referrer_id)
        .order_by(Attribution.created_at.desc()).limit(limit).offset(offset)).all()
    return [Invitee(payouts.mask_name(name), phone, at, stage) for name, phone, at, stage in rows]


@dataclass(frozen=True)
class LedgerLine:
    id: int
    kind: str
    kind_label: str
    amount: int
    at: datetime
    note: str | None


def my_ledger(session: Session, referrer_id: int, *, limit: int = 50, offset: int = 0) -> list[LedgerLine]:
    return [LedgerLine(e.id, e.kind, ENTRY_KIND_LABELS.get(e.kind, e.kind), e.amount, e.created_at, e.note)
            for e in ledger.entries(session, referrer_id, limit=limit, offset=offset)
            if isinstance(e, CommissionEntry)]


def my_balance(session: Session, referrer_id: int) -> ledger.Balance:
    return ledger.balance(session, referrer_id)


def withdraw(session: Session, referrer_id: int, amount_fen: int) -> WithdrawalRequest:
    return payouts.request_withdrawal(session, referrer_id, amount_fen)


def my_withdrawals(session: Session, referrer_id: int, limit: int = 50) -> list[WithdrawalRequest]:
    return list(session.scalars(select(WithdrawalRequest).where(WithdrawalRequest.referrer_id == referrer_id)
                                .order_by(WithdrawalRequest.id.desc()).limit(limit)))
