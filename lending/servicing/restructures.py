"""Extension (展期) and restructure (重组): new terms for the principal not yet due, maker-checker.

The new terms start at the first open period *k*: the first installment due after today. Every installment from
*k* on must be untouched (nothing paid on it); installments due before *k* — paid or overdue — stay as they are
(an overdue bill is still owed, with its penalty). The principal of periods *k…* (the balance not yet due) is
spread, with the contract's frozen product terms (rate, method, day count, rounding, per-period fee; no deposit,
no upfront fee, no grace periods again), over:

- extension: the periods left plus ``extra_periods`` (展期 N 期);
- restructure: ``periods`` chosen (longer or shorter than what is left).

The new terms' schedule is checked against the comprehensive-cost cap (``lending.schedule.cap``) when asked for
and again when approved. A request (:func:`request`) by risk, sales, finance, collections, managers or admins;
decided once (:func:`approve`, :func:`reject`) by a risk officer, manager or admin who did not ask for it (a
conditional UPDATE on the status: two approvers decide it once). Approval rewrites the rows from *k* on
(``versions.write_rows``), appends a schedule version (reason ``extension`` / ``restructure``; the old one is
kept) and recomputes the loan's state.

Refused with the reason, nothing written: a closed loan, no period left to change, a current period already
partly paid, a period count out of range, new terms above the cap, a second open request, an approver deciding
their own request or without the authority.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import PermissionDenied
from core.money import format_yuan
from crm import customers
from crm.models import Role
from crm.scope import Viewer
from lending import products
from lending.models import Contract, Loan, LoanInstallment, Restructure
from lending.schedule.engine import Schedule
from lending.schedule.terms import MAX_PERIODS
from lending.servicing import state, versions
from lending.servicing.exceptions import LoanClosed, RestructureDecided, RestructureInvalid, RestructureNotFound
from lending.servicing.loans import get_loan

__all__ = ["APPROVERS", "REQUESTERS", "approve", "get", "preview", "reject", "request", "restructures"]

REQUESTERS = frozenset({Role.RISK, Role.SALES, Role.FINANCE, Role.COLLECTOR, Role.SUPERVISOR, Role.MANAGER,
                        Role.ADMIN})
APPROVERS = frozenset({Role.RISK, Role.MANAGER, Role.ADMIN})
KIND_LABELS = {"extension": "展期", "restructure": "重组"}


def _open_rows(session: Session, loan: Loan, day: date) -> tuple[list[LoanInstallment], int]:
    rows = state.installments(session, loan.id)
    tail = [r for r in rows if r.due_date > day]
    if not tail:
        raise RestructureInvalid(f"贷款 #{loan.id} 已没有未到期的期次，不能展期或重组", field="periods")
    if any(r.paid_amount for r in tail):
        raise RestructureInvalid(f"第 {tail[0].number} 期起已有还款（当期已部分还款或已提前还款），"
                                 f"请在当期结清后再办理", field="periods")
    return rows, tail[0].number


def _tail_schedule(session: Session, loan: Loan, rows: list[LoanInstallment], first: int, count: int) -> \
        tuple[Schedule, products.Quote]:
    """The loan's full schedule with periods ``first…`` replaced by the new terms, and their quote (APR)."""
    contract = session.get(Contract, loan.contract_id)
    assert contract is not None
    terms = versions.contract_terms(contract)
    per_period_fee = terms.service_fee_timing == "per_period"
    tail_terms = replace(terms, deposit_rate=0, deposit_amount=0, grace_principal_periods=0, grace_interest_periods=0,
                         service_fee_rate=terms.service_fee_rate if per_period_fee else 0,
                         service_fee_amount=terms.service_fee_amount if per_period_fee else 0)
    balance = sum(r.principal_amount for r in rows if r.number >= first)
    start = rows[first - 2].due_date if first > 1 else loan.start_date
    quote = products.quote_terms(tail_terms, balance, count, start)
    current = versions.current_schedule(session, loan, rows)
    shifted = tuple(replace(p, number=p.number + first - 1) for p in quote.schedule.periods)
    full = replace(current, periods=(*current.periods[: first - 1], *shifted), installment=quote.schedule.installment,
                   principal_step=quote.schedule.principal_step)
    return full, quote


def _count(kind: str, left: int, extra_periods: int | None, periods: int | None) -> int:
    if kind == "extension":
        if isinstance(extra_periods, bool) or not isinstance(extra_periods, int) or extra_periods < 1:
            raise RestructureInvalid("展期期数必须是大于 0 的整数", field="extra_periods")
        count = left + extra_periods
    elif kind == "restructure":
        if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
            raise RestructureInvalid("重组后的期数必须是大于 0 的整数", field="periods")
        count = periods
    else:
        raise RestructureInvalid(f"未知的类型：{kind}（可选：展期 extension、重组 restructure）", field="kind")
    if count > MAX_PERIODS:
        raise RestructureInvalid(f"调整后的期数 {count} 超过上限 {MAX_PERIODS}", field="periods")
    return count


def preview(session: Session, loan_id: int, *, viewer: Viewer | None, kind: str, extra_periods: int | None = None,
            periods: int | None = None) -> tuple[Schedule, products.Quote, int]:
    """The schedule the new terms would give (and its APR, checked against the cap), the first period changed."""
    loan = get_loan(session, viewer, loan_id)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能展期或重组")
    rows, first = _open_rows(session, loan, clock.today())
    count = _count(kind, rows[-1].number - first + 1, extra_periods, periods)
    full, quote = _tail_schedule(session, loan, rows, first, count)
    return full, quote, first


def request(session: Session, loan_id: int, *, viewer: Viewer | None, kind: str, reason: str,
            extra_periods: int | None = None, periods: int | None = None) -> Restructure:
    """Ask for an extension or restructure (its new terms computed and checked now). Only flushes."""
    if viewer is not None and viewer.role not in REQUESTERS:
        raise PermissionDenied("您的角色不能申请展期或重组")
    reason = (reason or "").strip()
    if not reason:
        raise RestructureInvalid("请填写申请原因", field="reason")
    loan = get_loan(session, viewer, loan_id, for_update=True)
    full, quote, first = preview(session, loan_id, viewer=viewer, kind=kind, extra_periods=extra_periods,
                                 periods=periods)
    if session.scalar(select(Restructure.id).where(Restructure.loan_id == loan.id,
                                                   Restructure.status == "requested")) is not None:
        raise RestructureDecided(f"贷款 #{loan.id} 已有待审批的展期/重组申请，请先审批或驳回")
    row = Restructure(loan_id=loan.id, kind=kind, first_period=first, periods=len(quote.schedule.periods),
                      balance_amount=quote.amount, apr_rate=quote.apr, status="requested", reason=reason[:300],
                      requested_by_staff_id=viewer.staff_id if viewer else None, requested_at=clock.now())
    session.add(row)
    session.flush()
    audit.record(session, f"lending.{kind}.request", entity_type="lending_loan", entity_id=loan.id,
                 after={"restructure_id": row.id, "first_period": first, "periods": row.periods,
                        "balance": row.balance_amount, "apr": str(quote.apr)}, detail=reason)
    return row


def get(session: Session, viewer: Viewer | None, restructure_id: int) -> Restructure:
    row = session.get(Restructure, restructure_id)
    if row is None:
        raise RestructureNotFound()
    get_loan(session, viewer, row.loan_id)  # out of scope is not found
    return row


def _decidable(session: Session, restructure_id: int, viewer: Viewer | None) -> Restructure:
    row = get(session, viewer, restructure_id)
    if row.status != "requested":
        raise RestructureDecided(f"{KIND_LABELS[row.kind]}申请 #{row.id} 已审批，不能重复审批")
    if viewer is not None:
        if viewer.role not in APPROVERS:
            raise PermissionDenied("只有风控、经理或管理员可以审批展期或重组")
        if viewer.staff_id == row.requested_by_staff_id:
            raise PermissionDenied("不能审批自己提交的展期/重组申请")
    return row


def _decide(session: Session, row: Restructure, status: str, viewer: Viewer | None, note: str | None) -> None:
    moved = session.execute(update(Restructure).where(Restructure.id == row.id, Restructure.status == "requested")
                            .values(status=status, decided_by_staff_id=viewer.staff_id if viewer else None,
                                    decided_at=clock.now(), decision_note=(note or "").strip()[:300] or None)
                            .execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        raise RestructureDecided(f"{KIND_LABELS[row.kind]}申请 #{row.id} 已被他人审批")
    session.refresh(row)


def approve(session: Session, restructure_id: int, *, viewer: Viewer | None, note: str | None = None) -> Restructure:
    """Approve: the rows from the first open period rewritten, a schedule version appended. Only flushes."""
    row = _decidable(session, restructure_id, viewer)
    loan = get_loan(session, viewer, row.loan_id, for_update=True)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能展期或重组")
    rows, first = _open_rows(session, loan, clock.today())
    if first != row.first_period:
        raise RestructureInvalid(f"申请后已进入第 {first} 期（申请时为第 {row.first_period} 期），请驳回后重新申请",
                                 field="periods")
    full, quote = _tail_schedule(session, loan, rows, first, row.periods)  # the cap checked again
    _decide(session, row, "approved", viewer, note)
    staff_id = viewer.staff_id if viewer else None
    versions.ensure_original(session, loan, rows)
    new_rows = versions.write_rows(session, loan, rows, full, first)
    version = versions.append(session, loan, full, reason=row.kind, effective_date=clock.today(), rows=new_rows,
                              note=f"{KIND_LABELS[row.kind]} #{row.id}：{row.reason}", staff_id=staff_id)
    session.execute(update(Restructure).where(Restructure.id == row.id).values(schedule_version_id=version.id)
                    .execution_options(synchronize_session=False))
    session.refresh(row)
    state.refresh(session, loan, clock.today())
    audit.record(session, f"lending.{row.kind}.approve", entity_type="lending_loan", entity_id=loan.id,
                 after={"restructure_id": row.id, "schedule_version": version.version, "periods": row.periods,
                        "apr": str(quote.apr)}, detail=note)
    customers.record_event(session, loan.customer_id, f"lending_{row.kind}",
                           f"贷款 #{loan.id} {KIND_LABELS[row.kind]}：自第 {first} 期起剩余本金 "
                           f"{format_yuan(row.balance_amount)} 分 {row.periods} 期偿还（还款计划第 {version.version} 版）",
                           actor_staff_id=staff_id, ref_type="lending_restructure", ref_id=row.id)
    return row


def reject(session: Session, restructure_id: int, *, viewer: Viewer | None, note: str | None = None) -> Restructure:
    row = _decidable(session, restructure_id, viewer)
    _decide(session, row, "rejected", viewer, note)
    audit.record(session, f"lending.{row.kind}.reject", entity_type="lending_loan", entity_id=row.loan_id,
                 after={"restructure_id": row.id}, detail=note)
    return row


def restructures(session: Session, loan_id: int) -> list[Restructure]:
    return list(session.scalars(select(Restructure).where(Restructure.loan_id == loan_id)
                                .order_by(Restructure.id.desc())))


