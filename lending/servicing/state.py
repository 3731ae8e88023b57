"""The state of a loan in servicing, recomputed from its repayments: penalty, installment status, overdue days,
bucket, closure.

:func:`refresh` is the one writer of ``LoanInstallment.penalty_amount / status / paid_off_date`` and of
``Loan.overdue_days / bucket / status / closed_at``. It derives everything from the standing repayment
allocations (repayments not reversed) and the business date, so it is idempotent: the same inputs give the
same row values, and a second run the same day writes nothing new. Callers hold the loan row lock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from core import clock
from lending.models import Contract, Loan, LoanInstallment, Repayment, RepaymentAllocation
from lending.servicing.arithmetic import Due, ServicingTerms, bucket, penalty_amount

__all__ = ["Change", "Entry", "dues_as_of", "installments", "ledger", "penalty_as_of", "refresh", "terms_for"]


@dataclass(frozen=True)
class Entry:
    """One standing allocation: value date, component, fen."""

    day: date
    component: str
    amount: int


@dataclass(frozen=True)
class Change:
    closed: bool = False
    reopened: bool = False
    became_overdue: bool = False


def terms_for(session: Session, loan: Loan) -> ServicingTerms:
    contract = session.get(Contract, loan.contract_id)
    return ServicingTerms.of_snapshot(contract.snapshot if contract else None)


def installments(session: Session, loan_id: int) -> list[LoanInstallment]:
    return list(session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                .order_by(LoanInstallment.number).execution_options(populate_existing=True)))


def standing_clause(kinds: tuple[str, ...] = ("repayment", "waiver", "capitalisation")):  # noqa: ANN201 - SQL
    """Entries that stand: repayments, waivers (减免) and a restructure's capitalisation of the overdue amounts
    (逾期资本化), which write off like a payment, not reversed.
    ``kinds=("repayment",)`` for money actually received."""
    reversal = aliased(Repayment)
    return Repayment.kind.in_(kinds) & ~exists().where(reversal.reversal_of_id == Repayment.id)


def ledger(session: Session, loan_id: int) -> dict[int, list[Entry]]:
    """Standing allocations per installment id, by value date: one entry per transaction and component, its net
    (a backdated correction appends difference rows to a transaction; their sum is what it paid)."""
    rows = session.execute(
        select(RepaymentAllocation.installment_id, Repayment.repayment_date, RepaymentAllocation.component,
               func.sum(RepaymentAllocation.amount))
        .join(Repayment, Repayment.id == RepaymentAllocation.repayment_id)
        .where(Repayment.loan_id == loan_id, standing_clause())
        .group_by(RepaymentAllocation.installment_id, Repayment.repayment_date, Repayment.id,
                  RepaymentAllocation.component)
        .order_by(Repayment.repayment_date, Repayment.id, func.min(RepaymentAllocation.id)))
    out: dict[int, list[Entry]] = defaultdict(list)
    for installment_id, day, component, amount in rows:
        if amount:
            out[installment_id].append(Entry(day, component, int(amount)))
    return out


def _cleared_date(row: LoanInstallment, entries: list[Entry]) -> date | None:
    """The value date on which principal, interest and fee were all paid (penalty aside), if they are."""
    owed = row.principal_amount + row.interest_amount + row.fee_amount
    if owed == 0:
        return row.due_date
    paid = 0
    for e in entries:
        if e.component != "penalty":
            paid += e.amount
            if paid >= owed:
                return e.day
    return None


def penalty_as_of(terms: ServicingTerms, row: LoanInstallment, entries: list[Entry], day: date) -> int:
    return penalty_amount(terms, principal=row.principal_amount, due_date=row.due_date, as_of=day,
                          principal_paid=[(e.day, e.amount) for e in entries if e.component == "principal"],
                          cleared_date=_cleared_date(row, entries))


def dues_as_of(terms: ServicingTerms, rows: list[LoanInstallment], entries: dict[int, list[Entry]],
               day: date) -> list[Due]:
    """What may be paid on ``day``: every installment due by then (penalty as of that day) and the current
    period's (当期, the first one due after ``day``), oldest first. Further periods are prepayment."""
    dues: list[Due] = []
    current_taken = False
    for row in rows:
        if row.due_date > day:
            if current_taken:
                break
            current_taken = True
        penalty = max(penalty_as_of(terms, row, entries.get(row.id, []), day), row.paid_penalty_amount)
        outstanding = {
            "penalty": penalty - row.paid_penalty_amount,
            "fee": row.fee_amount - row.paid_fee_amount,
            "interest": row.interest_amount - row.paid_interest_amount,
            "principal": row.principal_amount - row.paid_principal_amount,
        }
        due = Due(row.id, row.number, outstanding)
        if due.total > 0:
            dues.append(due)
    return dues


def refresh(session: Session, loan: Loan, as_of: date | None = None) -> Change:
    """Recompute the loan's servicing state as of the business date ``as_of`` (default today)."""
    day = as_of or clock.today()
    terms = terms_for(session, loan)
    rows = installments(session, loan.id)
    entries = ledger(session, loan.id)
    for row in rows:
        mine = entries.get(row.id, [])
        row.penalty_amount = max(penalty_as_of(terms, row, mine, day), row.paid_penalty_amount)
        row.penalty_through_date = day
        if row.outstanding_amount == 0:
            row.status = "paid"
            row.paid_off_date = max((e.day for e in mine), default=row.due_date)
        else:
            row.status = "overdue" if terms.overdue_on(row.due_date, day) else "pending"
            row.paid_off_date = None
    first_unpaid = next((r for r in rows if r.outstanding_amount > 0), None)
    was_current = loan.bucket == "C"
    if first_unpaid is not None and first_unpaid.status == "overdue":
        loan.overdue_days = (day - first_unpaid.due_date).days
    else:
        loan.overdue_days = 0
    loan.bucket = bucket(loan.overdue_days)
    change = Change(became_overdue=was_current and loan.bucket != "C")
    if first_unpaid is None and loan.status == "active":
        loan.status, loan.closed_at = "closed", clock.now()
        change = Change(closed=True)
    elif first_unpaid is not None and loan.status == "closed":
        loan.status, loan.closed_at = "active", None
        change = Change(reopened=True, became_overdue=change.became_overdue)
    session.flush()
    return change
