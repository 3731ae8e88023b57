"""Waivers (减免) of penalty, interest or fee, maker-checker.

- Requested (:func:`request_waiver`) by collections or service staff who can see the loan: one installment,
  one component, an amount no larger than what is still owed of it (penalty as of today), a reason.
- Decided once by someone else (:func:`approve_waiver`, :func:`reject_waiver`): the approver's role needs an
  authority configured per role (``WaiverLimit``, :func:`set_limit`; no row, no authority) and the amount may
  not exceed that role's limit. The status moves from ``requested`` by a conditional UPDATE, so two approvers
  at once decide it once.
- An approval is posted as its own transaction: a ``Repayment`` of kind ``waiver`` (reference
  ``WAIVER-<id>``) with one allocation, under the loan's row lock; the installment's paid amount follows and the
  loan is recomputed like after a payment (a bill whose rest is waived is paid; the loan may close). It is not
  money received: promises to pay and the ``lending.repayment_recorded`` event count repayments only.

Refused with the reason, nothing written: an amount above what is owed, above the approver's limit, an
approver without authority or deciding their own request, a decided request, a closed loan.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import PermissionDenied
from core.money import format_yuan
from crm.models import ROLE_LABELS, Role
from crm.scope import Viewer
from lending.models import COMPONENT_LABELS, WAIVER_COMPONENTS, Loan, LoanInstallment, Repayment, Waiver, WaiverLimit
from lending.servicing import state
from lending.servicing.exceptions import LoanClosed, WaiverAboveLimit, WaiverDecided, WaiverInvalid, WaiverNotFound
from lending.servicing.loans import get_loan
from lending.servicing.posting import post

__all__ = ["REQUESTERS", "approve_waiver", "get_waiver", "limits", "owed", "reject_waiver", "request_waiver", "set_limit",
           "waivers"]

REQUESTERS = frozenset({Role.COLLECTOR, Role.RISK, Role.SALES, Role.SUPERVISOR, Role.FINANCE, Role.MANAGER, Role.ADMIN})
LIMIT_SETTERS = frozenset({Role.ADMIN})


def owed(session: Session, installment: LoanInstallment, component: str, day: date | None = None) -> int:
    """What is still owed of ``component`` on the installment (fen); penalty as of ``day`` (default today)."""
    day = day or clock.today()
    if component == "penalty":
        loan = session.get(Loan, installment.loan_id)
        assert loan is not None
        loan_terms = state.terms_for(session, loan)
        entries = state.ledger(session, installment.loan_id).get(installment.id, [])
        penalty = max(state.penalty_as_of(loan_terms, installment, entries, day), installment.paid_penalty_amount)
        return penalty - installment.paid_penalty_amount
    if component == "interest":
        return installment.interest_amount - installment.paid_interest_amount
    return installment.fee_amount - installment.paid_fee_amount


def request_waiver(session: Session, loan_id: int, *, viewer: Viewer | None, installment_number: int,
                   component: str, amount: int, reason: str) -> Waiver:
    """Ask for a waiver (减免申请). Only flushes."""
    if viewer is not None and viewer.role not in REQUESTERS:
        raise PermissionDenied("只有催收、客服（销售）、风控、财务、经理或管理员可以申请减免")
    reason = (reason or "").strip()
    if component not in WAIVER_COMPONENTS:
        raise WaiverInvalid(f"只能减免罚息、利息或费用：{component}", field="component")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise WaiverInvalid("减免金额必须是大于 0 的整数（分）", field="amount")
    if not reason:
        raise WaiverInvalid("请填写减免原因", field="reason")
    loan = get_loan(session, viewer, loan_id, for_update=True)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能申请减免")
    row = session.scalar(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id,
                                                       LoanInstallment.number == installment_number))
    if row is None:
        raise WaiverInvalid(f"贷款 #{loan.id} 没有第 {installment_number} 期", field="installment_number")
    left = owed(session, row, component)
    if amount > left:
        raise WaiverInvalid(f"第 {row.number} 期{COMPONENT_LABELS[component]}尚欠 {format_yuan(left)}，"
                            f"减免 {format_yuan(amount)} 超过了它", field="amount", owed=left)
    waiver = Waiver(loan_id=loan.id, installment_id=row.id, component=component, amount=amount, status="requested",
                    reason=reason[:300], requested_by_staff_id=viewer.staff_id if viewer else None,
                    requested_at=clock.now())
    session.add(waiver)
    session.flush()
    audit.record(session, "lending.waiver.request", entity_type="lending_loan", entity_id=loan.id,
                 after={"waiver_id": waiver.id, "installment": row.number, "component": component, "amount": amount},
                 detail=reason[:300])
    return waiver


def limit_of(session: Session, role: str) -> int | None:
    return session.scalar(select(WaiverLimit.max_amount).where(WaiverLimit.role == str(role)))


def get_waiver(session: Session, viewer: Viewer | None, waiver_id: int) -> Waiver:
    waiver = session.get(Waiver, waiver_id)
    if waiver is None:
        raise WaiverNotFound()
    get_loan(session, viewer, waiver.loan_id)  # out of scope is not found
    return waiver


def _decidable(session: Session, waiver_id: int, viewer: Viewer | None) -> Waiver:
    waiver = get_waiver(session, viewer, waiver_id)
    if waiver.status != "requested":
        raise WaiverDecided(f"减免申请 #{waiver.id} 已审批，不能重复审批")
    if viewer is not None:
        if viewer.staff_id == waiver.requested_by_staff_id:
            raise PermissionDenied("不能审批自己提交的减免申请")
        limit = limit_of(session, viewer.role)
        if limit is None:
            raise PermissionDenied(f"{ROLE_LABELS.get(str(viewer.role), viewer.role)}角色没有减免审批权限")
    return waiver


def _decide(session: Session, waiver: Waiver, status: str, viewer: Viewer | None, note: str | None) -> None:
    moved = session.execute(update(Waiver).where(Waiver.id == waiver.id, Waiver.status == "requested").values(
        status=status, decided_by_staff_id=viewer.staff_id if viewer else None, decided_at=clock.now(),
        decision_note=(note or "").strip()[:300] or None).execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        raise WaiverDecided(f"减免申请 #{waiver.id} 已被他人审批")
    session.refresh(waiver)


def approve_waiver(session: Session, waiver_id: int, *, viewer: Viewer | None, note: str | None = None) -> Waiver:
    """Approve and post the waiver (its own transaction). Only flushes."""
    waiver = _decidable(session, waiver_id, viewer)
    if viewer is not None:
        limit = limit_of(session, viewer.role) or 0
        if waiver.amount > limit:
            raise WaiverAboveLimit(f"减免 {format_yuan(waiver.amount)} 超过{ROLE_LABELS.get(str(viewer.role), viewer.role)}"
                                   f"的审批额度 {format_yuan(limit)}，请由更高权限审批", limit=limit)
    loan = get_loan(session, viewer, waiver.loan_id, for_update=True)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能再减免")
    row = session.get(LoanInstallment, waiver.installment_id)
    assert row is not None
    session.refresh(row)
    today = clock.today()
    left = owed(session, row, waiver.component, today)
    if waiver.amount > left:
        raise WaiverInvalid(f"第 {row.number} 期{COMPONENT_LABELS[waiver.component]}现只欠 {format_yuan(left)}，"
                            f"少于申请减免的 {format_yuan(waiver.amount)}（期间已有还款），请驳回后重新申请",
                            field="amount", owed=left)
    _decide(session, waiver, "approved", viewer, note)
    if waiver.component == "penalty":  # the penalty as of today written on the row before a part is waived
        row.penalty_amount = row.paid_penalty_amount + left
    staff_id = viewer.staff_id if viewer else None
    posting = Repayment(loan_id=loan.id, kind="waiver", purpose="waiver", amount=waiver.amount, repayment_date=today,
                        channel="other", external_reference=f"WAIVER-{waiver.id}",
                        note=f"减免 #{waiver.id}：{waiver.reason}"[:300], by_staff_id=staff_id, created_at=clock.now())
    session.add(posting)
    session.flush()
    session.execute(update(Waiver).where(Waiver.id == waiver.id).values(repayment_id=posting.id)
                    .execution_options(synchronize_session=False))
    post(session, loan, posting, [(row.id, waiver.component, waiver.amount)], {row.id: row}, staff_id=staff_id,
         label=f"减免{COMPONENT_LABELS[waiver.component]}")
    session.refresh(waiver)
    audit.record(session, "lending.waiver.approve", entity_type="lending_loan", entity_id=loan.id,
                 after={"waiver_id": waiver.id, "repayment_id": posting.id, "amount": waiver.amount,
                        "component": waiver.component}, detail=note)
    return waiver


def reject_waiver(session: Session, waiver_id: int, *, viewer: Viewer | None, note: str | None = None) -> Waiver:
    waiver = _decidable(session, waiver_id, viewer)
    _decide(session, waiver, "rejected", viewer, note)
    audit.record(session, "lending.waiver.reject", entity_type="lending_loan", entity_id=waiver.loan_id,
                 after={"waiver_id": waiver.id}, detail=note)
    return waiver


def waivers(session: Session, *, loan_id: int | None = None, status: str | None = None,
            limit: int = 200) -> list[Waiver]:
    """Waivers, newest first (the caller has checked the loan's scope, or lists for an approver)."""
    stmt = select(Waiver).order_by(Waiver.id.desc()).limit(limit)
    if loan_id is not None:
        stmt = stmt.where(Waiver.loan_id == loan_id)
    if status:
        stmt = stmt.where(Waiver.status == status)
    return list(session.scalars(stmt))


def limits(session: Session) -> dict[str, int]:
    return {role: amount for role, amount in session.execute(select(WaiverLimit.role, WaiverLimit.max_amount))}


def set_limit(session: Session, role: str, max_amount: int | None, *, viewer: Viewer | None) -> None:
    """Set (or, with None, remove) a role's waiver approval limit (管理员)."""
    if viewer is not None and viewer.role not in LIMIT_SETTERS:
        raise PermissionDenied("只有管理员可以设置减免审批额度")
    if role not in {str(r) for r in Role}:
        raise WaiverInvalid(f"未知角色：{role}", field="role")
    row = session.get(WaiverLimit, role)
    before = row.max_amount if row else None
    if max_amount is None:
        if row is not None:
            session.delete(row)
    else:
        if isinstance(max_amount, bool) or not isinstance(max_amount, int) or max_amount < 0:
            raise WaiverInvalid("审批额度必须是不小于 0 的整数（分）", field="max_amount")
        if row is None:
            session.add(WaiverLimit(role=role, max_amount=max_amount, updated_at=clock.now(),
                                    updated_by_staff_id=viewer.staff_id if viewer else None))
        else:
            row.max_amount, row.updated_at = max_amount, clock.now()
            row.updated_by_staff_id = viewer.staff_id if viewer else None
    session.flush()
    audit.record(session, "lending.waiver.limit", entity_type="lending_waiver_limit", entity_id=role,
                 before={"max_amount": before}, after={"max_amount": max_amount})
