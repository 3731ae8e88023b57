"""Collections work on a loan (催收, moved here from ``lending.servicing.collections``): the queue of overdue
loans, assignment, the action log, promises to pay. The case-level API is ``postloan.cases``; both write the
same history (``postloan.history``), onto the loan's open case when it has one.

- The queue: active loans whose bucket is not C, within the viewer's scope (``lending.servicing.loans``):
  a collector (催收, data scope own) sees the loans assigned to them; managers and admins their scope (all).
- Assignment: the nightly run (``postloan.nightly``) opens a case for a newly overdue loan and allocates it
  (``postloan.allocation``: the manager's rules, else the active collector with the fewest open cases, ties:
  lowest id); a manager may reassign. Each assignment is logged.
- Actions (call, message, promise, note) are an append-only log with the loan's bucket at the time.
- A promise to pay (承诺还款) is kept when the repayments that stand, value-dated from the day it was made to
  the promised date, reach the promised amount; it is broken when that date has passed without. Decided once
  (``open`` → ``kept`` | ``broken`` by a conditional UPDATE).
- The customer's phone is masked in every list; revealing it goes through ``core.audit.reveal`` (audit-logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import PermissionDenied
from crm.models import Role, Staff, StaffStatus
from crm.permissions import permission, staff_holds
from crm.scope import Viewer
from lending.models import Loan
from lending.servicing import loans as loan_reads
from postloan import history
from postloan.exceptions import CollectionInvalid
from postloan.models import ACTION_KIND_LABELS, CollectionAction, CollectionPromise

__all__ = [
    "CALLS_ALL", "COLLECTORS", "MANAGERS", "QueueRow", "actions", "assign", "check_staff", "log_action", "promises", "queue",
    "validated",
]

COLLECTORS = permission("collections.work", "催收作业", "可被分配逾期贷款与催收案件，记录催收行动",  # may be assigned loans
                        {Role.COLLECTOR, Role.RISK}, group="贷后")
MANAGERS = permission("collections.manage", "催收管理", "分配催收案件、维护催收规则、话术与委外",  # assign, see all
                      {Role.MANAGER, Role.ADMIN}, group="贷后")
CALLS_ALL = permission("collections.calls_all", "查看全部通话", "查看所有员工的通话记录、录音与状态，解除勿扰",
                       {Role.MANAGER, Role.ADMIN, Role.RISK}, group="贷后")
LOGGED_KINDS = ("call", "message", "promise", "note")


def check_staff(viewer: Viewer | None) -> None:
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
    check_staff(viewer)
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


def assign(session: Session, loan_id: int, collector_id: int | None, *, viewer: Viewer) -> Loan:
    """A manager (re)assigns a loan to a collector (or takes it off anyone's queue with None)."""
    if viewer.role not in MANAGERS:
        raise PermissionDenied("只有经理或管理员可以分配催收")
    loan = loan_reads.get_loan(session, viewer, loan_id, for_update=True)
    target = None
    if collector_id is not None:
        target = session.get(Staff, collector_id)
        if target is None or target.status != StaffStatus.ACTIVE or not staff_holds(session, target.role, COLLECTORS):
            raise CollectionInvalid("请选择在职的催收或风控人员", field="collector_id")
    before = loan.collector_staff_id
    history.set_collector(session, loan, history.open_case_of(session, loan.id, for_update=True),
                          target.id if target else None,
                          f"分配给 {target.display_name}" if target else "取消分配", by_staff_id=viewer.staff_id)
    audit.record(session, "lending.collection.assign", entity_type="lending_loan", entity_id=loan.id,
                 before={"collector_staff_id": before}, after={"collector_staff_id": loan.collector_staff_id})
    return loan


def validated(kind: str, note: str | None, outcome: str | None, promised_date: date | None,
              promised_amount: int | None) -> tuple[str | None, str | None, bool]:
    """``(note, outcome, with_promise)`` of an action to log, or a refusal (nothing written)."""
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
    if with_promise:
        if promised_date is None or promised_date < clock.today():
            raise CollectionInvalid("请填写承诺还款日期（不早于今天）", field="promised_date")
        if isinstance(promised_amount, bool) or not isinstance(promised_amount, int) or promised_amount <= 0:
            raise CollectionInvalid("请填写承诺还款金额", field="promised_amount")
    return note, outcome, with_promise


def write_action(session: Session, loan: Loan, *, kind: str, staff_id: int | None, note: str | None,
                 outcome: str | None, with_promise: bool, promised_date: date | None, promised_amount: int | None,
                 case_id: int | None = None) -> CollectionAction:
    action = history.log(session, loan, kind, staff_id=staff_id, outcome=outcome, note=note, case_id=case_id)
    if with_promise:
        assert promised_date is not None and promised_amount is not None
        history.add_promise(session, loan, action, promised_date=promised_date, promised_amount=promised_amount,
                            staff_id=staff_id)
    return action


def log_action(session: Session, loan_id: int, *, viewer: Viewer, kind: str, note: str | None = None,
               outcome: str | None = None, promised_date: date | None = None,
               promised_amount: int | None = None) -> CollectionAction:
    """Log a call, message, note or promise to pay on a loan in the viewer's queue.

    A promised date or amount typed on a call or message is a promise made in that call: both are
    required then, and the promise is kept with the call (never dropped). A note carries no promise."""
    check_staff(viewer)
    note, outcome, with_promise = validated(kind, note, outcome, promised_date, promised_amount)
    loan = loan_reads.get_loan(session, viewer, loan_id, for_update=True)
    return write_action(session, loan, kind=kind, staff_id=viewer.staff_id, note=note, outcome=outcome,
                        with_promise=with_promise, promised_date=promised_date, promised_amount=promised_amount)


def actions(session: Session, loan_id: int) -> list[CollectionAction]:
    return list(session.scalars(select(CollectionAction).where(CollectionAction.loan_id == loan_id)
                                .order_by(CollectionAction.at.desc(), CollectionAction.id.desc())))


def promises(session: Session, loan_id: int) -> list[CollectionPromise]:
    return list(session.scalars(select(CollectionPromise).where(CollectionPromise.loan_id == loan_id)
                                .order_by(CollectionPromise.id.desc())))
