"""The nightly run of collections, and collections' part of servicing's transactions (hooks registered by
``postloan.tasks`` into ``lending.servicing.events``).

:func:`run` is the close of business's ``collections`` step (after overdue days and buckets are set), in its
transaction, set-based:

1. open a case for every active overdue loan without an open case (with the loan's collector, if any, at the tier
   of its application's risk evaluation) and not written off (核销: collections stop for that loan);
2. refresh the open cases of the loans rolled over today (bucket, days, amounts); a case whose bucket moved out
   of the rule that allocated it is released, to be allocated again (a case moves with its bucket);
3. close the cases of loans back to current (``cured``) or paid off (``paid_off``);
4. release the cases of rules with ``reassign_after_days`` that saw no promise or payment for that long;
5. run the early-warning rules over every open case (``postloan.rerating.rerate_open``: a tier only goes up, the
   collector told once per raise);
6. allocate the unassigned open cases (``postloan.allocation``; a released case avoids its last collector);
7. decide the open promises of the loans rolled over today.

:func:`on_loan_rolled_over` does 1–4 and 6 for one loan (the hourly per-loan rollover), :func:`on_payment_posted`
settles promises and closes or refreshes the case when a repayment is posted.
"""

# ruff: noqa: S608 - the SQL text formats in only this module's own dialect fragments; every value is bound
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import exists, insert, select, text, update
from sqlalchemy.orm import Session

from core import clock
from lending.models import Loan
from postloan import allocation, cases, history, rerating
from postloan.allocation import matches
from postloan.models import AllocationRule, CollectionAction, CollectionCase, CollectionPromise

__all__ = ["on_loan_rolled_over", "on_payment_posted", "run"]

_OWED = ("(i.principal_amount + i.interest_amount + i.fee_amount + i.penalty_amount - i.paid_principal_amount"
         " - i.paid_interest_amount - i.paid_fee_amount - i.paid_penalty_amount)")


def _d(session: Session) -> str:
    return "CAST(:d AS DATE)" if session.get_bind().dialect.name == "postgresql" else ":d"


def _initial_tier_sql() -> str:
    """The tier a case opens at (``rerating.initial_tier`` in SQL): its application's risk evaluation outcome."""
    whens = " ".join(f"WHEN '{outcome}' THEN '{tier}'" for outcome, tier in rerating.TIER_OF_OUTCOME.items())
    return (f"COALESCE((SELECT CASE e.outcome {whens} ELSE 'low' END FROM lending_application a"
            " JOIN lending_risk_evaluation e ON e.id = a.risk_evaluation_id WHERE a.id = l.application_id), 'low')")


def open_cases(session: Session, day: date) -> int:
    d = _d(session)
    return session.execute(text(f"""
        INSERT INTO postloan_case (loan_id, customer_id, product_id, status, opened_date, opened_at, bucket,
                                   overdue_days, overdue_amount, outstanding_amount, risk_tier, region,
                                   collector_staff_id, assigned_at, progress_at)
        SELECT l.id, l.customer_id, v.product_id, 'open', {d}, :now, l.bucket, l.overdue_days,
               COALESCE((SELECT SUM({_OWED}) FROM lending_loan_installment i
                         WHERE i.loan_id = l.id AND i.status = 'overdue'), 0),
               COALESCE((SELECT SUM({_OWED}) FROM lending_loan_installment i WHERE i.loan_id = l.id), 0),
               {_initial_tier_sql()}, c.region, l.collector_staff_id,
               CASE WHEN l.collector_staff_id IS NULL THEN NULL ELSE :now END, :now
        FROM lending_loan l
        JOIN lending_contract ct ON ct.id = l.contract_id
        JOIN lending_product_version v ON v.id = ct.product_version_id
        JOIN customer c ON c.id = l.customer_id
        WHERE l.status = 'active' AND l.bucket <> 'C'
          AND NOT EXISTS (SELECT 1 FROM postloan_case x WHERE x.loan_id = l.id
                          AND (x.status = 'open' OR x.close_reason = 'written_off'))
        ORDER BY l.id
    """), {"d": day, "now": clock.now()}).rowcount


def refresh(session: Session, day: date) -> list[int]:
    """Refresh the figures of today's rolled-over loans' open cases; returns the ids released by a bucket move."""
    d = _d(session)
    moved = list(session.execute(select(CollectionCase.id, CollectionCase.rule_id).join(
        Loan, Loan.id == CollectionCase.loan_id).where(CollectionCase.status == "open", Loan.rolled_over_date == day,
                                                        Loan.bucket != CollectionCase.bucket,
                                                        CollectionCase.rule_id.is_not(None))))
    # the figures computed once per loan (one pass over its bills), only the cases whose figures change written
    session.execute(text(f"""
        UPDATE postloan_case SET bucket = x.bucket, overdue_days = x.overdue_days, overdue_amount = x.overdue_amount,
                                 outstanding_amount = x.outstanding_amount
        FROM (SELECT l.id AS loan_id, l.bucket, l.overdue_days,
                     COALESCE(SUM(CASE WHEN i.status = 'overdue' THEN {_OWED} END), 0) AS overdue_amount,
                     COALESCE(SUM({_OWED}), 0) AS outstanding_amount
              FROM lending_loan l LEFT JOIN lending_loan_installment i ON i.loan_id = l.id
              WHERE l.rolled_over_date = {d} AND l.status = 'active'
              GROUP BY l.id, l.bucket, l.overdue_days) x
        WHERE postloan_case.loan_id = x.loan_id AND postloan_case.status = 'open'
          AND (postloan_case.bucket <> x.bucket OR postloan_case.overdue_days <> x.overdue_days
               OR postloan_case.overdue_amount <> x.overdue_amount
               OR postloan_case.outstanding_amount <> x.outstanding_amount)
    """), {"d": day})
    if not moved:
        return []
    rules = {r.id: r for r in session.scalars(select(AllocationRule))}
    rule_of = dict(moved)
    released = []
    for case in allocation.open_cases(session, "all", list(rule_of)):
        rule = rules.get(rule_of[case.id])
        if rule is None or not matches(rule, case):
            released.append(case.id)
    return released


def close_cured(session: Session) -> int:
    rows = list(session.execute(select(CollectionCase.id, CollectionCase.loan_id, Loan.status, Loan.bucket,
                                       Loan.overdue_days).join(Loan, Loan.id == CollectionCase.loan_id)
                                .where(CollectionCase.status == "open")
                                .where((Loan.status == "closed") | (Loan.bucket == "C"))))
    if not rows:
        return 0
    now = clock.now()
    for reason in ("cured", "paid_off"):
        ids = [r[0] for r in rows if (r[2] == "closed") == (reason == "paid_off")]
        if ids:
            session.execute(update(CollectionCase).where(CollectionCase.id.in_(ids), CollectionCase.status == "open")
                            .values(status="closed", close_reason=reason, closed_at=now)
                            .execution_options(synchronize_session=False))
    session.execute(insert(CollectionAction), [
        {"loan_id": loan_id, "case_id": case_id, "kind": "note", "outcome": None,
         "note": "结案：" + ("已结清" if status == "closed" else "已还至正常"), "bucket": bucket,
         "overdue_days": days, "by_staff_id": None, "at": now}
        for case_id, loan_id, status, bucket, days in rows])
    return len(rows)


def stale(session: Session) -> dict[int, int]:
    """Cases held past their rule's ``reassign_after_days`` without a promise or a payment: id -> collector."""
    out: dict[int, int] = {}
    now = clock.now()
    open_promise = exists().where(CollectionPromise.case_id == CollectionCase.id, CollectionPromise.status == "open")
    for rule in session.scalars(select(AllocationRule).where(AllocationRule.reassign_after_days.is_not(None))):
        cutoff = now - timedelta(days=rule.reassign_after_days or 0)
        out.update(session.execute(select(CollectionCase.id, CollectionCase.collector_staff_id).where(
            CollectionCase.status == "open", CollectionCase.rule_id == rule.id,
            CollectionCase.collector_staff_id.is_not(None), CollectionCase.progress_at < cutoff, ~open_promise)).all())
    return out


def release(session: Session, case_ids: list[int], note: str) -> int:
    """Take the cases off their collectors' queues (to be allocated again); history rows written."""
    if not case_ids:
        return 0
    rows = list(session.execute(select(CollectionCase.id, CollectionCase.loan_id, CollectionCase.bucket,
                                       CollectionCase.overdue_days).where(CollectionCase.id.in_(case_ids),
                                                                          CollectionCase.status == "open")))
    session.execute(update(CollectionCase).where(CollectionCase.id.in_(case_ids), CollectionCase.status == "open")
                    .values(collector_staff_id=None, group_id=None, rule_id=None, assigned_at=None)
                    .execution_options(synchronize_session=False))
    session.execute(update(Loan).where(Loan.id.in_([r[1] for r in rows])).values(collector_staff_id=None)
                    .execution_options(synchronize_session=False))
    now = clock.now()
    session.execute(insert(CollectionAction), [
        {"loan_id": loan_id, "case_id": case_id, "kind": "assign", "outcome": None, "note": note, "bucket": bucket,
         "overdue_days": days, "by_staff_id": None, "at": now} for case_id, loan_id, bucket, days in rows])
    return len(rows)


def run(session: Session, day: date) -> int:
    """The close of business's collections step (see the module docstring); returns rows touched."""
    opened = open_cases(session, day)
    moved = refresh(session, day)
    closed = close_cured(session)
    release(session, moved, "账期变化，重新分配")
    previous = stale(session)
    release(session, list(previous), "超过规定天数无承诺、无还款，收回重新分配")
    raised = rerating.rerate_open(session)  # before allocating: a raised tier can match another rule
    assigned = allocation.allocate(session, avoid=previous)
    ids = list(session.scalars(select(CollectionPromise.loan_id).distinct().join(
        Loan, Loan.id == CollectionPromise.loan_id).where(CollectionPromise.status == "open",
                                                         Loan.rolled_over_date == day)))
    settled = sum(history.settle_promises(session, loan_id, day) for loan_id in ids)
    session.expire_all()
    return opened + closed + raised + assigned + settled


def on_loan_rolled_over(session: Session, loan: Loan, day: date) -> None:
    """One loan's rollover (the hourly job): its case opened or closed, allocated, promises decided."""
    if loan.status == "active" and loan.bucket != "C":
        if cases.written_off(session, loan.id):
            history.settle_promises(session, loan.id, day)
            return
        case = cases.open_case(session, loan, day)
        cases.refresh_figures(session, case, loan)
        session.flush()
        if case.collector_staff_id is None:
            allocation.allocate(session, case_ids=[case.id])
            session.refresh(loan)
    else:
        _close_if_open(session, loan)
    history.settle_promises(session, loan.id, day)


def _close_if_open(session: Session, loan: Loan) -> None:
    case = history.open_case_of(session, loan.id)
    if case is not None:
        cases.close_case(session, case.id, "paid_off" if loan.status == "closed" else "cured")


def on_payment_posted(session: Session, loan: Loan) -> None:
    history.settle_promises(session, loan.id)
    case = history.open_case_of(session, loan.id)
    if case is None:
        return
    if loan.status == "closed" or loan.bucket == "C":
        _close_if_open(session, loan)
        return
    cases.refresh_figures(session, case, loan)
    case.progress_at = clock.now()
    session.flush()
