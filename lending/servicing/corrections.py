"""Backdated correction (回溯重算): after a repayment is reversed, every later transaction of the loan is written
off again, in value-date order, as if the reversed one had never been booked.

"Later" is every entry that stands (repayments and waivers, not reversed) after the reversed one by value date,
then by booking order. Starting from what the earlier entries paid, each later entry is taken in turn on its own
value date: a repayment is split again over what was then payable (penalty recomputed as of that day, the
product's write-off order, oldest installment first; one booked with an overpayment credit writes off what it can
and keeps the rest as credit, less what was refunded of it); a waiver keeps its installment and component, and must
still fit what was then owed of it.

Nothing is edited (the ledger is append-only): where an entry's split changes, allocation rows of the
difference (new − old, per installment and component) are appended under the same entry, marked with the
correction (``replay_id`` = the reversal). An entry's net allocations are then its new split, and the
installments' paid amounts are their sums. Refused with the reason, nothing written: a later prepayment or
payoff (its schedule version was computed from the old balance) or a later waiver that no longer fits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.money import format_yuan
from lending.models import COMPONENT_LABELS, Loan, LoanInstallment, Repayment, RepaymentAllocation, RepaymentRefund
from lending.servicing import state
from lending.servicing.arithmetic import COMPONENTS, ServicingTerms, allocate
from lending.servicing.exceptions import ReversalRefused
from lending.servicing.posting import PAID_COLUMN

__all__ = ["Replayed", "replay_after", "sync_paid"]

Split = dict[tuple[int, str], int]  # (installment id, component) → fen


@dataclass(frozen=True)
class Replayed:
    """One later entry written off again: its split before and after (fen per installment and component)."""

    repayment_id: int
    before: Split
    after: Split

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _splits(session: Session, loan_id: int) -> dict[int, Split]:
    """The net split of every standing entry of the loan."""
    out: dict[int, Split] = defaultdict(dict)
    for repayment_id, iid, component, fen in session.execute(
            select(RepaymentAllocation.repayment_id, RepaymentAllocation.installment_id, RepaymentAllocation.component,
                   func.sum(RepaymentAllocation.amount))
            .join(Repayment, Repayment.id == RepaymentAllocation.repayment_id)
            .where(Repayment.loan_id == loan_id, state.standing_clause())
            .group_by(RepaymentAllocation.repayment_id, RepaymentAllocation.installment_id,
                      RepaymentAllocation.component)):
        if fen:
            out[repayment_id][(iid, component)] = int(fen)
    return out


def _later(session: Session, original: Repayment) -> list[Repayment]:
    return [r for r in session.scalars(select(Repayment).where(Repayment.loan_id == original.loan_id,
                                                               state.standing_clause())
                                       .order_by(Repayment.repayment_date, Repayment.id))
            if (r.repayment_date, r.id) > (original.repayment_date, original.id)]


def _set_paid(rows: list[LoanInstallment], paid: Split) -> None:
    for row in rows:
        for component in COMPONENTS:
            setattr(row, PAID_COLUMN[component], paid.get((row.id, component), 0))


def _owed(terms: ServicingTerms, row: LoanInstallment, component: str, entries: list[state.Entry],
          day: object) -> int:
    if component == "penalty":
        return max(state.penalty_as_of(terms, row, entries, day), row.paid_penalty_amount) - row.paid_penalty_amount
    return getattr(row, f"{component}_amount") - getattr(row, PAID_COLUMN[component])


def replay_after(session: Session, loan: Loan, original: Repayment, correction: Repayment) -> list[Replayed]:
    """Write off again every entry after ``original`` (no longer standing: ``correction`` reverses it). Appends
    the difference rows; the caller then calls :func:`sync_paid` and refreshes the state. Holds the loan lock."""
    later = _later(session, original)
    if not later:
        return []
    for entry in later:
        if entry.purpose in ("prepayment", "payoff", "capitalisation"):
            what = "重组逾期资本化" if entry.purpose == "capitalisation" else "提前还款"
            raise ReversalRefused(f"还款 #{original.id} 之后有{what} #{entry.id}（{entry.repayment_date.isoformat()}），"
                                  f"还款计划已按当时余额重算，不能回溯冲正；请先冲正该{what}之后的处理")
    terms = state.terms_for(session, loan)
    rows = state.installments(session, loan.id)
    by_id = {r.id: r for r in rows}
    splits = _splits(session, loan.id)
    later_ids = {e.id for e in later}
    refunded = {rid: int(fen) for rid, fen in session.execute(
        select(RepaymentRefund.repayment_id, func.sum(RepaymentRefund.amount))
        .where(RepaymentRefund.repayment_id.in_(later_ids), RepaymentRefund.kind == "overpayment",
               RepaymentRefund.status != "failed").group_by(RepaymentRefund.repayment_id))}
    # what the earlier entries paid, and their entries by value date for the penalty
    paid: Split = defaultdict(int)
    entries: dict[int, list[state.Entry]] = defaultdict(list)
    dates = dict(session.execute(select(Repayment.id, Repayment.repayment_date).where(
        Repayment.id.in_([rid for rid in splits if rid not in later_ids]))).all()) if splits else {}
    for rid in sorted((r for r in splits if r not in later_ids), key=lambda r: (dates[r], r)):
        for (iid, component), fen in splits[rid].items():
            paid[(iid, component)] += fen
            entries[iid].append(state.Entry(dates[rid], component, fen))
    out: list[Replayed] = []
    for entry in later:
        _set_paid(rows, paid)
        day = entry.repayment_date
        before = splits.get(entry.id, {})
        if entry.kind == "waiver":
            for (iid, component), fen in before.items():
                left = _owed(terms, by_id[iid], component, entries[iid], day)
                if fen > left:
                    raise ReversalRefused(
                        f"冲正后，之后的减免 #{entry.id}（第 {by_id[iid].number} 期{COMPONENT_LABELS[component]}"
                        f" {format_yuan(fen)}）超出当时应还的 {format_yuan(left)}，请先处理该减免")
            after = dict(before)
        else:
            dues = state.dues_as_of(terms, rows, entries, day)
            total = sum(d.total for d in dues)
            money = entry.amount - refunded.get(entry.id, 0)  # less its overpayment credit already refunded
            if money > total and sum(before.values()) >= money:  # booked with no credit: it cannot grow one now
                raise ReversalRefused(f"冲正后，之后的还款 #{entry.id}（{format_yuan(entry.amount)}）超出"
                                      f" {day.isoformat()} 的应还金额 {format_yuan(total)}，不能回溯重算")
            after = {}
            for iid, component, fen in allocate(min(money, total), dues, terms.write_off_order):
                after[(iid, component)] = after.get((iid, component), 0) + fen
        for (iid, component), fen in after.items():
            paid[(iid, component)] += fen
            entries[iid].append(state.Entry(day, component, fen))
        out.append(Replayed(entry.id, before, after))
    _set_paid(rows, paid)
    for row in rows:
        row.penalty_amount = max(row.penalty_amount, row.paid_penalty_amount)
    session.add_all([
        RepaymentAllocation(repayment_id=r.repayment_id, installment_id=iid, component=component,
                            amount=r.after.get((iid, component), 0) - r.before.get((iid, component), 0),
                            replay_id=correction.id)
        for r in out for (iid, component) in sorted(set(r.before) | set(r.after))
        if r.after.get((iid, component), 0) != r.before.get((iid, component), 0)])
    return out


def sync_paid(session: Session, loan: Loan) -> list[LoanInstallment]:
    """Set every installment's paid amounts to the sums of its standing allocations (after a correction)."""
    session.flush()
    sums: Split = {}
    for iid, component, fen in session.execute(
            select(RepaymentAllocation.installment_id, RepaymentAllocation.component,
                   func.sum(RepaymentAllocation.amount))
            .join(Repayment, Repayment.id == RepaymentAllocation.repayment_id)
            .where(Repayment.loan_id == loan.id, state.standing_clause())
            .group_by(RepaymentAllocation.installment_id, RepaymentAllocation.component)):
        sums[(iid, component)] = int(fen or 0)
    rows = state.installments(session, loan.id)
    _set_paid(rows, sums)
    for row in rows:  # a penalty paid on an earlier day may exceed what today's figure would have been
        row.penalty_amount = max(row.penalty_amount, row.paid_penalty_amount)
    session.flush()
    return rows
