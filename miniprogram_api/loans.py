"""My loans: contracts, loans with their schedules, what is paid, and the next due date and amount.

Read from the lending domain's tables (``Contract``, ``Loan``, ``LoanInstallment``), always scoped to
the customer: only rows whose ``customer_id`` is theirs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from lending.models import Contract, Loan, LoanInstallment
from lending.servicing import prepayments, reminders
from miniprogram_api.catalog import yuan
from miniprogram_api.exceptions import LoanNotFound

INSTALLMENT_LABELS = {"pending": "待还", "paid": "已还", "overdue": "已逾期", "partial": "部分还款"}
LOAN_LABELS = {"active": "还款中", "closed": "已结清"}


def _installment(row: LoanInstallment) -> dict[str, Any]:
    total = row.principal_amount + row.interest_amount + row.fee_amount
    return {"number": row.number, "due_date": row.due_date.isoformat(), "principal": yuan(row.principal_amount),
            "interest": yuan(row.interest_amount), "fee": yuan(row.fee_amount), "total": yuan(total),
            "penalty": yuan(row.penalty_amount), "paid": yuan(row.paid_amount),
            "paid_principal": yuan(row.paid_principal_amount), "paid_interest": yuan(row.paid_interest_amount),
            "paid_fee": yuan(row.paid_fee_amount), "paid_penalty": yuan(row.paid_penalty_amount),
            "outstanding": yuan(max(0, row.outstanding_amount)), "status": row.status,
            "status_label": INSTALLMENT_LABELS.get(row.status, row.status)}


def my_loans(session: Session, customer_id: int) -> dict[str, Any]:
    contracts = list(session.scalars(select(Contract).where(Contract.customer_id == customer_id)
                                     .order_by(Contract.id.desc())))
    loans = list(session.scalars(select(Loan).where(Loan.customer_id == customer_id).order_by(Loan.id.desc())))
    by_contract = {c.id: c for c in contracts}
    out_loans = []
    today = clock.today()
    for loan in loans:
        rows = list(session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id)
                                    .order_by(LoanInstallment.number)))
        upcoming = next((r for r in rows if r.outstanding_amount > 0), None)
        contract = by_contract.get(loan.contract_id)
        out_loans.append({
            "id": loan.id, "contract_number": contract.number if contract else None,
            "principal": yuan(loan.principal_amount), "status": loan.status,
            "status_label": LOAN_LABELS.get(loan.status, loan.status), "start_date": loan.start_date.isoformat(),
            "next_due_date": upcoming.due_date.isoformat() if upcoming else None,
            "next_due_amount": yuan(upcoming.outstanding_amount) if upcoming else None,
            "overdue": bool(upcoming and (upcoming.status == "overdue" or upcoming.due_date < today)),
            "overdue_days": loan.overdue_days,
            "paid_total": yuan(sum(r.paid_amount for r in rows)),
            "outstanding_total": yuan(sum(max(0, r.outstanding_amount) for r in rows)),
            "schedule": [_installment(r) for r in rows],
        })
    out_contracts = [{"id": c.id, "number": c.number, "status": c.status, "principal": yuan(c.principal_amount),
                      "term_months": c.term_months, "signed_at": c.signed_at} for c in contracts]
    return {"loans": out_loans, "contracts": out_contracts, "note": None}


def my_loan(session: Session, customer_id: int, loan_id: int) -> dict[str, Any]:
    for loan in my_loans(session, customer_id)["loans"]:
        if loan["id"] == loan_id:
            return loan
    raise LoanNotFound()


def prepayment_quote(session: Session, customer_id: int, loan_id: int, on: date, amount: int | None,
                     mode: str) -> dict[str, Any]:
    """The borrower's own prepayment quote (amounts in yuan strings); another customer's loan is not found."""
    loan = session.get(Loan, loan_id)
    if loan is None or loan.customer_id != customer_id:
        raise LoanNotFound()
    q = prepayments.quote(session, loan, on, amount=amount, mode=mode).as_dict()
    out: dict[str, Any] = {k[:-7] if k.endswith("_amount") else k: yuan(v) if k.endswith("_amount") else v
                           for k, v in q.items() if k not in ("schedule", "due")}
    out["due"] = {k: yuan(v) for k, v in q["due"].items()}
    out["due_total"] = yuan(q["due_amount"])
    out["kind_label"] = "提前结清" if q["kind"] == "payoff" else "部分提前还款"
    out["mode_label"] = prepayments.MODE_LABELS.get(q["mode"] or "")
    out["schedule"] = [{k[:-7] if k.endswith("_amount") else k: yuan(v) if k.endswith("_amount") else v
                        for k, v in row.items()} for row in q["schedule"]]
    return out


def set_reminder_opt_out(session: Session, customer_id: int, out: bool) -> None:
    """The borrower's choice of repayment reminders (退订 when ``out``)."""
    reminders.opt_out(session, customer_id, out=out)
