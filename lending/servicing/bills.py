"""The bills of every loan (还款计划/账单列表): installments across loans, data-scoped like the loan list.

A bill is one installment (``LoanInstallment``) of a loan the viewer may see — the loan list's scope and filters
(``loans.filter_clauses``) — falling due in a date range and in a state: paid (已还清), unpaid (未还清: pending or
overdue) or overdue (已逾期). Its amounts are the contractual ones, principal + interest + fee; the penalty (罚息)
accrues on top and is shown apart, so that the totals read as the collection rate of analytics reads them
(期内到期已还 / 期内到期应还). Totals are SQL aggregates over the whole filtered set, not sums of a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from crm.models import Customer
from crm.scope import Viewer
from lending.models import Contract, Loan, LoanInstallment
from lending.servicing import loans

__all__ = ["BILL_STATES", "BillFilter", "BillRow", "BillTotals", "bills_query", "due_amount", "list_bills",
           "paid_amount", "totals"]

# the state filter: label, and the installment statuses it covers
BILL_STATES = {"unpaid": "未还清", "overdue": "已逾期", "paid": "已还清"}
_STATUSES = {"unpaid": ("pending", "overdue"), "overdue": ("overdue",), "paid": ("paid",)}


@dataclass(frozen=True)
class BillFilter:
    """Which bills: due in ``due_from``…``due_to`` (business dates, inclusive), in a state, of the loans the loan
    filter selects (its owner, department, source, region, product …). Empty values mean 'any'."""

    due_from: date | None = None
    due_to: date | None = None
    state: str | None = None  # BILL_STATES
    loan: loans.LoanFilter = field(default_factory=loans.LoanFilter)


def due_amount(i: type[LoanInstallment] = LoanInstallment) -> ColumnElement[Any]:
    """What the bill asks for, penalty aside: principal + interest + fee."""
    return i.principal_amount + i.interest_amount + i.fee_amount


def paid_amount(i: type[LoanInstallment] = LoanInstallment) -> ColumnElement[Any]:
    return i.paid_principal_amount + i.paid_interest_amount + i.paid_fee_amount


def _clauses(viewer: Viewer, flt: BillFilter) -> list[ColumnElement[bool]]:
    i = LoanInstallment
    out = loans.filter_clauses(viewer, flt.loan)
    if flt.due_from:
        out.append(i.due_date >= flt.due_from)
    if flt.due_to:
        out.append(i.due_date <= flt.due_to)
    if flt.state in _STATUSES:
        out.append(i.status.in_(_STATUSES[flt.state]))
    return out


def _needs_customer(viewer: Viewer, flt: BillFilter) -> bool:
    """Whether the clauses read the loan's customer: a department scope (own and all are over the loan alone,
    ``loans.visible_clause``) or a customer filter. Otherwise the join changes no row (every loan has its
    customer) and an aggregate leaves it out."""
    return viewer.scope not in ("all", "own") or flt.loan.reads_customer


def bills_query(viewer: Viewer, flt: BillFilter, *columns: Any, customer: bool = True) -> Select[Any]:
    """SELECT ``columns`` (default: installment, loan, customer, contract number) over the filtered bills;
    ``customer=False``: join the customer only when the filter needs it (columns that do not read it)."""
    i = LoanInstallment
    stmt = select(*(columns or (i, Loan, Customer, Contract.number))).select_from(i).join(Loan, Loan.id == i.loan_id)
    if customer or not columns or _needs_customer(viewer, flt):
        stmt = stmt.join(Customer, Customer.id == Loan.customer_id)
    if not columns:
        stmt = stmt.join(Contract, Contract.id == Loan.contract_id)
    return stmt.where(*_clauses(viewer, flt))


@dataclass(frozen=True)
class BillRow:
    installment: LoanInstallment
    loan: Loan
    customer: Customer
    contract_number: str

    @property
    def due_amount(self) -> int:
        i = self.installment
        return i.principal_amount + i.interest_amount + i.fee_amount

    @property
    def paid_amount(self) -> int:
        i = self.installment
        return i.paid_principal_amount + i.paid_interest_amount + i.paid_fee_amount

    @property
    def outstanding_amount(self) -> int:
        return self.due_amount - self.paid_amount

    @property
    def penalty_outstanding(self) -> int:
        return self.installment.penalty_amount - self.installment.paid_penalty_amount


@dataclass(frozen=True)
class BillTotals:
    count: int
    due_amount: int
    paid_amount: int

    @property
    def outstanding_amount(self) -> int:
        return self.due_amount - self.paid_amount


def totals(session: Session, viewer: Viewer, flt: BillFilter) -> BillTotals:
    """The count and the sums of due and paid over every filtered bill, in one aggregate query."""
    count, due, paid = session.execute(bills_query(
        viewer, flt, func.count(LoanInstallment.id), func.coalesce(func.sum(due_amount()), 0),
        func.coalesce(func.sum(paid_amount()), 0), customer=False)).one()
    return BillTotals(int(count or 0), int(due or 0), int(paid or 0))


def list_bills(session: Session, viewer: Viewer, flt: BillFilter, *, limit: int = 50, offset: int = 0) -> list[BillRow]:
    """A page of bills, earliest due first (then by loan and number)."""
    i = LoanInstallment
    stmt = bills_query(viewer, flt).order_by(i.due_date, i.loan_id, i.number).limit(limit).offset(offset)
    return [BillRow(inst, loan, customer, number) for inst, loan, customer, number in session.execute(stmt)]
