"""Reads of loans in servicing, data-scoped.

A staff member sees a loan when they may see its customer (``crm.customers``: own / department / all,
co-handlers) or when it is assigned to them, or to someone in their scope, for collections (催收员).
Out of scope is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from core.db import InSubquery
from crm import customer_queries, customers, scope
from crm.models import Customer
from crm.scope import Viewer
from lending.models import BUCKETS, Application, Contract, Disbursement, Funder, Loan, LoanInstallment, Repayment
from lending.servicing.exceptions import LoanNotFound

__all__ = ["LoanFilter", "LoanRow", "filter_clauses", "funder_of", "funder_type_of", "get_loan", "list_loans", "repayments", "visible_clause"]


def visible_clause(viewer: Viewer):  # noqa: ANN201 - a SQL clause over Loan joined to Customer
    """Own scope: over Loan alone — the loans of the viewer's customers (their few ids first, from the customer
    indexes) or assigned to them, so PostgreSQL reads the loan indexes by customer and collector instead of
    looking up the customer of every loan. Wider scopes test the joined customer (a department's customers can
    be most of the table)."""
    if viewer.scope == "own":
        mine = select(Customer.id).where(customers.visible_clause(viewer)).correlate(None)
        return or_(InSubquery(Loan.customer_id, mine), scope.owner_filter(viewer, Loan.collector_staff_id))
    return or_(customers.visible_clause(viewer), scope.owner_filter(viewer, Loan.collector_staff_id))


def get_loan(session: Session, viewer: Viewer | None, loan_id: int, *, for_update: bool = False) -> Loan:
    stmt = select(Loan).where(Loan.id == loan_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    loan = session.scalar(stmt)
    if loan is None:
        raise LoanNotFound()
    if viewer is not None:
        customer = session.get(Customer, loan.customer_id)
        collector_visible = loan.collector_staff_id is not None and scope.can_see_owner(
            session, viewer, loan.collector_staff_id)
        if not collector_visible and (customer is None or not customers.can_view(session, viewer, customer)):
            raise LoanNotFound()
    return loan


@dataclass(frozen=True)
class LoanRow:
    loan: Loan
    customer: Customer
    contract_number: str
    outstanding_amount: int  # everything not yet paid, penalty included, future periods too
    overdue_amount: int  # of it, what is overdue


def _outstanding():  # noqa: ANN201 - correlated sums per loan
    i = LoanInstallment
    total = (i.principal_amount + i.interest_amount + i.fee_amount + i.penalty_amount - i.paid_principal_amount
             - i.paid_interest_amount - i.paid_fee_amount - i.paid_penalty_amount)
    all_ = select(func.coalesce(func.sum(total), 0)).where(i.loan_id == Loan.id).correlate(Loan).scalar_subquery()
    overdue = (select(func.coalesce(func.sum(total), 0)).where(i.loan_id == Loan.id, i.status == "overdue")
               .correlate(Loan).scalar_subquery())
    return all_, overdue


@dataclass(frozen=True)
class LoanFilter:
    """What the loan list (and every loan figure of analytics) is asked for. Empty values mean 'any'."""

    status: str | None = None
    bucket: str | None = None  # a bucket, or "overdue" for every bucket but C
    customer_id: int | None = None
    collector_id: int | None = None
    disbursed_from: date | None = None  # the disbursement's business date, inclusive
    disbursed_to: date | None = None
    owner_id: int | None = None  # the customer's owner (the salesperson)
    department_path: str | None = None  # the customer's owner is in this department subtree
    source: str | None = None  # the customer's source
    region: str | None = None  # contained in the customer's region, as the customer list matches it
    product_id: int | None = None
    owner_department_id: int | None = None  # the customer's owner is in this department itself (not below it)
    source_detail: str | None = None  # the customer's 来源明细, exactly (a channel code's "渠道码：…")
    industry: str | None = None  # the customer's industry (``crm.customer_queries.industry_clause``)
    funder_id: int | None = None  # the funder of the loan's contract (资方)
    funder_type: str | None = None  # that funder's type (lending.models.FunderType)

    @property
    def reads_customer(self) -> bool:
        """Whether the filter's clauses read the loan's customer row (those over the customer's id do not)."""
        return any((self.owner_id, self.department_path, self.owner_department_id, self.source, self.source_detail,
                    self.region))


def funder_of() -> ColumnElement[int]:
    """The loan's funder: the one its contract was signed with (a correlated scalar subquery)."""
    return select(Contract.funder_id).where(Contract.id == Loan.contract_id).scalar_subquery()


def funder_type_of() -> ColumnElement[str]:
    """The type of the loan's funder (a correlated scalar subquery)."""
    return (select(Funder.funder_type).join(Contract, Contract.funder_id == Funder.id)
            .where(Contract.id == Loan.contract_id).scalar_subquery())


def filter_clauses(viewer: Viewer, flt: LoanFilter) -> list[ColumnElement[bool]]:
    """WHERE clauses over Loan joined to Customer: the viewer's scope and the filter."""
    out: list[ColumnElement[bool]] = [visible_clause(viewer)]
    if flt.status:
        out.append(Loan.status == flt.status)
    if flt.bucket == "overdue":
        out.append(Loan.bucket != "C")
    elif flt.bucket in BUCKETS:
        out.append(Loan.bucket == flt.bucket)
    if flt.customer_id:
        out.append(Loan.customer_id == flt.customer_id)
    if flt.collector_id:
        out.append(Loan.collector_staff_id == flt.collector_id)
    if flt.disbursed_from or flt.disbursed_to:
        paid_out = select(Disbursement.id)
        if flt.disbursed_from:
            paid_out = paid_out.where(Disbursement.disbursement_date >= flt.disbursed_from)
        if flt.disbursed_to:
            paid_out = paid_out.where(Disbursement.disbursement_date <= flt.disbursed_to)
        out.append(Loan.disbursement_id.in_(paid_out))
    out += customer_queries.belonging_clauses(
        Loan.customer_id, owner_id=flt.owner_id, department_path=flt.department_path,
        owner_department_id=flt.owner_department_id, source=flt.source, source_detail=flt.source_detail,
        region=flt.region, industry=flt.industry)
    if flt.product_id:
        out.append(Loan.application_id.in_(select(Application.id).where(Application.product_id == flt.product_id)))
    if flt.funder_id:
        out.append(Loan.contract_id.in_(select(Contract.id).where(Contract.funder_id == flt.funder_id)))
    if flt.funder_type:
        out.append(Loan.contract_id.in_(select(Contract.id).join(Funder, Funder.id == Contract.funder_id)
                                        .where(Funder.funder_type == flt.funder_type)))
    return out


def loans_query(viewer: Viewer, *, status: str | None = None, bucket: str | None = None,
                customer_id: int | None = None, collector_id: int | None = None,
                flt: LoanFilter | None = None, extra: tuple[ColumnElement[bool], ...] = ()) -> Select:
    """The list's SELECT; ``extra``: clauses over Loan from above lending (the snapshot drill-down of analytics)."""
    all_, overdue = _outstanding()
    flt = flt or LoanFilter(status=status, bucket=bucket, customer_id=customer_id, collector_id=collector_id)
    return (select(Loan, Customer, Contract.number, all_, overdue)
            .join(Customer, Customer.id == Loan.customer_id).join(Contract, Contract.id == Loan.contract_id)
            .where(*filter_clauses(viewer, flt), *extra))


def list_loans(session: Session, viewer: Viewer, *, status: str | None = None, bucket: str | None = None,
               customer_id: int | None = None, collector_id: int | None = None, limit: int = 100,
               offset: int = 0, flt: LoanFilter | None = None,
               extra: tuple[ColumnElement[bool], ...] = ()) -> list[LoanRow]:
    stmt = loans_query(viewer, status=status, bucket=bucket, customer_id=customer_id, collector_id=collector_id,
                       flt=flt, extra=extra)
    stmt = stmt.order_by(Loan.overdue_days.desc(), Loan.id.desc()).limit(limit).offset(offset)
    return [LoanRow(loan, customer, number, int(outstanding), int(overdue))
            for loan, customer, number, outstanding, overdue in session.execute(stmt)]


def repayments(session: Session, loan_id: int) -> list[Repayment]:
    """Every entry of the loan, repayments and reversals, newest first."""
    return list(session.scalars(select(Repayment).where(Repayment.loan_id == loan_id)
                                .order_by(Repayment.id.desc())))
