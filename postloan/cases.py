"""Collection cases (催收案件): the service functions other parts (console, staff API, telephony, the agency
portal) call. Names here are stable.

- :func:`open_case` — the loan's open case, opened when it has none (the partial unique index decides a race)
- :func:`close_case` — cured (back to current), paid off, or written off (核销, a manager's decision: the loan
  gets no new case afterwards)
- :func:`get_case` — a case in the viewer's scope, else :class:`CaseNotFound` (404): a collector sees their own
  cases and the unassigned open ones (to take); managers their data scope
- :func:`take_case` — a collector takes an unassigned case: a conditional UPDATE, so of two at once one wins
  (:class:`CaseTaken`, 409)
- :func:`assign_case` — a manager (re)assigns
- :func:`record_action`, :func:`record_outcome`, :func:`record_promise` — the history, on the case
- :func:`queue`, :func:`history_of` — reads
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from crm import notify
from crm.models import Customer, Staff, StaffStatus
from crm.permissions import staff_holds
from crm.scope import Viewer, owner_filter
from lending.models import Application, Loan, LoanInstallment
from postloan import actions, history, rerating
from postloan.actions import COLLECTORS, MANAGERS, check_staff
from postloan.exceptions import CaseClosed, CaseNotFound, CaseTaken, CollectionInvalid
from postloan.models import (
    CASE_CLOSE_LABELS,
    OUTCOME_LABELS,
    RISK_TIER_LABELS,
    CollectionAction,
    CollectionCase,
    CollectionPromise,
)

__all__ = [
    "CaseRow", "assign_case", "written_off", "close_case", "get_case", "history_of", "open_case", "queue", "record_action",
    "record_outcome", "record_promise", "refresh_figures", "set_tier", "take_case", "visible_clause",
]

# a one-click outcome -> the action it writes
_OUTCOME_KIND = {"promise": "promise", "dispute": "call", "wrong_number": "call", "unreachable": "call",
                 "paid": "note"}


def _amounts(session: Session, loan_id: int) -> tuple[int, int]:
    """``(overdue, outstanding)`` fen of a loan (what the nightly run computes set-based)."""
    i = LoanInstallment
    total = (i.principal_amount + i.interest_amount + i.fee_amount + i.penalty_amount - i.paid_principal_amount
             - i.paid_interest_amount - i.paid_fee_amount - i.paid_penalty_amount)
    outstanding = session.scalar(select(func.coalesce(func.sum(total), 0)).where(i.loan_id == loan_id)) or 0
    overdue = session.scalar(select(func.coalesce(func.sum(total), 0)).where(i.loan_id == loan_id,
                                                                            i.status == "overdue")) or 0
    return int(overdue), int(outstanding)


def refresh_figures(session: Session, case: CollectionCase, loan: Loan) -> None:
    case.bucket, case.overdue_days = loan.bucket, loan.overdue_days
    case.overdue_amount, case.outstanding_amount = _amounts(session, loan.id)


def written_off(session: Session, loan_id: int) -> bool:
    """A loan whose case was written off (核销) gets no new case."""
    return session.scalar(select(CollectionCase.id).where(CollectionCase.loan_id == loan_id,
                                                          CollectionCase.close_reason == "written_off").limit(1)) is not None


def open_case(session: Session, loan: Loan, day: date | None = None) -> CollectionCase:
    """The loan's open case; a new one (with the loan's current collector, if any) when it has none."""
    case = history.open_case_of(session, loan.id)
    if case is not None:
        return case
    customer = session.get(Customer, loan.customer_id)
    product_id = session.scalar(select(Application.product_id).where(Application.id == loan.application_id))
    case = CollectionCase(loan_id=loan.id, customer_id=loan.customer_id, product_id=product_id, status="open",
                          opened_date=day or clock.today(), opened_at=clock.now(), bucket=loan.bucket,
                          overdue_days=loan.overdue_days, risk_tier=rerating.initial_tier(session, loan.application_id),
                          region=customer.region if customer else None,
                          collector_staff_id=loan.collector_staff_id,
                          assigned_at=clock.now() if loan.collector_staff_id else None, progress_at=clock.now())
    refresh_figures(session, case, loan)
    try:
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:  # opened meanwhile by another run
        existing = history.open_case_of(session, loan.id)
        if existing is None:
            raise
        return existing
    return case


def close_case(session: Session, case_id: int, reason: str, *, viewer: Viewer | None = None,
               note: str | None = None) -> CollectionCase:
    """Close an open case: ``cured`` / ``paid_off`` (the loan's state says so) or ``written_off`` (a manager)."""
    if reason not in CASE_CLOSE_LABELS:
        raise CollectionInvalid(f"未知的结案原因：{reason}", field="reason")
    if reason == "written_off" and (viewer is None or viewer.role not in MANAGERS):
        raise CollectionInvalid("只有经理或管理员可以核销结案", field="reason")
    case = get_case(session, viewer, case_id, for_update=True) if viewer else _locked(session, case_id)
    loan = session.get(Loan, case.loan_id)
    assert loan is not None
    if reason == "cured" and loan.bucket != "C":
        raise CollectionInvalid("贷款仍有逾期，不能按已还至正常结案", field="reason")
    if reason == "paid_off" and loan.status != "closed":
        raise CollectionInvalid("贷款尚未结清", field="reason")
    moved = session.execute(update(CollectionCase).where(CollectionCase.id == case.id, CollectionCase.status == "open")
                            .values(status="closed", close_reason=reason, closed_at=clock.now(),
                                    closed_by_staff_id=viewer.staff_id if viewer else None)
                            .execution_options(synchronize_session="fetch")).rowcount
    if moved != 1:
        raise CaseClosed()
    session.refresh(case)
    history.log(session, loan, "note", staff_id=viewer.staff_id if viewer else None, case_id=case.id,
                note=f"结案：{CASE_CLOSE_LABELS[reason]}" + (f"（{note.strip()[:200]}）" if note and note.strip() else ""))
    audit.record(session, "collections.case.close", entity_type="postloan_case", entity_id=case.id,
                 after={"reason": reason})
    return case


def _locked(session: Session, case_id: int) -> CollectionCase:
    case = session.scalar(select(CollectionCase).where(CollectionCase.id == case_id).with_for_update()
                          .execution_options(populate_existing=True))
    if case is None:
        raise CaseNotFound()
    return case


def visible_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Cases the viewer may open: their scope's, and (for collections staff) the unassigned open ones."""
    unassigned = and_(CollectionCase.collector_staff_id.is_(None), CollectionCase.status == "open")
    return or_(owner_filter(viewer, CollectionCase.collector_staff_id), unassigned)


def get_case(session: Session, viewer: Viewer | None, case_id: int, *, for_update: bool = False) -> CollectionCase:
    """A case in the viewer's scope; out of scope (or unknown) is :class:`CaseNotFound`."""
    if viewer is not None:
        check_staff(viewer)
    stmt = select(CollectionCase).where(CollectionCase.id == case_id)
    if viewer is not None:
        stmt = stmt.where(visible_clause(viewer))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    case = session.scalar(stmt)
    if case is None:
        raise CaseNotFound()
    return case


def _collector(session: Session, staff_id: int) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None or staff.status != StaffStatus.ACTIVE or not staff_holds(session, staff.role, COLLECTORS):
        raise CollectionInvalid("请选择在职的催收或风控人员", field="collector_id")
    return staff


def take_case(session: Session, case_id: int, *, viewer: Viewer) -> CollectionCase:
    """A collector takes an unassigned open case. Of two at once, one wins: the other gets :class:`CaseTaken`."""
    if viewer.role not in COLLECTORS:
        raise CollectionInvalid("只有催收或风控人员可以领取案件")
    case = session.get(CollectionCase, case_id)
    if case is None:
        raise CaseNotFound()
    if case.status != "open":
        raise CaseClosed()
    if case.collector_staff_id is not None:  # the loser of a race sees why (the case itself stays out of scope)
        raise CaseTaken()
    taken = session.execute(update(CollectionCase).where(
        CollectionCase.id == case.id, CollectionCase.status == "open", CollectionCase.collector_staff_id.is_(None))
        .values(collector_staff_id=viewer.staff_id, assigned_at=clock.now(), progress_at=clock.now())
        .execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        raise CaseTaken()
    session.refresh(case)
    loan = session.scalar(select(Loan).where(Loan.id == case.loan_id).with_for_update())
    assert loan is not None
    history.set_collector(session, loan, case, viewer.staff_id, f"{viewer.display_name} 领取案件",
                          by_staff_id=viewer.staff_id)
    return case


def assign_case(session: Session, case_id: int, collector_id: int | None, *, viewer: Viewer) -> CollectionCase:
    """A manager gives the case to a collector (or takes it off anyone's queue with None)."""
    if viewer.role not in MANAGERS:
        raise CollectionInvalid("只有经理或管理员可以分配催收案件")
    case = get_case(session, viewer, case_id, for_update=True)
    if case.status != "open":
        raise CaseClosed()
    target = _collector(session, collector_id) if collector_id is not None else None
    loan = session.scalar(select(Loan).where(Loan.id == case.loan_id).with_for_update())
    assert loan is not None
    before = case.collector_staff_id
    history.set_collector(session, loan, case, target.id if target else None,
                          f"分配给 {target.display_name}" if target else "取消分配", by_staff_id=viewer.staff_id)
    audit.record(session, "collections.case.assign", entity_type="postloan_case", entity_id=case.id,
                 before={"collector_staff_id": before}, after={"collector_staff_id": case.collector_staff_id})
    return case


def set_tier(session: Session, case_id: int, tier: str, *, viewer: Viewer, reason: str) -> CollectionCase:
    """A manager sets the case's risk tier by hand (up or down), with a reason: a note on the case, an audit
    entry, the collector told. The nightly early warning may raise it again when a rule fires."""
    if viewer.role not in MANAGERS:
        raise CollectionInvalid("只有经理或管理员可以调整风险等级")
    if tier not in RISK_TIER_LABELS:
        raise CollectionInvalid("请选择风险等级：低风险、中风险或高风险", field="risk_tier")
    reason = (reason or "").strip()
    if not reason:
        raise CollectionInvalid("请填写调整风险等级的原因", field="reason")
    case = get_case(session, viewer, case_id, for_update=True)
    if case.status != "open":
        raise CaseClosed()
    if case.risk_tier == tier:
        return case
    before, case.risk_tier = case.risk_tier, tier
    loan = session.get(Loan, case.loan_id)
    assert loan is not None
    text = f"风险等级由{RISK_TIER_LABELS[before]}调整为{RISK_TIER_LABELS[tier]}（手动：{reason[:200]}）"
    history.log(session, loan, "note", staff_id=viewer.staff_id, case_id=case.id, note=text)
    audit.record(session, "collections.case.set_tier", entity_type="postloan_case", entity_id=case.id,
                 before={"risk_tier": before}, after={"risk_tier": tier}, detail=reason[:200])
    if case.collector_staff_id and case.collector_staff_id != viewer.staff_id:
        notify.notify(session, case.collector_staff_id, "collections_rerate",
                      f"催收案件 #{case.id} 风险等级调整为{RISK_TIER_LABELS[tier]}", text, customer_id=case.customer_id)
    return case


def _worked(session: Session, viewer: Viewer, case_id: int) -> tuple[CollectionCase, Loan]:
    """The open case (locked) and its loan (locked), for a collector who holds it or a manager."""
    check_staff(viewer)
    case = get_case(session, viewer, case_id, for_update=True)
    if case.status != "open":
        raise CaseClosed()
    if viewer.role not in MANAGERS and case.collector_staff_id != viewer.staff_id:
        raise CollectionInvalid("请先领取该案件再登记催收记录")
    loan = session.scalar(select(Loan).where(Loan.id == case.loan_id).with_for_update()
                          .execution_options(populate_existing=True))
    assert loan is not None
    return case, loan


def record_action(session: Session, case_id: int, *, viewer: Viewer, kind: str, note: str | None = None,
                  outcome: str | None = None, promised_date: date | None = None,
                  promised_amount: int | None = None) -> CollectionAction:
    """Log a call, message, note or promise on the case (same rules as ``actions.log_action``)."""
    note, outcome, with_promise = actions.validated(kind, note, outcome, promised_date, promised_amount)
    case, loan = _worked(session, viewer, case_id)
    return actions.write_action(session, loan, kind=kind, staff_id=viewer.staff_id, note=note, outcome=outcome,
                                with_promise=with_promise, promised_date=promised_date,
                                promised_amount=promised_amount, case_id=case.id)


def record_outcome(session: Session, case_id: int, *, viewer: Viewer, outcome: str, note: str | None = None,
                   promised_date: date | None = None, promised_amount: int | None = None) -> CollectionAction:
    """One click (一键登记): promise (with date and amount), dispute, wrong number, unreachable, paid."""
    if outcome not in OUTCOME_LABELS:
        raise CollectionInvalid(f"未知的催收结果：{outcome}", field="outcome")
    kind = _OUTCOME_KIND[outcome]
    if kind != "promise" and (promised_date is not None or promised_amount is not None):
        promised_date = promised_amount = None  # the amount boxes belong to the promise button only
    text = note if kind != "note" else (note or OUTCOME_LABELS[outcome])
    return record_action(session, case_id, viewer=viewer, kind=kind, note=text, outcome=OUTCOME_LABELS[outcome],
                         promised_date=promised_date, promised_amount=promised_amount)


def record_promise(session: Session, case_id: int, *, viewer: Viewer, promised_date: date | None,
                   promised_amount: int | None, note: str | None = None) -> CollectionPromise:
    action = record_outcome(session, case_id, viewer=viewer, outcome="promise", note=note,
                            promised_date=promised_date, promised_amount=promised_amount)
    promise = session.scalar(select(CollectionPromise).where(CollectionPromise.action_id == action.id))
    assert promise is not None
    return promise


# --- reads -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseRow:
    case: CollectionCase
    customer_name: str | None
    phone_masked: str | None
    collector_name: str | None


def queue(session: Session, viewer: Viewer, *, status: str = "open", bucket: str | None = None,
          mine: bool = False, unassigned: bool = False, risk_tier: str | None = None, limit: int = 50,
          offset: int = 0) -> list[CaseRow]:
    """The viewer's cases (their scope's; with ``unassigned`` the pool waiting to be taken), longest overdue first
    (one index range scan for a collector's own queue)."""
    stmt = queue_query(viewer, status=status, bucket=bucket, mine=mine, unassigned=unassigned, risk_tier=risk_tier)
    stmt = stmt.order_by(CollectionCase.overdue_days.desc(), CollectionCase.id.desc()).limit(limit).offset(offset)
    return [CaseRow(case, name, phone, collector) for case, name, phone, collector in session.execute(stmt)]


def queue_query(viewer: Viewer, *, status: str = "open", bucket: str | None = None, mine: bool = False,
                unassigned: bool = False, risk_tier: str | None = None) -> Select[Any]:
    """The case queue's SELECT (case, customer name, masked phone, collector name; no order): page and export."""
    check_staff(viewer)
    c = CollectionCase
    stmt = (select(c, Customer.name, Customer.phone_masked, Staff.display_name)
            .join(Customer, Customer.id == c.customer_id).outerjoin(Staff, Staff.id == c.collector_staff_id)
            .where(c.status == status))
    if unassigned:  # the pool, open to every collections staff member (to take)
        stmt = stmt.where(c.collector_staff_id.is_(None))
    else:  # no OR with the pool here: a collector's queue stays one range of ix_postloan_case_queue
        stmt = stmt.where(owner_filter(viewer, c.collector_staff_id))
    if mine:
        stmt = stmt.where(c.collector_staff_id == viewer.staff_id)
    if bucket:
        stmt = stmt.where(c.bucket == bucket)
    if risk_tier:
        stmt = stmt.where(c.risk_tier == risk_tier)
    return stmt


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str
    outcome: str | None
    note: str | None
    staff_name: str | None
    bucket: str
    promise: CollectionPromise | None


def history_of(session: Session, case: CollectionCase) -> list[HistoryEntry]:
    """Every assignment, action and promise of the case, newest first."""
    promises = {p.action_id: p for p in session.scalars(select(CollectionPromise).where(
        CollectionPromise.case_id == case.id))}
    rows = session.execute(select(CollectionAction, Staff.display_name).outerjoin(
        Staff, Staff.id == CollectionAction.by_staff_id).where(CollectionAction.case_id == case.id)
        .order_by(CollectionAction.at.desc(), CollectionAction.id.desc()))
    return [HistoryEntry(a.at, a.kind, a.outcome, a.note, name, a.bucket, promises.get(a.id)) for a, name in rows]
