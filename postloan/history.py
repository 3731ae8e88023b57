"""The case's history, written: action rows (calls, messages, promises, notes, assignments), promise rows, a
change of collector (mirrored onto the loan, which lending's data scope reads), promises decided.

The low-level writers both the loan-level API (``postloan.actions``) and the case-level API
(``postloan.cases``) use; callers have checked the viewer and hold the rows they change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import clock
from core.money import format_yuan
from crm import customers
from lending.models import Loan, Repayment
from lending.servicing import state
from postloan.models import CollectionAction, CollectionCase, CollectionPromise

__all__ = ["ON_PROMISE_BROKEN", "add_promise", "log", "open_case_of", "set_collector", "settle_promises"]

# fn(session, promise) when a promise is found broken (``postloan.rerating`` raises the tier; tasks registers it)
ON_PROMISE_BROKEN: list[Callable[[Session, CollectionPromise], None]] = []


def open_case_of(session: Session, loan_id: int, *, for_update: bool = False) -> CollectionCase | None:
    stmt = select(CollectionCase).where(CollectionCase.loan_id == loan_id, CollectionCase.status == "open")
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def log(session: Session, loan: Loan, kind: str, *, staff_id: int | None, outcome: str | None = None,
        note: str | None = None, case_id: int | None = None) -> CollectionAction:
    if case_id is None:
        case = open_case_of(session, loan.id)
        case_id = case.id if case else None
    action = CollectionAction(loan_id=loan.id, case_id=case_id, kind=kind, outcome=outcome, note=note,
                              bucket=loan.bucket, overdue_days=loan.overdue_days, by_staff_id=staff_id, at=clock.now())
    session.add(action)
    session.flush()
    return action


def add_promise(session: Session, loan: Loan, action: CollectionAction, *, promised_date: date,
                promised_amount: int, staff_id: int | None) -> CollectionPromise:
    promise = CollectionPromise(loan_id=loan.id, case_id=action.case_id, action_id=action.id,
                                made_date=clock.today(), promised_date=promised_date,
                                promised_amount=promised_amount, status="open", by_staff_id=staff_id)
    session.add(promise)
    if action.case_id is not None:
        session.execute(update(CollectionCase).where(CollectionCase.id == action.case_id)
                        .values(progress_at=clock.now()).execution_options(synchronize_session="fetch"))
    session.flush()
    customers.record_event(session, loan.customer_id, "lending_promise",
                           f"承诺 {promised_date.isoformat()} 前还款 {format_yuan(promised_amount)}（贷款 #{loan.id}）",
                           actor_staff_id=staff_id, ref_type="lending_loan", ref_id=loan.id)
    return promise


def set_collector(session: Session, loan: Loan, case: CollectionCase | None, staff_id: int | None, note: str, *,
                  by_staff_id: int | None, group_id: int | None = None, rule_id: int | None = None) -> None:
    """The loan's (and its open case's) collector is now ``staff_id``; one ``assign`` row in the history."""
    now = clock.now()
    loan.collector_staff_id = staff_id
    if case is not None:
        case.collector_staff_id = staff_id
        case.assigned_at = now if staff_id else None
        case.progress_at = now if staff_id else case.progress_at
        if group_id is not None or staff_id is None:
            case.group_id = group_id
            case.rule_id = rule_id
    session.flush()
    log(session, loan, "assign", staff_id=by_staff_id, note=note, case_id=case.id if case else None)


def settle_promises(session: Session, loan_id: int, today: date | None = None) -> int:
    """Decide the loan's open promises: kept when paid in time, broken when the date has passed. Returns how
    many moved."""
    today = today or clock.today()
    moved = 0
    for promise in session.scalars(select(CollectionPromise).where(CollectionPromise.loan_id == loan_id,
                                                                   CollectionPromise.status == "open")):
        paid = session.scalar(select(func.coalesce(func.sum(Repayment.amount), 0)).where(
            Repayment.loan_id == loan_id, state.standing_clause(("repayment",)),
            Repayment.repayment_date >= promise.made_date,
            Repayment.repayment_date <= promise.promised_date)) or 0
        if paid >= promise.promised_amount:
            status = "kept"
        elif today > promise.promised_date:
            status = "broken"
        else:
            continue
        moved += session.execute(update(CollectionPromise).where(
            CollectionPromise.id == promise.id, CollectionPromise.status == "open")
            .values(status=status, resolved_at=clock.now()).execution_options(synchronize_session=False)).rowcount
        if status == "broken":
            loan = session.get(Loan, loan_id)
            assert loan is not None
            customers.record_event(session, loan.customer_id, "lending_promise_broken",
                                   f"承诺还款已违约：{promise.promised_date.isoformat()} 前应还 "
                                   f"{format_yuan(promise.promised_amount)}，实还 {format_yuan(int(paid))}",
                                   ref_type="lending_loan", ref_id=loan_id)
            for hook in ON_PROMISE_BROKEN:
                hook(session, promise)
    session.flush()
    return moved
