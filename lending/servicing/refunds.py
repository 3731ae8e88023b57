"""Refunds (退款): the money of a reversed repayment, or part or all of a repayment's overpayment credit (溢缴款).

- A reversed repayment (冲正: it no longer pays anything) is refunded in full, once: one live refund (submitted or
  succeeded) per repayment, decided by a partial unique index in the database. A refund the provider failed
  (``failed``) may be tried again; the new attempt gets its own refund number, and never two live ones exist.
- An overpayment: a repayment booked for more than was payable keeps the excess as credit on the loan
  (``record_repayment(keep_excess=True)``; a payment through ``payments`` of more than the bill does so too). Its
  credit (the amount less its standing write-off less its refunds not failed) may be refunded in part, the rest
  staying as credit; never more than the credit (checked under the loan's row lock, which every posting takes).

The route follows the money:

- it came through ``payments`` (WeChat Pay or withholding 代扣, its reference the order's ``out_trade_no``):
  refunded back to where it came from, through :func:`payments.refunds.request` (the provider's refund;
  the simulator in development; payments never refunds more than the order paid);
- otherwise (bank transfer, cash, other): finance pays it out and records the outgoing slip's reference here.

Finance, managers and administrators refund; audited and on the customer's timeline. Refused with the reason,
nothing written: a repayment not reversed (for its full refund), a waiver, a second live refund, an amount above
the credit, a manual refund without its reference.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from crm import customers
from crm.scope import Viewer
from lending.models import Loan, Repayment, RepaymentAllocation, RepaymentRefund
from lending.servicing import state
from lending.servicing.exceptions import RefundRefused, RepaymentInvalid
from lending.servicing.loans import get_loan
from lending.servicing.repayments import check_recorder, get_repayment, reversal_of
from payments import orders
from payments import refunds as payment_refunds

__all__ = ["PAYMENT_CHANNELS", "credit_of", "credits", "loan_credit", "refund_of", "refund_overpayment",
           "refund_reversed", "refunds"]

PAYMENT_CHANNELS = frozenset({"wechat", "withholding"})  # money that came through ``payments``
LIVE = ("submitted", "succeeded")


def refund_of(session: Session, repayment_id: int) -> RepaymentRefund | None:
    """The live (submitted or succeeded) refund of a reversed repayment, if any."""
    return session.scalar(select(RepaymentRefund).where(RepaymentRefund.repayment_id == repayment_id,
                                                        RepaymentRefund.kind == "reversed",
                                                        RepaymentRefund.status.in_(LIVE)))


def refunds(session: Session, loan_id: int) -> list[RepaymentRefund]:
    return list(session.scalars(select(RepaymentRefund).where(RepaymentRefund.loan_id == loan_id)
                                .order_by(RepaymentRefund.id)))


def _refunded(session: Session, repayment_ids: list[int], kind: str) -> dict[int, int]:
    """Refunds not failed, fen per repayment."""
    if not repayment_ids:
        return {}
    return {rid: int(fen) for rid, fen in session.execute(
        select(RepaymentRefund.repayment_id, func.sum(RepaymentRefund.amount))
        .where(RepaymentRefund.repayment_id.in_(repayment_ids), RepaymentRefund.kind == kind,
               RepaymentRefund.status.in_(LIVE)).group_by(RepaymentRefund.repayment_id))}


def credits(session: Session, loan_id: int) -> dict[int, int]:
    """The overpayment credit (溢缴款) of each standing repayment of the loan that has some, fen."""
    allocated = (select(func.coalesce(func.sum(RepaymentAllocation.amount), 0))
                 .where(RepaymentAllocation.repayment_id == Repayment.id).scalar_subquery())
    rows = session.execute(select(Repayment.id, Repayment.amount - allocated).where(
        Repayment.loan_id == loan_id, state.standing_clause(("repayment",)))).all()
    excess = {rid: int(fen) for rid, fen in rows if fen}
    refunded = _refunded(session, list(excess), "overpayment")
    out = {rid: fen - refunded.get(rid, 0) for rid, fen in excess.items()}
    return {rid: fen for rid, fen in out.items() if fen > 0}


def credit_of(session: Session, repayment_id: int) -> int:
    repayment = session.get(Repayment, repayment_id)
    return credits(session, repayment.loan_id).get(repayment_id, 0) if repayment is not None else 0


def loan_credit(session: Session, loan_id: int) -> int:
    return sum(credits(session, loan_id).values())


def _through_payments(session: Session, repayment: Repayment) -> bool:
    return (repayment.channel in PAYMENT_CHANNELS and repayment.external_reference is not None
            and orders.by_out_trade_no(session, repayment.external_reference) is not None)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RepaymentInvalid("请填写退款原因", field="reason")
    return reason


def _send(session: Session, repayment: Repayment, *, kind: str, amount: int, reason: str, reference: str | None,
          staff_id: int | None) -> RepaymentRefund:
    """One refund attempt: back through the order the money came by, or recorded as paid out by finance."""
    via_payments = _through_payments(session, repayment)
    reference = (reference or "").strip()
    if not via_payments and not reference:
        raise RepaymentInvalid("请填写退款流水号（转出款项的银行回单号或凭证号，最多 64 位）", field="reference")
    if len(reference) > 64:
        raise RepaymentInvalid("退款流水号最多 64 位", field="reference")
    attempt = 1 + (session.scalar(select(func.count()).select_from(RepaymentRefund).where(
        RepaymentRefund.repayment_id == repayment.id, RepaymentRefund.kind == kind)) or 0)
    label = "还款冲正退款" if kind == "reversed" else "溢缴款退款"
    try:
        with session.begin_nested():
            if via_payments:
                assert repayment.external_reference is not None
                order = orders.by_out_trade_no(session, repayment.external_reference)
                if order is None:
                    raise RefundRefused(f"找不到还款 #{repayment.id} 的支付订单 {repayment.external_reference}")
                # the first refund of a reversed repayment keeps the number it always had; later attempts and
                # overpayment refunds are numbered apart (a failed number is never reused)
                number = f"R{order.out_trade_no[1:]}-L{repayment.id}" + (
                    "" if kind == "reversed" and attempt == 1 else f"-{'O' if kind == 'overpayment' else 'T'}{attempt}")
                sent = payment_refunds.request(
                    session, order.id, amount=amount, reason=f"{label}：{reason}", out_refund_no=number,
                    refund_ref=f"lending_repayment:{repayment.id}", staff_id=staff_id)
                row = RepaymentRefund(loan_id=repayment.loan_id, repayment_id=repayment.id, kind=kind, amount=amount,
                                      route="payments", payment_refund_id=sent.id,
                                      external_reference=sent.out_refund_no,
                                      status=sent.status if sent.status in ("succeeded", "failed") else "submitted",
                                      reason=reason[:300], by_staff_id=staff_id, created_at=clock.now())
            else:
                row = RepaymentRefund(loan_id=repayment.loan_id, repayment_id=repayment.id, kind=kind, amount=amount,
                                      route="manual", external_reference=reference, status="succeeded",
                                      reason=reason[:300], by_staff_id=staff_id, created_at=clock.now())
            session.add(row)
            session.flush()
    except IntegrityError:
        raise RefundRefused(f"还款 #{repayment.id} 已有进行中或已完成的退款，或退款流水号 {reference} 已被使用") from None
    audit.record(session, "lending.repayment.refund", entity_type="lending_loan", entity_id=repayment.loan_id,
                 after={"refund_id": row.id, "repayment_id": repayment.id, "kind": kind, "amount": row.amount,
                        "route": row.route, "reference": row.external_reference, "status": row.status,
                        "attempt": attempt}, detail=reason)
    loan = session.get(Loan, repayment.loan_id)
    assert loan is not None
    what = f"已冲正的还款 #{repayment.id}" if kind == "reversed" else f"还款 #{repayment.id} 的溢缴款"
    customers.record_event(session, loan.customer_id, "lending_repayment_refunded",
                           f"贷款 #{loan.id} {what}退款 {format_yuan(row.amount)}"
                           f"（{'原路退回' if row.route == 'payments' else '财务转出'} {row.external_reference}）",
                           actor_staff_id=staff_id, ref_type="lending_repayment_refund", ref_id=row.id)
    return row


def refund_reversed(session: Session, repayment_id: int, *, viewer: Viewer | None, reason: str,
                    reference: str | None = None) -> RepaymentRefund:
    """Refund a reversed repayment in full (less what was refunded of its credit before the reversal); after a
    failed attempt, again. Only flushes."""
    check_recorder(viewer)
    reason = _reason(reason)
    repayment = get_repayment(session, viewer, repayment_id)
    if repayment.kind != "repayment":
        raise RefundRefused("只有还款可以退款（减免和冲正记录没有收到钱）")
    get_loan(session, viewer, repayment.loan_id, for_update=True)  # one refund decision at a time per loan
    if reversal_of(session, repayment.id) is None:
        raise RefundRefused(f"还款 #{repayment.id} 尚未冲正，仍在冲抵欠款，不能退款；请先冲正")
    if (done := refund_of(session, repayment.id)) is not None:
        raise RefundRefused(f"还款 #{repayment.id} 已于退款 #{done.id} 退款"
                            f"{'（处理中）' if done.status == 'submitted' else ''}，不能重复退款")
    amount = repayment.amount - _refunded(session, [repayment.id], "overpayment").get(repayment.id, 0)
    if amount <= 0:
        raise RefundRefused(f"还款 #{repayment.id} 的钱已全部作为溢缴款退回，没有可退的金额")
    return _send(session, repayment, kind="reversed", amount=amount, reason=reason, reference=reference,
                 staff_id=viewer.staff_id if viewer else None)


def refund_overpayment(session: Session, repayment_id: int, *, viewer: Viewer | None, amount: int, reason: str,
                       reference: str | None = None) -> RepaymentRefund:
    """Refund ``amount`` fen of a repayment's overpayment credit (part or all; the rest stays as credit). Only
    flushes."""
    check_recorder(viewer)
    reason = _reason(reason)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RepaymentInvalid("退款金额必须大于 0", field="amount")
    repayment = get_repayment(session, viewer, repayment_id)
    if repayment.kind != "repayment":
        raise RefundRefused("只有还款可以退溢缴款（减免和冲正记录没有收到钱）")
    get_loan(session, viewer, repayment.loan_id, for_update=True)  # postings and refunds of the loan queue here
    if reversal_of(session, repayment.id) is not None:
        raise RefundRefused(f"还款 #{repayment.id} 已冲正，请办理冲正退款")
    credit = credit_of(session, repayment.id)
    if credit <= 0:
        raise RefundRefused(f"还款 #{repayment.id} 没有溢缴款可退")
    if amount > credit:
        raise RefundRefused(f"退款金额 {format_yuan(amount)} 超过还款 #{repayment.id} 的溢缴款 {format_yuan(credit)}",
                            field="amount")
    return _send(session, repayment, kind="overpayment", amount=amount, reason=reason, reference=reference,
                 staff_id=viewer.staff_id if viewer else None)
