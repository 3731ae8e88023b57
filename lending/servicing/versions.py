"""Schedule versions (还款计划版本): the loan's schedule as the engine sees it, and every version kept.

``LoanInstallment`` rows are the current version with what is paid on them. A change of schedule (a partial
prepayment, a payoff, an extension or a restructure) rewrites the rows from the first open period on and
appends a ``ScheduleVersion`` with all of the new rows; before the first change the original (the contract's
schedule) is written as version 1. Versions are append-only: the history is never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import clock
from lending import products
from lending.models import Contract, Loan, LoanInstallment, Restructure, ScheduleVersion
from lending.schedule.engine import Period, Schedule, build_schedule
from lending.schedule.terms import LoanTerms, RepaymentMethod
from lending.servicing.exceptions import BookingInconsistent

__all__ = ["append", "current_schedule", "effective_terms", "ensure_original", "history", "loan_terms", "write_rows"]


def contract_terms(contract: Contract) -> products.ProductTerms:
    """The product terms frozen into the contract at signing (``snapshot["terms"]``)."""
    snapshot = dict((contract.snapshot or {}).get("terms") or {})
    names = {f.name for f in fields(products.ProductTerms)}
    return products.ProductTerms(**{k: v for k, v in snapshot.items() if k in names})


def effective_terms(session: Session, loan: Loan, contract: Contract) -> products.ProductTerms:
    """The contract's frozen terms, at the annual rate of the loan's latest restructure at a new rate (重组) if any."""
    terms = contract_terms(contract)
    rate = session.scalar(select(Restructure.annual_rate).where(
        Restructure.loan_id == loan.id, Restructure.status == "approved", Restructure.annual_rate.is_not(None))
        .order_by(Restructure.decided_at.desc(), Restructure.id.desc()).limit(1))
    return replace(terms, annual_rate=rate) if rate is not None else terms


def loan_terms(session: Session, loan: Loan) -> LoanTerms:
    """The engine's terms of the loan: the contract's frozen product terms (at a restructure's new rate),
    principal, term and start date."""
    contract = session.get(Contract, loan.contract_id)
    if contract is None or contract.start_date is None:
        raise BookingInconsistent("贷款的合同缺失或没有起始日")
    return products.loan_terms(effective_terms(session, loan, contract), contract.principal_amount,
                               contract.term_months, contract.start_date)


def history(session: Session, loan_id: int) -> list[ScheduleVersion]:
    """Every stored version of the loan's schedule, oldest first (empty until the first change)."""
    return list(session.scalars(select(ScheduleVersion).where(ScheduleVersion.loan_id == loan_id)
                                .order_by(ScheduleVersion.version)))


def _latest(session: Session, loan_id: int) -> ScheduleVersion | None:
    return session.scalar(select(ScheduleVersion).where(ScheduleVersion.loan_id == loan_id)
                          .order_by(ScheduleVersion.version.desc()).limit(1))


def current_schedule(session: Session, loan: Loan, rows: Sequence[LoanInstallment]) -> Schedule:
    """The current version as an engine :class:`Schedule` (for a recalculation): the rows as they stand, the
    level payment or principal step of the latest version (the original's before any change)."""
    terms = loan_terms(session, loan)
    latest = _latest(session, loan.id)
    if latest is not None:
        installment = latest.installment_amount
        step = Fraction(latest.principal_step) if latest.principal_step else None
        prepaid = {int(r["number"]): int(r.get("prepayment", 0)) for r in latest.rows}
    else:
        original = build_schedule(terms)
        installment, step, prepaid = original.installment, original.principal_step, {}
    balance = sum(r.principal_amount for r in rows)
    periods = []
    for r in rows:
        balance -= r.principal_amount
        periods.append(Period(r.number, r.due_date, r.principal_amount, r.interest_amount, r.fee_amount, balance,
                              prepayment=prepaid.get(r.number, 0)))
    months = terms.periods if terms.method is RepaymentMethod.BULLET else 1
    return Schedule(terms, tuple(periods), installment=installment, principal_step=step, period_months=months)


def _row_json(number: int, due_date: date, principal: int, interest: int, fee: int, prepayment: int = 0
              ) -> dict[str, Any]:
    return {"number": number, "due_date": due_date.isoformat(), "principal": principal, "interest": interest,
            "fee": fee, "prepayment": prepayment}


def _next_version(session: Session, loan_id: int) -> int:
    return int(session.scalar(select(func.coalesce(func.max(ScheduleVersion.version), 0))
                              .where(ScheduleVersion.loan_id == loan_id)) or 0) + 1


def ensure_original(session: Session, loan: Loan, rows: Sequence[LoanInstallment]) -> None:
    """Write version 1 (the rows as they stand, before the first change) unless a version exists."""
    if _latest(session, loan.id) is not None:
        return
    original = build_schedule(loan_terms(session, loan))
    session.add(ScheduleVersion(
        loan_id=loan.id, version=1, reason="original", effective_date=loan.start_date,
        rows=[_row_json(r.number, r.due_date, r.principal_amount, r.interest_amount, r.fee_amount) for r in rows],
        installment_amount=original.installment,
        principal_step=str(original.principal_step) if original.principal_step is not None else None,
        created_at=clock.now()))
    session.flush()


def write_rows(session: Session, loan: Loan, rows: Sequence[LoanInstallment], schedule: Schedule,
               first: int, *, extra_fee: dict[int, int] | None = None) -> list[LoanInstallment]:
    """Make the installments from period ``first`` on those of ``schedule`` (rows before ``first`` are kept):
    amounts and due dates rewritten, rows the new schedule no longer has deleted (they are unpaid), new rows
    added. ``extra_fee`` adds fen to a period's fee (a prepayment charge). Returns the rows, in order."""
    extra_fee = extra_fee or {}
    by_number = {r.number: r for r in rows}
    numbers = {p.number for p in schedule.periods}
    for period in schedule.periods:
        if period.number < first:
            continue
        fee = period.fee + extra_fee.get(period.number, 0)
        row = by_number.get(period.number)
        if row is None:
            session.add(LoanInstallment(loan_id=loan.id, number=period.number, due_date=period.due_date,
                                        principal_amount=period.principal, interest_amount=period.interest,
                                        fee_amount=fee, paid_principal_amount=0, paid_interest_amount=0,
                                        paid_fee_amount=0, status="pending"))
        else:
            row.due_date, row.principal_amount = period.due_date, period.principal
            row.interest_amount, row.fee_amount = period.interest, fee
    gone = [r.id for r in rows if r.number >= first and r.number not in numbers]
    if gone:
        if any(by_number[n].paid_amount for n in by_number if n >= first and n not in numbers):
            raise BookingInconsistent("新还款计划会删除已有还款的期次")
        session.execute(delete(LoanInstallment).where(LoanInstallment.id.in_(gone))
                        .execution_options(synchronize_session="fetch"))
    session.flush()
    return list(session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id)
                                .order_by(LoanInstallment.number).execution_options(populate_existing=True)))


def append(session: Session, loan: Loan, schedule: Schedule, *, reason: str, effective_date: date,
           rows: Sequence[LoanInstallment], repayment_id: int | None = None, mode: str | None = None,
           note: str | None = None, staff_id: int | None = None) -> ScheduleVersion:
    """Append the next version: the installments as they now stand, with the schedule's level payment / step
    and each row's prepaid principal."""
    prepaid = {p.number: p.prepayment for p in schedule.periods}
    version = ScheduleVersion(
        loan_id=loan.id, version=_next_version(session, loan.id), reason=reason, effective_date=effective_date,
        repayment_id=repayment_id, mode=mode,
        rows=[_row_json(r.number, r.due_date, r.principal_amount, r.interest_amount, r.fee_amount,
                        prepaid.get(r.number, 0)) for r in rows],
        installment_amount=schedule.installment,
        principal_step=str(schedule.principal_step) if schedule.principal_step is not None else None,
        note=(note or "").strip()[:300] or None, by_staff_id=staff_id, created_at=clock.now())
    session.add(version)
    session.flush()
    return version
