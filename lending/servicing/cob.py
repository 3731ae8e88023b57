"""Nightly close of business (日终批处理, COB): bill rollover, penalty, overdue days and buckets, interest
accrual, collections assignment and reminders for every active loan, set-based in SQL, one business date at a time.

Each business date runs the steps below in order, each in its own transaction together with its
``CobStep(business_date, step)`` row: a run killed anywhere has either done a step and recorded it or done
none of it, and the next run resumes at the first step not recorded (nothing is applied twice). Every step is
also a recomputation (the penalty is recomputed from the repayments, not added to), so doing one again changes
nothing. :func:`close_business` catches up: it runs every business date after the last one completed, up to
today, oldest first (a first run starts at today).

- ``claim``: the active loans with a bill due before the date and not yet rolled over for it get
  ``rolled_over_date`` = the date (the same claim as :func:`lending.servicing.rollover.roll_over`; loans the
  hourly rollover already did stay as they are).
- ``installments``: for the claimed loans, every bill's ``penalty_through_date``; each unpaid bill's status
  (overdue after the grace days) and penalty, ``max(paid penalty, unpaid principal at the due date × daily
  rate × days overdue)`` rounded once, in integer arithmetic. That is :func:`lending.servicing.arithmetic.
  penalty_exact` exactly when no principal of the bill was paid after its due date and the product's terms
  are plain (half-up rounding, a daily or 360/365-day rate); every other claimed loan is an exception.
- ``exceptions``: those loans go through the per-loan rollover body (:func:`lending.servicing.rollover.
  roll_one`), the same Python the hourly rollover runs.
- ``loans``: overdue days (from the first unpaid bill, when it is overdue) and bucket; an audit entry for each
  bucket that changed.
- ``accrual``: the interest accrued on the date (利息计提) per product version, one INSERT … SELECT
  (:func:`accrual`).
- ``collections``: the hooks of ``events.COB_COLLECTIONS`` (``postloan.nightly``: cases opened and closed, newly
  overdue loans given to collectors, open promises to pay of the claimed loans decided).
- ``reminders``: reminder rows of the date (``lending.servicing.reminders``), one per bill and kind.

The results equal the per-loan rollover's (tests compare them).
"""

# ruff: noqa: S608 - the SQL text formats in only this module's own dialect fragments; every value is bound
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from core import audit, clock
from core.audit import AuditLog
from core.db import unit_of_work
from core.money import Rounding
from lending.models import CobStep, Loan, ProductVersion
from lending.servicing import reminders, rollover
from lending.servicing.arithmetic import bucket
from lending.servicing.events import COB_COLLECTIONS, ROLLOVER_TASK

__all__ = ["STEPS", "accruals", "bucket_sql", "close_business", "completed_through", "date_param", "days_sql", "run_date"]

COB_TASK = "lending.close_of_business"
DONE = "done"


def days_sql(session: Session, later: str, earlier: str) -> str:
    """SQL for the whole days from ``earlier`` to ``later`` (dates)."""
    if session.get_bind().dialect.name == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def date_param(session: Session) -> str:
    return "CAST(:d AS DATE)" if session.get_bind().dialect.name == "postgresql" else ":d"


# --- claim -------------------------------------------------------------------------------------------------


def claim(session: Session, day: date) -> int:
    d = date_param(session)
    # the candidates come from the partial index of unpaid bills (a few per cent of the book), joined to the
    # loans by primary key; the planner, estimating status and due date independently, otherwise read every
    # bill due before the date (paid ones included) through the plain due-date index
    return session.execute(text(f"""
        UPDATE lending_loan SET rolled_over_date = {d}
        FROM (SELECT DISTINCT loan_id FROM lending_loan_installment WHERE status <> 'paid' AND due_date < {d}) x
        WHERE lending_loan.id = x.loan_id AND lending_loan.status = 'active'
          AND (lending_loan.rolled_over_date IS NULL OR lending_loan.rolled_over_date < {d})
    """), {"d": day}).rowcount


# --- installments ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Terms:
    version_id: int
    num: int  # the daily penalty rate is num / den (exact)
    den: int
    grace: int
    quantum: int
    plain: bool  # computable in SQL


def _terms(session: Session) -> list[_Terms]:
    out = []
    for v in session.scalars(select(ProductVersion)):
        rate = Fraction(v.penalty_rate or 0)
        plain = Rounding(v.rounding) is Rounding.HALF_UP
        if v.penalty_basis == "annual":
            if v.days_in_year in ("360", "365"):
                rate /= int(v.days_in_year)
            else:
                plain = False  # actual/actual splits the days by calendar year: Python
        out.append(_Terms(v.id, rate.numerator, rate.denominator, int(v.overdue_grace_days or 0),
                          10 ** (2 - int(v.currency_digits)), plain))
    return out


def _terms_cte(terms: list[_Terms]) -> tuple[str, dict[str, int]]:
    rows, params = [], {}
    for n, t in enumerate(terms or [_Terms(0, 0, 1, 0, 1, False)]):
        rows.append(f"(CAST(:v{n} AS BIGINT), CAST(:n{n} AS BIGINT), CAST(:e{n} AS BIGINT), CAST(:g{n} AS BIGINT),"
                    f" CAST(:q{n} AS BIGINT), CAST(:p{n} AS BIGINT))")
        params.update({f"v{n}": t.version_id, f"n{n}": t.num, f"e{n}": t.den, f"g{n}": t.grace, f"q{n}": t.quantum,
                       f"p{n}": int(t.plain)})
    return f"t(version_id, num, den, grace, quantum, plain) AS (VALUES {', '.join(rows)})", params


_STANDING = """r.kind IN ('repayment', 'waiver')
               AND NOT EXISTS (SELECT 1 FROM lending_repayment x WHERE x.reversal_of_id = r.id)"""


def installments(session: Session, day: date) -> int:
    d = date_param(session)
    cte, params = _terms_cte(_terms(session))
    params["d"] = day
    overdue_days = days_sql(session, d, "i.due_date")
    # one pass over the claimed loans' bills: every one gets the date; the unpaid bills of plain terms with no
    # principal paid after the due date get their status and penalty too (the figures precomputed once)
    # (the CTEs inside the FROM: a statement that starts with WITH gets no row count from SQLite's driver)
    return session.execute(text(f"""
        UPDATE lending_loan_installment SET
          penalty_through_date = {d},
          status = CASE WHEN x.overdue IS NULL THEN lending_loan_installment.status
                        WHEN x.overdue THEN 'overdue' ELSE 'pending' END,
          penalty_amount = COALESCE(x.penalty, lending_loan_installment.penalty_amount)
        FROM (WITH {cte},
        bill AS (
          SELECT i.id, {overdue_days} AS days, t.num, t.den, t.grace, t.quantum, i.paid_penalty_amount,
                 i.principal_amount - CAST(COALESCE((
                   SELECT SUM(a.amount) FROM lending_repayment_allocation a
                   JOIN lending_repayment r ON r.id = a.repayment_id
                   WHERE a.installment_id = i.id AND a.component = 'principal' AND r.repayment_date <= i.due_date
                     AND {_STANDING}), 0) AS BIGINT) AS base
          FROM lending_loan_installment i
          JOIN lending_loan l ON l.id = i.loan_id
          JOIN lending_contract c ON c.id = l.contract_id
          JOIN t ON t.version_id = c.product_version_id
          WHERE l.rolled_over_date = {d} AND l.status = 'active' AND i.status <> 'paid' AND t.plain = 1
            AND (i.due_date >= {d} OR NOT EXISTS (
              SELECT 1 FROM lending_repayment_allocation a JOIN lending_repayment r ON r.id = a.repayment_id
              WHERE a.installment_id = i.id AND a.component = 'principal' AND r.repayment_date > i.due_date
                AND r.repayment_date < {d} AND {_STANDING}))
        ),
        figure AS (
          SELECT id, days > grace AS overdue, paid_penalty_amount,
                 CASE WHEN days > grace
                      THEN ((2 * base * num * days + den * quantum) / (2 * den * quantum)) * quantum ELSE 0 END
                   AS penalty
          FROM bill
        )
        SELECT i.id, f.overdue, CASE WHEN f.penalty > f.paid_penalty_amount THEN f.penalty
                                     ELSE f.paid_penalty_amount END AS penalty
        FROM lending_loan_installment i
        JOIN lending_loan l ON l.id = i.loan_id AND l.rolled_over_date = {d} AND l.status = 'active'
        LEFT JOIN figure f ON f.id = i.id) x
        WHERE x.id = lending_loan_installment.id
    """), params).rowcount


# --- exceptions --------------------------------------------------------------------------------------------


def exception_ids(session: Session, day: date) -> list[int]:
    """Claimed loans whose unpaid bills the SQL does not compute: terms it cannot, or principal paid late.

    Principal paid after a bill's due date and before the date can only be on a bill due before the date: those
    bills are read through the unpaid-bills index (a few per cent of the book), not every unpaid bill of the
    claimed loans; the loans of terms the SQL cannot compute are looked for only when such terms exist."""
    d = date_param(session)
    terms = _terms(session)
    late = f"""
        SELECT i.loan_id AS id FROM lending_loan_installment i
        JOIN lending_loan l ON l.id = i.loan_id AND l.rolled_over_date = {d} AND l.status = 'active'
        WHERE i.status <> 'paid' AND i.due_date < {d} AND EXISTS (
              SELECT 1 FROM lending_repayment_allocation a JOIN lending_repayment r ON r.id = a.repayment_id
              WHERE a.installment_id = i.id AND a.component = 'principal' AND r.repayment_date > i.due_date
                AND r.repayment_date < {d} AND {_STANDING})"""
    params: dict[str, object] = {"d": day}
    odd = [t.version_id for t in terms if not t.plain]
    if odd:
        late += f"""
        UNION
        SELECT l.id FROM lending_loan l JOIN lending_contract c ON c.id = l.contract_id
        WHERE l.rolled_over_date = {d} AND l.status = 'active' AND c.product_version_id IN :odd
          AND EXISTS (SELECT 1 FROM lending_loan_installment i WHERE i.loan_id = l.id AND i.status <> 'paid')"""
        params["odd"] = odd
    stmt = text(f"SELECT DISTINCT id FROM ({late}) x ORDER BY id")
    if odd:
        stmt = stmt.bindparams(bindparam("odd", expanding=True))
    return list(session.scalars(stmt, params))


def exceptions(session: Session, day: date) -> int:
    ids = exception_ids(session, day)
    for loan_id in ids:
        loan = session.scalar(select(Loan).where(Loan.id == loan_id).with_for_update()
                              .execution_options(populate_existing=True))
        assert loan is not None
        rollover.roll_one(session, loan, day)
    return len(ids)


# --- loans -------------------------------------------------------------------------------------------------


# the bucket of a number of overdue days in SQL: the bounds of ``arithmetic.bucket`` (checked at import)
_BUCKET_BOUNDS = ((0, "C"), (30, "M1"), (60, "M2"), (90, "M3"))
_BUCKET_ABOVE = "M3+"
assert all(bucket(n) == b and bucket(n + 1) != b for n, b in _BUCKET_BOUNDS) and bucket(91) == _BUCKET_ABOVE


def bucket_sql(days: str) -> str:
    return ("CASE " + " ".join(f"WHEN {days} <= {n} THEN '{b}'" for n, b in _BUCKET_BOUNDS)
            + f" ELSE '{_BUCKET_ABOVE}' END")


def loans(session: Session, day: date) -> int:
    """Overdue days and bucket of the claimed loans, set-based: the figures computed once per loan (from its
    unpaid bills), only the loans whose figures change written (one UPDATE … FROM), an audit entry for each
    bucket that changed."""
    d = date_param(session)
    days = days_sql(session, d, "i.due_date")
    figures = f"""
        SELECT f.id, f.old_bucket, f.od, {bucket_sql("f.od")} AS new_bucket FROM (
          SELECT l.id, l.bucket AS old_bucket, l.overdue_days AS old_days,
                 COALESCE(MAX(CASE WHEN i.status = 'overdue' THEN {days} END), 0) AS od
          FROM lending_loan l JOIN lending_loan_installment i ON i.loan_id = l.id AND i.status <> 'paid'
          WHERE l.rolled_over_date = {d} AND l.status = 'active'
          GROUP BY l.id, l.bucket, l.overdue_days) f
        WHERE f.old_days <> f.od OR f.old_bucket <> {bucket_sql("f.od")}"""
    write = f"UPDATE lending_loan SET overdue_days = x.od, bucket = x.new_bucket FROM ({figures}) x WHERE x.id = lending_loan.id"
    if session.get_bind().dialect.name == "postgresql":  # one pass: the old bucket comes back from the FROM list
        changed = sorted(session.execute(text(write + " RETURNING x.id, x.old_bucket, x.od, x.new_bucket"),
                                         {"d": day}).all())
    else:  # SQLite's RETURNING sees only the updated table: the changed rows read first
        changed = session.execute(text(figures + " ORDER BY f.id"), {"d": day}).all()
        if changed:
            session.execute(text(write), {"d": day})
    if not changed:
        return 0
    actor = audit.Actor.system(ROLLOVER_TASK)
    now = clock.now()
    entries = [{"at": now, "actor_kind": actor.kind, "actor_id": None, "actor_label": actor.label,
                "action": "lending.loan.bucket", "entity_type": "lending_loan", "entity_id": str(loan_id),
                "before": {"bucket": old}, "after": {"bucket": new, "overdue_days": od}}
               for loan_id, old, od, new in changed if old != new]
    if entries:
        session.execute(insert(AuditLog), entries)
    return len(changed)


# --- accrual -----------------------------------------------------------------------------------------------

MICRO = 1_000_000  # the day's share of a period's interest is summed in millionths of a fen, then rounded once


def accrual(session: Session, day: date) -> int:
    """The interest accrued on ``day`` (计提), per product version: every active loan's current period (the bill
    whose period, from the previous due date — or the loan's start — to its due date, contains ``day``) gives
    its interest ÷ the period's days; summed exactly (to a millionth of a fen, integer arithmetic on both
    databases) and rounded half-up once per version. One INSERT … SELECT; the rows are the step's.

    Periods are monthly except a bullet loan's one period (``versions.current_schedule``), so a current bill
    is due within 31 days of ``day`` unless the loan is a bullet: the monthly bills are found through the
    due-date index in that window, the bullet loans' through their product version — never a scan of every
    bill of the book."""
    d = date_param(session)
    window = "CAST(:d31 AS DATE)" if session.get_bind().dialect.name == "postgresql" else ":d31"
    start = "COALESCE(p.due_date, l.start_date)"
    days = days_sql(session, "i.due_date", start)
    current = f"""
        SELECT c.product_version_id AS version_id, (i.interest_amount * {MICRO}) / {days} AS micro
        FROM lending_loan_installment i
        JOIN lending_loan l ON l.id = i.loan_id AND l.status = 'active'
        JOIN lending_contract c ON c.id = l.contract_id
        JOIN lending_product_version v ON v.id = c.product_version_id
        LEFT JOIN lending_loan_installment p ON p.loan_id = i.loan_id AND p.number = i.number - 1
        WHERE {start} < {d} AND """
    # PostgreSQL's SUM of BIGINT is NUMERIC: cast back so that the rounding stays integer division (rounded once)
    rows = session.execute(text(f"""
        INSERT INTO lending_interest_accrual (business_date, product_version_id, loans, accrued_amount, created_at)
        SELECT {d}, version_id, COUNT(*), (CAST(SUM(micro) AS BIGINT) + {MICRO // 2}) / {MICRO}, :now
        FROM ({current} i.due_date >= {d} AND i.due_date <= {window} AND v.repayment_method <> 'bullet'
              UNION ALL
              {current} i.due_date >= {d} AND v.repayment_method = 'bullet') x
        GROUP BY version_id
    """), {"d": day, "d31": day + timedelta(days=31), "now": clock.now()}).rowcount
    return max(rows, 0)


def accruals(session: Session, day: date) -> dict[int, tuple[int, int]]:
    """The accrual of ``day``: product version id → (loans, fen)."""
    return {v: (n, fen) for v, n, fen in session.execute(text(
        f"SELECT product_version_id, loans, accrued_amount FROM lending_interest_accrual WHERE business_date = "
        f"{date_param(session)}"), {"d": day})}


# --- collections -------------------------------------------------------------------------------------------


def collections_step(session: Session, day: date) -> int:
    """Collections' nightly work (``postloan`` joins through ``events.COB_COLLECTIONS``): cases, allocation,
    promises. Nothing when no collections package is loaded."""
    return sum(hook(session, day) for hook in COB_COLLECTIONS)


STEPS: dict[str, Callable[[Session, date], int]] = {
    "claim": claim,
    "installments": installments,
    "exceptions": exceptions,
    "loans": loans,
    "accrual": accrual,
    "collections": collections_step,
    "reminders": reminders.create_for,
    DONE: lambda _session, _day: 0,
}


# PostgreSQL, for a step's transaction only: hash joins and sorts over a whole book in memory (the server's
# default 4 MB spilled the accrual's joins to 64 temporary batches), and no JIT compilation (each statement
# runs once a night: compiling it cost more than it saved)
_PG_STEP_SETTINGS = {"work_mem": "256MB", "jit": "off"}


def _tune(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        for name, value in _PG_STEP_SETTINGS.items():
            session.execute(text(f"SET LOCAL {name} = '{value}'"))


def run_date(day: date, *, stop_after: str | None = None) -> dict[str, int]:
    """Run the steps of ``day`` not yet recorded, each in its own unit of work; returns rows per step run.
    ``stop_after`` (tests, the bench's kill): return after that step, as a killed run would."""
    done: dict[str, int] = {}
    for name, step in STEPS.items():
        with unit_of_work() as session:
            if session.get(CobStep, (day, name)) is not None:
                continue
            _tune(session)
            started = clock.now()
            rows = step(session, day)
            session.add(CobStep(business_date=day, step=name, rows=rows, started_at=started, done_at=clock.now()))
        done[name] = rows
        if name == stop_after:
            break
    return done


def completed_through(session: Session) -> date | None:
    """The last business date whose close of business completed."""
    return session.scalar(select(func.max(CobStep.business_date)).where(CobStep.step == DONE))


def close_business(until: date | None = None) -> list[date]:
    """Run the close of business for every business date after the last completed one up to ``until``
    (default today), oldest first; the first run ever starts at ``until``. Returns the dates run."""
    until = until or clock.today()
    with unit_of_work() as session:
        last = completed_through(session)
        started = session.scalar(select(func.min(CobStep.business_date)).where(
            CobStep.business_date > (last or date.min)))
    day = started or (last + timedelta(days=1) if last else until)
    out = []
    while day <= until:
        run_date(day)
        out.append(day)
        day += timedelta(days=1)
    return out

