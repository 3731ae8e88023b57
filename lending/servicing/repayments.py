"""Repayments (还款) and their reversal (冲正), decided by the database.

Booking (:func:`record_repayment`), in one unit of work under the loan's row lock:

1. The external reference (bank slip, channel serial) is unique in the database. The same reference
   again — a double click, a retried request, two clerks with the same slip — returns the repayment
   already booked when loan, amount, date and channel agree (idempotent), and is refused (409) otherwise.
2. The amount may not exceed what is payable on the value date: every installment due by then, their
   penalty as of that day, and the current period (当期). Beyond that is prepayment (提前还款), which is not
   offered here: refused with the figure, nothing written.
3. Write-off (冲销): oldest installment first; inside one, the contract's order (default penalty → fee →
   interest → principal). One ``RepaymentAllocation`` per (installment, component); the installment's
   ``paid_*`` follow, then :func:`lending.servicing.state.refresh` recomputes penalty, status, overdue days,
   bucket, and closes the loan when nothing is left (CRM stage → 已结清).
4. Value dates run forward: not in the future, not before the loan started, not before the latest repayment
   that stands (a later-booked earlier slip would rewrite the penalty already written off).

Reversal (:func:`reverse_repayment`): a ``reversal`` entry pointing at the repayment (unique: once) and the
negated allocations; the loan is recomputed as if the repayment never was (penalty included) and reopens
if it had closed. Both tables are append-only.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock, outbox
from core.errors import PermissionDenied
from core.money import format_yuan
from crm import customers
from crm.models import Role
from crm.scope import Viewer
from lending.models import REPAYMENT_CHANNEL_LABELS, Loan, LoanInstallment, Repayment, RepaymentAllocation
from lending.servicing import collections, state
from lending.servicing.arithmetic import allocate
from lending.servicing.events import LOAN_CLOSED_TASK, REPAYMENT_RECORDED_TASK, REPAYMENT_REVERSED_TASK
from lending.servicing.exceptions import (
    AlreadyReversed,
    LoanClosed,
    Overpayment,
    ReferenceTaken,
    RepaymentInvalid,
    RepaymentNotFound,
    ReversalRefused,
)
from lending.servicing.loans import get_loan

__all__ = ["CHANNELS", "RECORDERS", "payable", "record_repayment", "reverse_repayment"]

RECORDERS = frozenset({Role.FINANCE, Role.MANAGER, Role.ADMIN})
CHANNELS = tuple(REPAYMENT_CHANNEL_LABELS)
_PAID_COLUMN = {"principal": "paid_principal_amount", "interest": "paid_interest_amount",
                "fee": "paid_fee_amount", "penalty": "paid_penalty_amount"}


def _check_role(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in RECORDERS:
        raise PermissionDenied("只有财务、经理或管理员可以登记或冲正还款")


def _by_reference(session: Session, reference: str) -> Repayment | None:
    return session.scalar(select(Repayment).where(Repayment.external_reference == reference))


def _replay(existing: Repayment, loan_id: int, amount: int, day: date, channel: str) -> Repayment:
    """The same slip again: the booking already made, when it is the same booking; refused otherwise."""
    if (existing.loan_id, existing.amount, existing.repayment_date, existing.channel) == (loan_id, amount, day,
                                                                                           channel):
        return existing
    raise ReferenceTaken(f"流水号 {existing.external_reference} 已登记于贷款 #{existing.loan_id} 的还款 #{existing.id}"
                         f"（{format_yuan(existing.amount)}，{existing.repayment_date.isoformat()}），不能重复入账",
                         field="external_reference", repayment_id=existing.id)


def latest_standing_date(session: Session, loan_id: int) -> date | None:
    return session.scalar(select(func.max(Repayment.repayment_date))
                          .where(Repayment.loan_id == loan_id, state.standing_clause()))


def payable(session: Session, loan: Loan, day: date | None = None) -> int:
    """What may be paid on ``day`` (fen): everything due by then with its penalty, and the current period."""
    day = day or clock.today()
    terms = state.terms_for(session, loan)
    dues = state.dues_as_of(terms, state.installments(session, loan.id), state.ledger(session, loan.id), day)
    return sum(d.total for d in dues)


def _validate(amount: object, channel: str, reference: str, day: date) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RepaymentInvalid("还款金额必须是大于 0 的整数（分）", field="amount")
    if channel not in REPAYMENT_CHANNEL_LABELS:
        raise RepaymentInvalid(f"未知的还款渠道：{channel}（可选：{'、'.join(CHANNELS)}）", field="channel")
    if not reference or len(reference) > 64:
        raise RepaymentInvalid("请填写还款流水号（银行回单号或渠道流水号，最多 64 位）", field="external_reference")
    if day > clock.today():
        raise RepaymentInvalid("还款日期不能晚于今天", field="repayment_date")


def _stage_after(session: Session, loan: Loan, stage: str, staff_id: int | None) -> None:
    """CRM stage: 已结清 when the customer's last active loan closes, 还款中 when one reopens."""
    if stage == "closed":
        others = session.scalar(select(func.count()).select_from(Loan).where(
            Loan.customer_id == loan.customer_id, Loan.status == "active", Loan.id != loan.id)) or 0
        if others:
            return
    customers.set_stage(session, loan.customer_id, stage, actor_staff_id=staff_id)


def record_repayment(session: Session, loan_id: int, *, viewer: Viewer | None, amount: int,
                     external_reference: str, channel: str = "bank_transfer", repayment_date: date | None = None,
                     note: str | None = None) -> Repayment:
    """Book a repayment against a loan (see the module docstring). Only flushes; the caller commits."""
    _check_role(viewer)
    reference = (external_reference or "").strip()
    day = repayment_date or clock.today()
    _validate(amount, channel, reference, day)
    loan = get_loan(session, viewer, loan_id, for_update=True)  # scope first; a second click waits here
    if (existing := _by_reference(session, reference)) is not None:  # booked before, or while we waited
        return _replay(existing, loan_id, amount, day, channel)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能再登记还款")
    if day < loan.start_date:
        raise RepaymentInvalid(f"还款日期不能早于放款日 {loan.start_date.isoformat()}", field="repayment_date")
    latest = latest_standing_date(session, loan.id)
    if latest is not None and day < latest:
        raise RepaymentInvalid(f"还款日期不能早于本贷款最近一笔还款的日期 {latest.isoformat()}（请先冲正之后的还款）",
                               field="repayment_date")
    terms = state.terms_for(session, loan)
    rows = state.installments(session, loan.id)
    dues = state.dues_as_of(terms, rows, state.ledger(session, loan.id), day)
    total = sum(d.total for d in dues)
    if amount > total:
        raise Overpayment(f"还款金额 {format_yuan(amount)} 超过截至 {day.isoformat()} 的应还金额 {format_yuan(total)}"
                          f"（已到期各期及当期，含罚息）；多出 {format_yuan(amount - total)} 不能入账，"
                          f"提前还款请另行办理", field="amount", payable=total)
    staff_id = viewer.staff_id if viewer else None
    try:
        with session.begin_nested():
            repayment = Repayment(loan_id=loan.id, kind="repayment", amount=amount, repayment_date=day,
                                  channel=channel, external_reference=reference, note=(note or "").strip()[:300] or None,
                                  by_staff_id=staff_id, created_at=clock.now())
            session.add(repayment)
            session.flush()
    except IntegrityError:
        existing = _by_reference(session, reference)
        if existing is None:
            raise
        return _replay(existing, loan_id, amount, day, channel)
    by_id = {r.id: r for r in rows}
    for due in dues:  # the penalty as of the value date, before any of it is written off
        row = by_id[due.installment_id]
        row.penalty_amount = max(row.penalty_amount, row.paid_penalty_amount + due.outstanding["penalty"])
    split = allocate(amount, dues, terms.write_off_order)
    session.add_all([RepaymentAllocation(repayment_id=repayment.id, installment_id=iid, component=component,
                                         amount=fen) for iid, component, fen in split])
    for iid, component, fen in split:
        row = by_id[iid]
        setattr(row, _PAID_COLUMN[component], getattr(row, _PAID_COLUMN[component]) + fen)
    session.flush()
    change = state.refresh(session, loan, clock.today())
    by_component: dict[str, int] = {}
    for _, component, fen in split:
        by_component[component] = by_component.get(component, 0) + fen
    audit.record(session, "lending.repayment", entity_type="lending_loan", entity_id=loan.id,
                 after={"repayment_id": repayment.id, "amount": amount, "repayment_date": day.isoformat(),
                        "channel": channel, "external_reference": reference, **by_component})
    parts = "，".join(f"{label} {format_yuan(by_component[c])}" for c, label in
                     (("penalty", "罚息"), ("fee", "费用"), ("interest", "利息"), ("principal", "本金"))
                     if by_component.get(c))
    customers.record_event(session, loan.customer_id, "lending_repayment",
                           f"贷款 #{loan.id} 还款 {format_yuan(amount)}（{parts}），"
                           f"{REPAYMENT_CHANNEL_LABELS[channel]} {reference}",
                           actor_staff_id=staff_id, ref_type="lending_repayment", ref_id=repayment.id,
                           data={"loan_id": loan.id, "amount": amount, **by_component})
    collections.settle_promises(session, loan.id)
    outbox.enqueue(session, REPAYMENT_RECORDED_TASK, repayment.id)
    if change.closed:
        customers.record_event(session, loan.customer_id, "lending_loan_closed", f"贷款 #{loan.id} 已结清",
                               actor_staff_id=staff_id, ref_type="lending_loan", ref_id=loan.id)
        audit.record(session, "lending.loan.closed", entity_type="lending_loan", entity_id=loan.id,
                     after={"repayment_id": repayment.id})
        _stage_after(session, loan, "closed", staff_id)
        outbox.enqueue(session, LOAN_CLOSED_TASK, loan.id)
    return repayment


def get_repayment(session: Session, viewer: Viewer | None, repayment_id: int) -> Repayment:
    repayment = session.get(Repayment, repayment_id)
    if repayment is None:
        raise RepaymentNotFound()
    get_loan(session, viewer, repayment.loan_id)  # out of scope is not found
    return repayment


def reversal_of(session: Session, repayment_id: int) -> Repayment | None:
    return session.scalar(select(Repayment).where(Repayment.reversal_of_id == repayment_id))


def reverse_repayment(session: Session, repayment_id: int, *, viewer: Viewer | None, reason: str) -> Repayment:
    """Reverse a mistaken repayment (once): the reversal entry, negated allocations, the loan recomputed."""
    _check_role(viewer)
    reason = (reason or "").strip()
    if not reason:
        raise RepaymentInvalid("请填写冲正原因", field="reason")
    original = get_repayment(session, viewer, repayment_id)
    if original.kind != "repayment":
        raise ReversalRefused("冲正记录本身不能再冲正")
    loan = get_loan(session, viewer, original.loan_id, for_update=True)
    if (done := reversal_of(session, original.id)) is not None:
        raise AlreadyReversed(f"还款 #{original.id} 已于冲正记录 #{done.id} 冲正，不能重复冲正")
    staff_id = viewer.staff_id if viewer else None
    today = clock.today()
    try:
        with session.begin_nested():
            reversal = Repayment(loan_id=loan.id, kind="reversal", amount=original.amount, repayment_date=today,
                                 channel=original.channel, external_reference=None, reversal_of_id=original.id,
                                 note=reason[:300], by_staff_id=staff_id, created_at=clock.now())
            session.add(reversal)
            session.flush()
    except IntegrityError:
        raise AlreadyReversed(f"还款 #{original.id} 已冲正，不能重复冲正") from None
    allocations = list(session.scalars(select(RepaymentAllocation).where(
        RepaymentAllocation.repayment_id == original.id).order_by(RepaymentAllocation.id)))
    session.add_all([RepaymentAllocation(repayment_id=reversal.id, installment_id=a.installment_id,
                                         component=a.component, amount=-a.amount) for a in allocations])
    for a in allocations:
        row = session.get(LoanInstallment, a.installment_id)
        assert row is not None
        setattr(row, _PAID_COLUMN[a.component], getattr(row, _PAID_COLUMN[a.component]) - a.amount)
    session.flush()
    change = state.refresh(session, loan, today)
    audit.record(session, "lending.repayment.reverse", entity_type="lending_loan", entity_id=loan.id,
                 before={"repayment_id": original.id, "amount": original.amount},
                 after={"reversal_id": reversal.id}, detail=reason)
    customers.record_event(session, loan.customer_id, "lending_repayment_reversed",
                           f"贷款 #{loan.id} 还款 #{original.id}（{format_yuan(original.amount)}）已冲正：{reason}",
                           actor_staff_id=staff_id, ref_type="lending_repayment", ref_id=reversal.id)
    if change.reopened:
        _stage_after(session, loan, "repaying", staff_id)
    outbox.enqueue(session, REPAYMENT_REVERSED_TASK, reversal.id)
    return reversal
