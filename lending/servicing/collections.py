"""Collections (催收): the queue of overdue loans, assignment, the action log, promises to pay.

- The queue: active loans whose bucket is not C, within the viewer's scope (``lending.servicing.loans``):
  a collector (催收, data scope own) sees the loans assigned to them; managers and admins their scope (all).
- Assignment: the bill rollover gives a newly overdue, unassigned loan to the active collector with the
  fewest overdue loans (ties: lowest id); a manager may reassign. Each assignment is logged.
- Actions (call, message, promise, note) are an append-only log with the loan's bucket at the time.
- A promise to pay (承诺还款) is kept when the repayments that stand, value-dated from the day it was made to
  the promised date, reach the promised amount; it is broken when that date has passed without. Decided once
  (``open`` → ``kept`` | ``broken`` by a conditional UPDATE).
- The customer's phone is masked in every list; revealing it goes through ``core.audit.reveal`` (audit-logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import audit, clock, pii
from core.errors import PermissionDenied, ValidationFailed
from core.money import format_yuan
from crm import customers
from crm.models import Customer, Role, Staff, StaffStatus
from crm.scope import Viewer
from lending.models import ACTION_KIND_LABELS, CollectionAction, CollectionPromise, Loan, Repayment
from lending.servicing import loans as loan_reads
from lending.servicing import state
from lending.servicing.exceptions import CollectionInvalid

__all__ = [
    "COLLECTORS", "MANAGERS", "QueueRow", "actions", "assign", "auto_assign", "log_action", "promises", "queue",
    "reveal_phone", "settle_promises",
]

COLLECTORS = frozenset({Role.COLLECTOR, Role.RISK})  # may be assigned loans and work them
MANAGERS = frozenset({Role.MANAGER, Role.ADMIN})  # see their scope (all), assign
LOGGED_KINDS = ("call", "message", "promise", "note")


def _check_staff(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in COLLECTORS | MANAGERS:
        raise PermissionDenied("只有催收、风控、经理或管理员可以处理催收")


@dataclass(frozen=True)
class QueueRow:
    loan: Loan
    customer_name: str | None
    phone_masked: str | None
    contract_number: str
    overdue_amount: int
    outstanding_amount: int
    collector_name: str | None
    last_action_at: object
    promise_status: str | None  # of the latest promise: open | kept | broken


def queue(session: Session, viewer: Viewer, *, bucket: str | None = None, mine: bool = False,
          broken_only: bool = False, limit: int = 200) -> list[QueueRow]:
    _check_staff(viewer)
    stmt = loan_reads.loans_query(viewer, status="active", bucket=bucket or "overdue",
                                  collector_id=viewer.staff_id if mine else None)
    last_action = (select(func.max(CollectionAction.at)).where(CollectionAction.loan_id == Loan.id)
                   .correlate(Loan).scalar_subquery())
    latest_promise = (select(CollectionPromise.status).where(CollectionPromise.loan_id == Loan.id)
                      .order_by(CollectionPromise.id.desc()).limit(1).correlate(Loan).scalar_subquery())
    stmt = stmt.add_columns(last_action, latest_promise, Staff.display_name).outerjoin(
        Staff, Staff.id == Loan.collector_staff_id)
    if broken_only:
        stmt = stmt.where(latest_promise == "broken")
    stmt = stmt.order_by(Loan.overdue_days.desc(), Loan.id).limit(limit)
    return [QueueRow(loan, customer.name, customer.phone_masked, number, int(overdue), int(outstanding), name,
                     last_at, promise)
            for loan, customer, number, outstanding, overdue, last_at, promise, name in session.execute(stmt)]


def _log(session: Session, loan: Loan, kind: str, *, staff_id: int | None, outcome: str | None = None,
         note: str | None = None) -> CollectionAction:
    action = CollectionAction(loan_id=loan.id, kind=kind, outcome=outcome, note=note, bucket=loan.bucket,
                              overdue_days=loan.overdue_days, by_staff_id=staff_id, at=clock.now())
    session.add(action)
    session.flush()
    return action


def auto_assign(session: Session, loan: Loan) -> Staff | None:
    """Give an unassigned loan to the active collector holding the fewest overdue loans; None if nobody is."""
    if loan.collector_staff_id is not None:
        return None
    load = (select(func.count()).select_from(Loan).where(Loan.collector_staff_id == Staff.id,
                                                         Loan.status == "active", Loan.bucket != "C")
            .correlate(Staff).scalar_subquery())
    staff = session.scalar(select(Staff).where(Staff.role == Role.COLLECTOR, Staff.status == StaffStatus.ACTIVE)
                           .order_by(load, Staff.id).limit(1))
    if staff is None:
        return None
    loan.collector_staff_id = staff.id
    session.flush()
    _log(session, loan, "assign", staff_id=None, note=f"自动分配给 {staff.display_name}")
    return staff


def assign(session: Session, loan_id: int, collector_id: int | None, *, viewer: Viewer) -> Loan:
    """A manager (re)assigns a loan to a collector (or takes it off anyone's queue with None)."""
    if viewer.role not in MANAGERS:
        raise PermissionDenied("只有经理或管理员可以分配催收")
    loan = loan_reads.get_loan(session, viewer, loan_id, for_update=True)
    target = None
    if collector_id is not None:
        target = session.get(Staff, collector_id)
        if target is None or target.status != StaffStatus.ACTIVE or target.role not in COLLECTORS:
            raise CollectionInvalid("请选择在职的催收或风控人员", field="collector_id")
    before = loan.collector_staff_id
    loan.collector_staff_id = target.id if target else None
    session.flush()
    _log(session, loan, "assign", staff_id=viewer.staff_id,
         note=f"分配给 {target.display_name}" if target else "取消分配")
    audit.record(session, "lending.collection.assign", entity_type="lending_loan", entity_id=loan.id,
                 before={"collector_staff_id": before}, after={"collector_staff_id": loan.collector_staff_id})
    return loan


def log_action(session: Session, loan_id: int, *, viewer: Viewer, kind: str, note: str | None = None,
               outcome: str | None = None, promised_date: date | None = None,
               promised_amount: int | None = None) -> CollectionAction:
    """Log a call, message, note or promise to pay on a loan in the viewer's queue.

    A promised date or amount typed on a call or message is a promise made in that call: both are
    required then, and the promise is kept with the call (never dropped). A note carries no promise."""
    _check_staff(viewer)
    if kind not in LOGGED_KINDS:
        raise CollectionInvalid(f"未知的催收动作：{kind}（可选：{'、'.join(ACTION_KIND_LABELS[k] for k in LOGGED_KINDS)}）",
                                field="kind")
    note = (note or "").strip()[:500] or None
    outcome = (outcome or "").strip()[:40] or None
    if kind == "note" and not note:
        raise CollectionInvalid("请填写备注内容", field="note")
    with_promise = kind == "promise" or promised_date is not None or promised_amount is not None
    if with_promise and kind == "note":
        raise CollectionInvalid("备注不能附带承诺还款：请选择「承诺还款」或「电话」记录客户的承诺", field="kind")
    loan = loan_reads.get_loan(session, viewer, loan_id, for_update=True)
    if with_promise:
        if promised_date is None or promised_date < clock.today():
            raise CollectionInvalid("请填写承诺还款日期（不早于今天）", field="promised_date")
        if isinstance(promised_amount, bool) or not isinstance(promised_amount, int) or promised_amount <= 0:
            raise CollectionInvalid("请填写承诺还款金额", field="promised_amount")
    action = _log(session, loan, kind, staff_id=viewer.staff_id, outcome=outcome, note=note)
    if with_promise:
        assert promised_date is not None and promised_amount is not None
        session.add(CollectionPromise(loan_id=loan.id, action_id=action.id, made_date=clock.today(),
                                      promised_date=promised_date, promised_amount=promised_amount, status="open",
                                      by_staff_id=viewer.staff_id))
        session.flush()
        customers.record_event(session, loan.customer_id, "lending_promise",
                               f"承诺 {promised_date.isoformat()} 前还款 {format_yuan(promised_amount)}（贷款 #{loan.id}）",
                               actor_staff_id=viewer.staff_id, ref_type="lending_loan", ref_id=loan.id)
    return action


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
    session.flush()
    return moved


def actions(session: Session, loan_id: int) -> list[CollectionAction]:
    return list(session.scalars(select(CollectionAction).where(CollectionAction.loan_id == loan_id)
                                .order_by(CollectionAction.at.desc(), CollectionAction.id.desc())))


def promises(session: Session, loan_id: int) -> list[CollectionPromise]:
    return list(session.scalars(select(CollectionPromise).where(CollectionPromise.loan_id == loan_id)
                                .order_by(CollectionPromise.id.desc())))


def reveal_phone(session: Session, viewer: Viewer, loan_id: int, reason: str | None = None) -> str:
    """The borrower's full phone number for a call, audit-logged (``pii.reveal``)."""
    _check_staff(viewer)
    loan = loan_reads.get_loan(session, viewer, loan_id)
    customer = session.get(Customer, loan.customer_id)
    if customer is None or not customer.phone_enc:
        raise ValidationFailed("该客户没有手机号")
    return audit.reveal(session, pii.PHONE, customer.phone_enc, entity_type="customer", entity_id=customer.id,
                        reason=(reason or "").strip() or f"催收 贷款 #{loan.id}")
