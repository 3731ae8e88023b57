"""Bill rollover (账单结转), the periodic job's body: once per loan and business day.

Each active loan with a bill due before today is claimed for today by a conditional UPDATE
(``rolled_over_date < today``; a second run the same day, or a second worker, claims nothing), then
:func:`lending.servicing.state.refresh` recomputes penalty, installment status, overdue days and bucket as of
today; then collections (``ON_LOAN_ROLLED_OVER``: a case for a loan that has just fallen overdue, its collector,
its open promises to pay decided).
Work goes in batches, one unit of work each (see ``lending.servicing_tasks``).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from lending.models import Loan, LoanInstallment
from lending.servicing import state
from lending.servicing.events import ON_LOAN_ROLLED_OVER, ROLLOVER_TASK

__all__ = ["roll_one", "roll_over"]


def roll_over(session: Session, day: date | None = None, *, limit: int = 200) -> int:
    """Roll over up to ``limit`` loans not yet rolled over on ``day`` (default today); returns how many."""
    day = day or clock.today()
    due_before = exists().where(LoanInstallment.loan_id == Loan.id, LoanInstallment.due_date < day,
                                LoanInstallment.status != "paid")
    ids = list(session.scalars(select(Loan.id).where(
        Loan.status == "active", or_(Loan.rolled_over_date.is_(None), Loan.rolled_over_date < day), due_before)
        .order_by(Loan.id).limit(limit)))
    done = 0
    for loan_id in ids:
        claimed = session.execute(update(Loan).where(
            Loan.id == loan_id, Loan.status == "active",
            or_(Loan.rolled_over_date.is_(None), Loan.rolled_over_date < day))
            .values(rolled_over_date=day).execution_options(synchronize_session=False)).rowcount
        if claimed != 1:
            continue
        loan = session.scalar(select(Loan).where(Loan.id == loan_id).execution_options(populate_existing=True))
        assert loan is not None
        roll_one(session, loan, day)
        done += 1
    session.flush()
    return done


def roll_one(session: Session, loan: Loan, day: date) -> None:
    """One claimed loan's rollover for ``day``: state, bucket audit, then collections' hooks."""
    before = loan.bucket
    state.refresh(session, loan, day)
    if loan.bucket != before:
        audit.record(session, "lending.loan.bucket", entity_type="lending_loan", entity_id=loan.id,
                     before={"bucket": before}, after={"bucket": loan.bucket, "overdue_days": loan.overdue_days},
                     actor=audit.Actor.system(ROLLOVER_TASK))
    for hook in ON_LOAN_ROLLED_OVER:
        hook(session, loan, day)
