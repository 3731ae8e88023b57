"""做单报销 (per case) and marketing costs (per customer): submitted by staff, confirmed by finance (expense
booked, Dr 费用 / Cr 应付报销款), paid (Dr 应付报销款 / Cr cash/bank); voided (a confirmed one is reversed in
the ledger; a paid one cannot be voided) and resubmitted as a new record pointing at the voided one."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, aliased

from core import audit, clock
from crm.models import Customer, Staff
from crm.scope import Viewer, can_see_owner, owner_filter
from finance import agreements, ledger
from finance.access import FINANCE, require
from finance.amounts import fen
from finance.exceptions import FinanceInvalid, RecordNotFound, StateConflict
from finance.models import METHOD_LABELS, Agreement, Reimbursement, Settlement

CATEGORIES = ("交通费", "办公用品", "下户费", "餐饮招待", "资料费", "其他")
MARKETING_CATEGORIES = ("广告投放", "渠道推广", "活动物料", "其他")


def submit(session: Session, *, customer_id: int | None = None, agreement_id: int | None = None, category: str,
           amount: int, spent_date: date | None = None, approved_by_manager_id: int | None = None,
           note: str | None = None, viewer: Viewer | None, resubmitted_from_id: int | None = None) -> Reimbursement:
    """A case reimbursement (``agreement_id``) or a marketing cost for a customer (``customer_id`` only)."""
    if agreement_id is not None:
        agreement = agreements.get_agreement(session, viewer, agreement_id)
        customer_id, kind, allowed = agreement.customer_id, "case", CATEGORIES
    else:
        customer = session.get(Customer, customer_id) if customer_id else None
        if customer is None or (viewer is not None and not can_see_owner(session, viewer, customer.owner_id)):
            raise FinanceInvalid("客户不存在或不在您的数据范围内", field="customer_id")
        kind, allowed = "marketing", MARKETING_CATEGORIES
    if category not in allowed:
        raise FinanceInvalid(f"报销类别不正确：{category}（可选：{'、'.join(allowed)}）", field="category")
    day = spent_date or clock.today()
    if day > clock.today():
        raise FinanceInvalid("发生日期不能晚于今天", field="spent_date")
    if approved_by_manager_id is not None:
        manager = session.get(Staff, approved_by_manager_id)
        if manager is None or manager.role not in ("manager", "supervisor", "admin"):
            raise FinanceInvalid("审批经理须是经理、主管或管理员", field="approved_by_manager_id")
    row = Reimbursement(kind=kind, agreement_id=agreement_id, customer_id=customer_id, category=category,
                        amount=fen(amount, "报销金额", "amount"), spent_date=day,
                        approved_by_manager_id=approved_by_manager_id, note=(note or "").strip()[:200] or None,
                        status="submitted", entered_by_staff_id=viewer.staff_id if viewer else None,
                        created_at=clock.now(), resubmitted_from_id=resubmitted_from_id)
    session.add(row)
    session.flush()
    audit.record(session, "finance.reimbursement_submitted", entity_type="finance_reimbursement", entity_id=row.id,
                 after={"amount": row.amount, "category": category})
    return row


def get(session: Session, viewer: Viewer | None, reimbursement_id: int) -> Reimbursement:
    row = session.get(Reimbursement, reimbursement_id)
    if row is None:
        raise RecordNotFound("报销记录不存在")
    if viewer is not None and viewer.role not in FINANCE:
        if row.agreement_id is not None:
            agreements.get_agreement(session, viewer, row.agreement_id)
        elif row.entered_by_staff_id != viewer.staff_id and not can_see_owner(session, viewer, row.entered_by_staff_id):
            raise RecordNotFound("报销记录不存在")
    return row


def _move(session: Session, row: Reimbursement, source: tuple[str, ...], target: str, **values: Any) -> None:
    moved = session.execute(update(Reimbursement).where(Reimbursement.id == row.id, Reimbursement.status.in_(source))
                            .values(status=target, **values).execution_options(synchronize_session=False)).rowcount
    session.refresh(row)
    if moved != 1:
        raise StateConflict("报销状态已变化（可能已被他人处理），请刷新后重试")


def confirm(session: Session, reimbursement_id: int, *, viewer: Viewer | None) -> Reimbursement:
    require(viewer, FINANCE, "确认报销")
    row = get(session, viewer, reimbursement_id)
    _move(session, row, ("submitted",), "confirmed", confirmed_at=clock.now(),
          confirmed_by_staff_id=viewer.staff_id if viewer else None)
    expense = "reimbursement_expense" if row.kind == "case" else "marketing_expense"
    entry = ledger.post(session, source_type="reimbursement", source_id=row.id, source_key=f"reimbursement:{row.id}",
                        memo=f"报销确认 #{row.id} {row.category}", by_staff_id=viewer.staff_id if viewer else None,
                        lines=[ledger.Line(expense, debit=row.amount),
                               ledger.Line("reimbursements_payable", credit=row.amount)])
    row.journal_entry_id = entry.id
    session.flush()
    audit.record(session, "finance.reimbursement_confirmed", entity_type="finance_reimbursement", entity_id=row.id)
    return row


def pay(session: Session, reimbursement_id: int, *, method: str, viewer: Viewer | None) -> Reimbursement:
    require(viewer, FINANCE, "支付报销")
    if method not in METHOD_LABELS:
        raise FinanceInvalid(f"付款方式不正确：{method}", field="method")
    row = get(session, viewer, reimbursement_id)
    _move(session, row, ("confirmed",), "paid", paid_at=clock.now(), paid_method=method,
          paid_by_staff_id=viewer.staff_id if viewer else None)
    ledger.post(session, source_type="reimbursement_paid", source_id=row.id, source_key=f"reimbursement_paid:{row.id}",
                memo=f"报销付款 #{row.id}", by_staff_id=viewer.staff_id if viewer else None,
                lines=[ledger.Line("reimbursements_payable", debit=row.amount),
                       ledger.Line(ledger.method_account(method), credit=row.amount)])
    audit.record(session, "finance.reimbursement_paid", entity_type="finance_reimbursement", entity_id=row.id)
    return row


def void(session: Session, reimbursement_id: int, *, reason: str, viewer: Viewer | None) -> Reimbursement:
    row = get(session, viewer, reimbursement_id)
    if viewer is not None and viewer.role not in FINANCE and row.entered_by_staff_id != viewer.staff_id:
        require(viewer, FINANCE, "作废他人的报销")
    if not (reason or "").strip():
        raise FinanceInvalid("请填写作废原因", field="reason")
    if row.status == "paid":
        raise StateConflict("已支付的报销不能作废")
    was = row.status
    _move(session, row, ("submitted", "confirmed"), "voided", voided_at=clock.now())
    if was == "confirmed" and row.journal_entry_id:
        ledger.reverse(session, row.journal_entry_id, reason=f"报销作废：{reason.strip()}",
                       by_staff_id=viewer.staff_id if viewer else None)
    audit.record(session, "finance.reimbursement_voided", entity_type="finance_reimbursement", entity_id=row.id,
                 detail=reason.strip()[:200])
    return row


def resubmit(session: Session, reimbursement_id: int, *, amount: int | None = None, category: str | None = None,
             note: str | None = None, viewer: Viewer | None) -> Reimbursement:
    """A voided reimbursement entered again (corrected)."""
    row = get(session, viewer, reimbursement_id)
    if row.status != "voided":
        raise StateConflict("只有已作废的报销可以重新提交")
    return submit(session, customer_id=row.customer_id, agreement_id=row.agreement_id,
                  category=category or row.category, amount=row.amount if amount is None else amount,
                  spent_date=row.spent_date, approved_by_manager_id=row.approved_by_manager_id,
                  note=note if note is not None else row.note, viewer=viewer, resubmitted_from_id=row.id)


def listing(session: Session, viewer: Viewer, *, status: str | None = None, limit: int = 100,
            offset: int = 0) -> list[tuple[Reimbursement, Customer, Agreement | None, Settlement | None]]:
    """The list: customer, agreement number, funder type, amount, category, confirmation, payer, paid at, entered by."""
    stmt = listing_query(viewer, status=status)
    return list(session.execute(stmt.order_by(Reimbursement.id.desc()).limit(limit).offset(offset)))


def listing_query(viewer: Viewer, *, status: str | None = None) -> Select[Any]:
    """The reimbursement list's SELECT (scope and filter; analytics' 报销 figures aggregate it)."""
    entered = aliased(Staff)
    stmt = (select(Reimbursement, Customer, Agreement, Settlement)
            .join(Customer, Customer.id == Reimbursement.customer_id)
            .outerjoin(Agreement, Agreement.id == Reimbursement.agreement_id)
            .outerjoin(Settlement, Settlement.agreement_id == Reimbursement.agreement_id)
            .join(entered, entered.id == Reimbursement.entered_by_staff_id, isouter=True))
    if viewer.role not in FINANCE:
        stmt = stmt.where(owner_filter(viewer, Reimbursement.entered_by_staff_id))
    if status:
        stmt = stmt.where(Reimbursement.status == status)
    return stmt
