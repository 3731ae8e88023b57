"""Posting a payment or a waiver to a loan: the row, its allocations, the paid amounts, the loan's state, and
what follows (audit, timeline, promises, events, closure). Shared by repayments, prepayments and waivers;
callers hold the loan's row lock and have decided the split."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock, outbox
from core.money import format_yuan
from crm import customers
from lending.models import REPAYMENT_CHANNEL_LABELS, Loan, LoanInstallment, Repayment, RepaymentAllocation
from lending.servicing import state
from lending.servicing.arithmetic import Due
from lending.servicing.events import LOAN_CLOSED_TASK, ON_PAYMENT_POSTED, REPAYMENT_RECORDED_TASK
from lending.servicing.exceptions import ReferenceTaken

PAID_COLUMN = {"principal": "paid_principal_amount", "interest": "paid_interest_amount",
               "fee": "paid_fee_amount", "penalty": "paid_penalty_amount"}


def by_reference(session: Session, reference: str) -> Repayment | None:
    return session.scalar(select(Repayment).where(Repayment.external_reference == reference))


def replay(existing: Repayment, loan_id: int, amount: int, day: date, channel: str) -> Repayment:
    """The same slip again: the booking already made, when it is the same booking; refused otherwise."""
    if (existing.loan_id, existing.amount, existing.repayment_date, existing.channel) == (loan_id, amount, day,
                                                                                           channel):
        return existing
    raise ReferenceTaken(f"流水号 {existing.external_reference} 已登记于贷款 #{existing.loan_id} 的还款 #{existing.id}"
                         f"（{format_yuan(existing.amount)}，{existing.repayment_date.isoformat()}），不能重复入账",
                         field="external_reference", repayment_id=existing.id)


def latest_standing_date(session: Session, loan_id: int) -> date | None:
    """The value date of the loan's latest transaction that stands (repayments and waivers, not reversed)."""
    return session.scalar(select(func.max(Repayment.repayment_date))
                          .where(Repayment.loan_id == loan_id, state.standing_clause()))


def stage_after(session: Session, loan: Loan, stage: str, staff_id: int | None) -> None:
    """CRM stage: 已结清 when the customer's last active loan closes, 还款中 when one reopens."""
    if stage == "closed":
        others = session.scalar(select(func.count()).select_from(Loan).where(
            Loan.customer_id == loan.customer_id, Loan.status == "active", Loan.id != loan.id)) or 0
        if others:
            return
    customers.set_stage(session, loan.customer_id, stage, actor_staff_id=staff_id)


def insert_repayment(session: Session, loan: Loan, *, amount: int, day: date, channel: str, reference: str,
                     note: str | None, staff_id: int | None, purpose: str = "installment",
                     kind: str = "repayment") -> tuple[Repayment, bool]:
    """``(row, True)``, or ``(the repayment that took the reference meanwhile, False)``."""
    try:
        with session.begin_nested():
            repayment = Repayment(loan_id=loan.id, kind=kind, purpose=purpose, amount=amount,
                                  repayment_date=day, channel=channel, external_reference=reference,
                                  note=(note or "").strip()[:300] or None, by_staff_id=staff_id,
                                  created_at=clock.now())
            session.add(repayment)
            session.flush()
    except IntegrityError:
        existing = by_reference(session, reference)
        if existing is None:
            raise
        return existing, False
    return repayment, True


def fix_penalty(by_id: dict[int, LoanInstallment], dues: list[Due]) -> None:
    """Write the penalty as of the value date on the installments, before any of it is written off."""
    for due in dues:
        row = by_id[due.installment_id]
        row.penalty_amount = max(row.penalty_amount, row.paid_penalty_amount + due.outstanding["penalty"])


def post(session: Session, loan: Loan, repayment: Repayment, split: list[tuple[int, str, int]],
         by_id: dict[int, LoanInstallment], *, staff_id: int | None, label: str = "还款") -> state.Change:
    """Allocations, paid amounts, the loan's state recomputed; audit, timeline, promises, events, closure."""
    session.add_all([RepaymentAllocation(repayment_id=repayment.id, installment_id=iid, component=component,
                                         amount=fen) for iid, component, fen in split])
    for iid, component, fen in split:
        row = by_id[iid]
        setattr(row, PAID_COLUMN[component], getattr(row, PAID_COLUMN[component]) + fen)
    session.flush()
    change = state.refresh(session, loan, clock.today())
    by_component: dict[str, int] = {}
    for _, component, fen in split:
        by_component[component] = by_component.get(component, 0) + fen
    amount, day, channel, reference = (repayment.amount, repayment.repayment_date, repayment.channel,
                                       repayment.external_reference)
    audit.record(session, "lending.repayment" if repayment.kind == "repayment" else f"lending.{repayment.kind}",
                 entity_type="lending_loan", entity_id=loan.id,
                 after={"repayment_id": repayment.id, "amount": amount, "repayment_date": day.isoformat(),
                        "channel": channel, "external_reference": reference, "purpose": repayment.purpose,
                        **by_component})
    parts = "，".join(f"{label_} {format_yuan(by_component[c])}" for c, label_ in
                     (("penalty", "罚息"), ("fee", "费用"), ("interest", "利息"), ("principal", "本金"))
                     if by_component.get(c))
    via = f"，{REPAYMENT_CHANNEL_LABELS.get(channel, channel)} {reference}" if repayment.kind == "repayment" else ""
    customers.record_event(session, loan.customer_id, "lending_repayment",
                           f"贷款 #{loan.id} {label} {format_yuan(amount)}（{parts}）{via}",
                           actor_staff_id=staff_id, ref_type="lending_repayment", ref_id=repayment.id,
                           data={"loan_id": loan.id, "amount": amount, "purpose": repayment.purpose, **by_component})
    if repayment.kind == "repayment":
        for hook in ON_PAYMENT_POSTED:
            hook(session, loan)
        outbox.enqueue(session, REPAYMENT_RECORDED_TASK, repayment.id)
    if change.closed:
        customers.record_event(session, loan.customer_id, "lending_loan_closed", f"贷款 #{loan.id} 已结清",
                               actor_staff_id=staff_id, ref_type="lending_loan", ref_id=loan.id)
        audit.record(session, "lending.loan.closed", entity_type="lending_loan", entity_id=loan.id,
                     after={"repayment_id": repayment.id})
        stage_after(session, loan, "closed", staff_id)
        outbox.enqueue(session, LOAN_CLOSED_TASK, loan.id)
    return change
