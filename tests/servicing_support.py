"""Helpers for the servicing tests (no tests here): a disbursed loan, business days, quick bookings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count

from sqlalchemy.orm import Session

from core import clock
from lending import disbursement
from lending.models import Loan, LoanInstallment
from lending.servicing import repayments, state
from tests.lending_flow_support import V, World, advance_to, make_world, start

_refs = count(1)
START = date(2026, 11, 23)  # the contract's signing day under lending_flow_support.NOW


def at(day: date, hour: int = 10) -> datetime:
    """``hour`` o'clock in Shanghai on ``day``, as aware UTC."""
    return datetime.combine(day, time(hour), tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


def on(day: date) -> None:
    clock.freeze(at(day))


def make_loan(session: Session, *, amount: int = 1_200_000, term: int = 12, **terms: object) -> tuple[World, Loan]:
    """A disbursed loan of ``amount`` fen (12,000.00 yuan by default) signed and disbursed on START."""
    terms.setdefault("penalty_rate", Decimal("0.0005"))
    on(START)
    w = make_world(session, **terms)
    app = advance_to(session, w, start(session, w, amount=amount, term=term), "disbursement")
    loan = disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference=f"FR-{app.id}")
    session.flush()
    return w, loan


def rows(session: Session, loan: Loan) -> list[LoanInstallment]:
    return state.installments(session, loan.id)


def pay(session: Session, w: World, loan: Loan, amount: int, day: date | None = None, **kw: object):
    kw.setdefault("external_reference", f"SLIP-{next(_refs)}")
    return repayments.record_repayment(session, loan.id, viewer=V(w.finance), amount=amount,
                                       repayment_date=day, **kw)


def days(n: int) -> timedelta:
    return timedelta(days=n)
