"""Lending's payment purpose ``lending.installment``: a loan's current bill paid through ``payments``.

The bill (:func:`current_bill`) is what servicing says may be paid today: every installment due by
now with its penalty, and the current period (当期). Its obligation is ``loan:<loan id>:<period>``
(the latest period the bill covers), so one bill has one series of attempts.

When the money arrives, :func:`apply_installment` books it as a repayment through
:func:`lending.servicing.repayments.record_repayment` (the product's write-off order, oldest installment
first), with the payment's ``out_trade_no`` as the unique channel reference, in the same transaction
that marks the payment applied. More than is payable today (the bill was partly paid meanwhile) is kept as
the repayment's overpayment credit (溢缴款), refundable in part back through the order. A refusal (loan closed
meanwhile) leaves the money held for review in ``payments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import update
from sqlalchemy.orm import Session

from core import clock
from core.errors import NotFound
from lending.models import Loan, RepaymentRefund
from lending.servicing import repayments, state
from payments import purposes, withholding
from payments.models import PaymentOrder

PURPOSE = "lending.installment"


@dataclass(frozen=True)
class Bill:
    loan_id: int
    customer_id: int
    period: int  # the latest installment number the bill covers
    due_date: date
    amount: int  # fen payable today
    overdue: bool

    @property
    def obligation_ref(self) -> str:
        return f"loan:{self.loan_id}:{self.period}"


def loan_of(obligation_ref: str) -> int:
    kind, _, rest = obligation_ref.partition(":")
    loan_id = rest.partition(":")[0]
    if kind != "loan" or not loan_id.isdigit():
        raise NotFound(f"无法识别的还款事项：{obligation_ref}")
    return int(loan_id)


def current_bill(session: Session, loan: Loan, day: date | None = None) -> Bill | None:
    if loan.status != "active":
        return None
    day = day or clock.today()
    rows = state.installments(session, loan.id)
    dues = state.dues_as_of(state.terms_for(session, loan), rows, state.ledger(session, loan.id), day)
    if not dues:
        return None
    by_number = {r.number: r for r in rows}
    last = max(d.number for d in dues)
    return Bill(loan_id=loan.id, customer_id=loan.customer_id, period=last, due_date=by_number[last].due_date,
                amount=sum(d.total for d in dues), overdue=any(by_number[d.number].due_date < day for d in dues))


def apply_installment(session: Session, settlement: purposes.Settlement) -> str:
    repayment = repayments.record_repayment(
        session, loan_of(settlement.obligation_ref), viewer=None, amount=settlement.amount,
        external_reference=settlement.out_trade_no,
        channel="withholding" if settlement.method == "withholding" else "wechat",
        repayment_date=min(settlement.paid_date, clock.today()), keep_excess=True,
        note=f"{'代扣' if settlement.method == 'withholding' else '微信支付'} {settlement.transaction_id or ''}".strip())
    return f"lending_repayment:{repayment.id}"


def request_withholding(session: Session, loan: Loan, *, staff_id: int | None) -> PaymentOrder:
    """Debit the loan's current bill under the customer's authorisation (console 发起代扣, or a schedule)."""
    bill = current_bill(session, loan)
    if bill is None:
        raise NotFound("该贷款当前没有应还金额")
    return withholding.request(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                               customer_id=loan.customer_id, amount=bill.amount,
                               description=f"贷款 #{loan.id} 第 {bill.period} 期还款（代扣）", staff_id=staff_id)


def refund_finished(session: Session, outcome: purposes.RefundOutcome) -> None:
    """A repayment's refund (reversed, or of its overpayment credit) back through WeChat Pay/withholding got its
    final answer; a failed one may be tried again."""
    session.execute(update(RepaymentRefund).where(
        RepaymentRefund.payment_refund_id == outcome.refund_id, RepaymentRefund.status == "submitted").values(
        status="succeeded" if outcome.succeeded else "failed"))


purposes.register(PURPOSE, "贷款还款", apply_installment, on_refund=refund_finished)
