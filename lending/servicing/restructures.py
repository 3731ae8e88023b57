"""Extension (展期) and restructure (重组): new terms for the principal not yet due, maker-checker.

The new terms start at the first open period *k*: the first installment due after today. Every installment from
*k* on must be untouched (nothing paid on it); installments due before *k* — paid or overdue — stay as they are
(an overdue bill is still owed, with its penalty). The principal of periods *k…* (the balance not yet due) is
spread, with the contract's frozen product terms (rate, method, day count, rounding, per-period fee; no deposit,
no upfront fee, no grace periods again), over:

- extension: the periods left plus ``extra_periods`` (展期 N 期);
- restructure: ``periods`` chosen (longer or shorter than what is left), optionally at a new annual rate
  (``annual_rate``; from then on the loan's rate, a later prepayment's accrual included) and optionally with the
  overdue amounts capitalised (``capitalise``: every installment due by today — its principal, interest, fee
  and penalty as of the approval day — written off by a ``capitalisation`` entry in the repayment ledger and
  added to the principal the new terms repay, so the loan is current again).

The new terms' schedule is checked against the comprehensive-cost cap (``lending.schedule.cap``) when asked for
and again when approved. A request (:func:`request`) by risk, sales, finance, collections, managers or admins;
decided once (:func:`approve`, :func:`reject`) by a risk officer, manager or admin who did not ask for it (a
conditional UPDATE on the status: two approvers decide it once). Approval rewrites the rows from *k* on
(``versions.write_rows``), appends a schedule version (reason ``extension`` / ``restructure``; the old one is
kept) and recomputes the loan's state.

Refused with the reason, nothing written: a closed loan, no period left to change, a current period already
partly paid, a period count out of range, a rate out of range or on an extension, nothing overdue to capitalise,
new terms above the cap, a second open request, an approver deciding their own request or without the authority.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

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
from lending.servicing.arithmetic import Due, allocate
from lending.servicing.exceptions import LoanClosed, RestructureDecided, RestructureInvalid, RestructureNotFound
from lending.servicing.loans import get_loan
from lending.servicing.posting import fix_penalty, insert_repayment, post

__all__ = ["APPROVERS", "MAX_RATE", "REQUESTERS", "Plan", "approve", "get", "plan", "preview", "reject", "request",
           "restructures"]

REQUESTERS = frozenset({Role.RISK, Role.SALES, Role.FINANCE, Role.COLLECTOR, Role.SUPERVISOR, Role.MANAGER,
                        Role.ADMIN})
APPROVERS = frozenset({Role.RISK, Role.MANAGER, Role.ADMIN})
KIND_LABELS = {"extension": "展期", "restructure": "重组"}
MAX_RATE = Decimal("0.36")  # a new annual rate above this is a typo (the cost cap then decides what may stand)


@dataclass(frozen=True)
class Plan:
    schedule: Schedule
    quote: products.Quote
    first: int  # the first period the new terms replace
    annual_rate: Decimal | None  # the new rate (None: the loan's)
    capitalised: int  # fen of overdue amounts moved into the new principal
    overdue: list[Due]


def _open_rows(session: Session, loan: Loan, day: date, *, capitalise: bool = False) -> \
        tuple[list[LoanInstallment], int]:
    """The rows and the first period the new terms replace. A matured loan (no period left) may only be restructured
    by capitalising what it owes: the new periods then follow the last one."""
    rows = state.installments(session, loan.id)
    tail = [r for r in rows if r.due_date > day]
    if not tail and capitalise:
        return rows, rows[-1].number + 1
    if not tail:
        raise RestructureInvalid(f"贷款 #{loan.id} 已没有未到期的期次，不能展期或重组", field="periods")
    if any(r.paid_amount for r in tail):
        raise RestructureInvalid(f"第 {tail[0].number} 期起已有还款（当期已部分还款或已提前还款），"
                                 f"请在当期结清后再办理", field="periods")
    return rows, tail[0].number


def _overdue(session: Session, loan: Loan, rows: list[LoanInstallment], first: int, day: date) -> list[Due]:
    """What is owed on the installments before ``first`` (due by ``day``), penalty as of ``day``."""
    dues = state.dues_as_of(state.terms_for(session, loan), rows, state.ledger(session, loan.id), day)
    return [d for d in dues if d.number < first]


def _tail_schedule(session: Session, loan: Loan, rows: list[LoanInstallment], first: int, count: int, *,
                   annual_rate: Decimal | None = None, capitalised: int = 0) -> tuple[Schedule, products.Quote]:
    """The loan's full schedule with periods ``first…`` replaced by the new terms, and their quote (APR, checked
    against the cap): the not-yet-due principal plus ``capitalised`` over ``count`` periods, at ``annual_rate``
    (None: the loan's rate)."""
    contract = session.get(Contract, loan.contract_id)
    assert contract is not None
    terms = versions.effective_terms(session, loan, contract)
    per_period_fee = terms.service_fee_timing == "per_period"
    tail_terms = replace(terms, deposit_rate=0, deposit_amount=0, grace_principal_periods=0, grace_interest_periods=0,
                         service_fee_rate=terms.service_fee_rate if per_period_fee else 0,
                         service_fee_amount=terms.service_fee_amount if per_period_fee else 0,
                         annual_rate=terms.annual_rate if annual_rate is None else annual_rate)
    balance = sum(r.principal_amount for r in rows if r.number >= first) + capitalised
    if first > len(rows):  # a matured loan: the new periods run from the restructure day
        start = clock.today()
    else:
        start = rows[first - 2].due_date if first > 1 else loan.start_date
    quote = products.quote_terms(tail_terms, balance, count, start)
    current = versions.current_schedule(session, loan, rows)
    shifted = tuple(replace(p, number=p.number + first - 1) for p in quote.schedule.periods)
    full = replace(current, periods=(*current.periods[: first - 1], *shifted), installment=quote.schedule.installment,
                   principal_step=quote.schedule.principal_step)
    return full, quote


def _rate(kind: str, annual_rate: object) -> Decimal | None:
    if annual_rate is None:
        return None
    if kind != "restructure":
        raise RestructureInvalid("展期沿用原利率；调整利率请办理重组", field="annual_rate")
    if not isinstance(annual_rate, Decimal) or not annual_rate.is_finite():
        raise RestructureInvalid("新的年利率格式不正确", field="annual_rate")
    if not Decimal(0) <= annual_rate <= MAX_RATE:
        raise RestructureInvalid(f"新的年利率须在 0–{MAX_RATE * 100:.0f}% 之间", field="annual_rate")
    return annual_rate.quantize(Decimal("1e-8"))


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


def plan(session: Session, loan_id: int, *, viewer: Viewer | None, kind: str, extra_periods: int | None = None,
         periods: int | None = None, annual_rate: Decimal | None = None, capitalise: bool = False) -> Plan:
    """The new terms as they would be today: the schedule (and its APR, checked against the cap), the first period
    changed, the overdue amounts capitalised."""
    loan = get_loan(session, viewer, loan_id)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能展期或重组")
    rate = _rate(kind, annual_rate)
    if capitalise and kind != "restructure":
        raise RestructureInvalid("逾期金额资本化只能随重组办理", field="capitalise")
    today = clock.today()
    rows, first = _open_rows(session, loan, today, capitalise=capitalise)
    count = _count(kind, rows[-1].number - first + 1, extra_periods, periods)
    overdue = _overdue(session, loan, rows, first, today) if capitalise else []
    capitalised = sum(d.total for d in overdue)
    if capitalise and not capitalised:
        raise RestructureInvalid(f"贷款 #{loan.id} 没有逾期未还的金额，无需资本化", field="capitalise")
    full, quote = _tail_schedule(session, loan, rows, first, count, annual_rate=rate, capitalised=capitalised)
    return Plan(full, quote, first, rate, capitalised, overdue)


def preview(session: Session, loan_id: int, *, viewer: Viewer | None, kind: str, extra_periods: int | None = None,
            periods: int | None = None, annual_rate: Decimal | None = None, capitalise: bool = False) -> \
        tuple[Schedule, products.Quote, int]:
    """The schedule the new terms would give (and its APR, checked against the cap), the first period changed."""
    p = plan(session, loan_id, viewer=viewer, kind=kind, extra_periods=extra_periods, periods=periods,
             annual_rate=annual_rate, capitalise=capitalise)
    return p.schedule, p.quote, p.first


def request(session: Session, loan_id: int, *, viewer: Viewer | None, kind: str, reason: str,
            extra_periods: int | None = None, periods: int | None = None, annual_rate: Decimal | None = None,
            capitalise: bool = False) -> Restructure:
    """Ask for an extension or restructure (its new terms computed and checked now). Only flushes."""
    if viewer is not None and viewer.role not in REQUESTERS:
        raise PermissionDenied("您的角色不能申请展期或重组")
    reason = (reason or "").strip()
    if not reason:
        raise RestructureInvalid("请填写申请原因", field="reason")
    loan = get_loan(session, viewer, loan_id, for_update=True)
    p = plan(session, loan_id, viewer=viewer, kind=kind, extra_periods=extra_periods, periods=periods,
             annual_rate=annual_rate, capitalise=capitalise)
    quote, first = p.quote, p.first
    if session.scalar(select(Restructure.id).where(Restructure.loan_id == loan.id,
                                                   Restructure.status == "requested")) is not None:
        raise RestructureDecided(f"贷款 #{loan.id} 已有待审批的展期/重组申请，请先审批或驳回")
    row = Restructure(loan_id=loan.id, kind=kind, first_period=first, periods=len(quote.schedule.periods),
                      balance_amount=quote.amount, apr_rate=quote.apr, status="requested", reason=reason[:300],
                      requested_by_staff_id=viewer.staff_id if viewer else None, requested_at=clock.now(),
                      annual_rate=p.annual_rate, capitalised_amount=p.capitalised)
    session.add(row)
    session.flush()
    audit.record(session, f"lending.{kind}.request", entity_type="lending_loan", entity_id=loan.id,
                 after={"restructure_id": row.id, "first_period": first, "periods": row.periods,
                        "balance": row.balance_amount, "apr": str(quote.apr),
                        "annual_rate": None if p.annual_rate is None else str(p.annual_rate),
                        "capitalised": p.capitalised}, detail=reason)
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
    """Approve: the overdue amounts capitalised (if asked, as of today), the rows from the first open period
    rewritten, a schedule version appended. Only flushes."""
    row = _decidable(session, restructure_id, viewer)
    loan = get_loan(session, viewer, row.loan_id, for_update=True)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能展期或重组")
    today = clock.today()
    rows, first = _open_rows(session, loan, today, capitalise=row.capitalised_amount > 0)
    if first != row.first_period:
        raise RestructureInvalid(f"申请后已进入第 {first} 期（申请时为第 {row.first_period} 期），请驳回后重新申请",
                                 field="periods")
    overdue = _overdue(session, loan, rows, first, today) if row.capitalised_amount else []
    capitalised = sum(d.total for d in overdue)  # today's figure: the penalty ran on, a payment may have come
    if row.capitalised_amount and not capitalised:
        raise RestructureInvalid("申请后逾期金额已还清，无需资本化，请驳回后重新申请", field="capitalise")
    full, quote = _tail_schedule(session, loan, rows, first, row.periods, annual_rate=row.annual_rate,
                                 capitalised=capitalised)  # the cap checked again, on today's figures
    _decide(session, row, "approved", viewer, note)
    staff_id = viewer.staff_id if viewer else None
    versions.ensure_original(session, loan, rows)
    entry_id = _capitalise(session, loan, row, overdue, capitalised, staff_id) if capitalised else None
    rows = state.installments(session, loan.id)
    new_rows = versions.write_rows(session, loan, rows, full, first)
    label = KIND_LABELS[row.kind]
    version = versions.append(session, loan, full, reason=row.kind, effective_date=today, rows=new_rows,
                              repayment_id=entry_id, note=f"{label} #{row.id}：{row.reason}", staff_id=staff_id)
    session.execute(update(Restructure).where(Restructure.id == row.id).values(
        schedule_version_id=version.id, capitalisation_id=entry_id, capitalised_amount=capitalised,
        balance_amount=quote.amount, apr_rate=quote.apr).execution_options(synchronize_session=False))
    session.refresh(row)
    state.refresh(session, loan, today)
    audit.record(session, f"lending.{row.kind}.approve", entity_type="lending_loan", entity_id=loan.id,
                 after={"restructure_id": row.id, "schedule_version": version.version, "periods": row.periods,
                        "apr": str(quote.apr), "annual_rate": None if row.annual_rate is None else str(row.annual_rate),
                        "capitalised": capitalised, "balance": row.balance_amount}, detail=note)
    terms = []
    if row.annual_rate is not None:
        terms.append(f"年利率调整为 {row.annual_rate * 100:.4g}%")
    if capitalised:
        terms.append(f"逾期金额 {format_yuan(capitalised)} 计入本金")
    customers.record_event(session, loan.customer_id, f"lending_{row.kind}",
                           f"贷款 #{loan.id} {label}：自第 {first} 期起本金 "
                           f"{format_yuan(row.balance_amount)} 分 {row.periods} 期偿还"
                           + (f"（{'，'.join(terms)}）" if terms else "") + f"（还款计划第 {version.version} 版）",
                           actor_staff_id=staff_id, ref_type="lending_restructure", ref_id=row.id)
    return row


def _capitalise(session: Session, loan: Loan, row: Restructure, overdue: list[Due], amount: int,
                staff_id: int | None) -> int:
    """Write the overdue installments off by a ``capitalisation`` entry (their amounts now in the new principal)."""
    terms = state.terms_for(session, loan)
    rows = state.installments(session, loan.id)
    by_id = {r.id: r for r in rows}
    entry, created = insert_repayment(session, loan, amount=amount, day=clock.today(), channel="other",
                                      reference=f"CAP-{row.id}", note=f"重组 #{row.id} 逾期金额资本化",
                                      staff_id=staff_id, purpose="capitalisation", kind="capitalisation")
    if not created:
        raise RestructureDecided(f"重组 #{row.id} 的逾期资本化已入账")
    fix_penalty(by_id, overdue)
    post(session, loan, entry, allocate(amount, overdue, terms.write_off_order), by_id, staff_id=staff_id,
         label="逾期资本化")
    return entry.id


def reject(session: Session, restructure_id: int, *, viewer: Viewer | None, note: str | None = None) -> Restructure:
    row = _decidable(session, restructure_id, viewer)
    _decide(session, row, "rejected", viewer, note)
    audit.record(session, f"lending.{row.kind}.reject", entity_type="lending_loan", entity_id=row.loan_id,
                 after={"restructure_id": row.id}, detail=note)
    return row


def restructures(session: Session, loan_id: int) -> list[Restructure]:
    return list(session.scalars(select(Restructure).where(Restructure.loan_id == loan_id)
                                .order_by(Restructure.id.desc())))


