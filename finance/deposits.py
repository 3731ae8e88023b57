"""Deposits (定金): received, confirmed by finance, refunded, voided; short-term loans to the customer (借款).

Ledger:
- deposit confirmed: Dr cash/bank (method) / Cr 客户定金 — a liability until applied at settlement or refunded;
- refund confirmed: Dr 客户定金 / Cr cash/bank;
- a confirmed deposit voided (mis-entry): its entry is reversed; an unconfirmed one has no entry;
- customer loan: Dr 客户借款 / Cr cash/bank (repaid at settlement).

Refunds never exceed what was received: the amount refunded moves by a conditional UPDATE
(``refunded_amount + x <= amount``) and a CHECK stands behind it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from crm.models import Customer
from crm.scope import Viewer
from finance import agreements, ledger
from finance.access import FINANCE, SIGNERS, case_filter, require
from finance.amounts import fen
from finance.exceptions import FinanceInvalid, RecordNotFound, StateConflict
from finance.models import METHOD_LABELS, Agreement, CustomerLoan, Deposit, DepositRefund
from payments import refunds as payment_refunds

RECORDABLE = ("approved", "working", "disbursed")
OPEN_REFUNDS = ("requested", "refunding")  # a refund asked for, or paid back through the provider and not yet done


def _method(method: str, field: str = "method") -> str:
    if method not in METHOD_LABELS:
        raise FinanceInvalid(f"收付方式不正确：{method}（可选：{'、'.join(METHOD_LABELS.values())}）", field=field)
    return method


def _day(value: date | None, label: str, field: str) -> date:
    day = value or clock.today()
    if day > clock.today():
        raise FinanceInvalid(f"{label}不能晚于今天", field=field)
    return day


def get_deposit(session: Session, viewer: Viewer | None, deposit_id: int, *, for_update: bool = False) -> Deposit:
    stmt = select(Deposit).where(Deposit.id == deposit_id)
    deposit = session.scalar(stmt.with_for_update() if for_update else stmt)
    if deposit is None:
        raise RecordNotFound("定金记录不存在")
    agreements.get_agreement(session, viewer, deposit.agreement_id)
    return deposit


def record_deposit(session: Session, agreement_id: int, *, amount: int, method: str, viewer: Viewer | None,
                   received_date: date | None = None, reference: str | None = None) -> Deposit:
    """定金收款登记 (to be confirmed by finance). Only for an approved agreement (on the deposit list)."""
    require(viewer, FINANCE | SIGNERS, "登记定金")
    agreement = agreements.get_agreement(session, viewer, agreement_id)
    if agreement.status not in RECORDABLE:
        raise StateConflict("签单尚未经主管审批进入定金列表，或已结算/取消，不能登记定金")
    deposit = Deposit(agreement_id=agreement.id, amount=fen(amount, "定金金额", "amount"), method=_method(method),
                      received_date=_day(received_date, "收款日期", "received_date"),
                      reference=(reference or "").strip()[:64] or None, status="received",
                      entered_by_staff_id=viewer.staff_id if viewer else None, created_at=clock.now())
    session.add(deposit)
    session.flush()
    audit.record(session, "finance.deposit_recorded", entity_type="finance_deposit", entity_id=deposit.id,
                 after={"agreement": agreement.number, "amount": deposit.amount, "method": method})
    return deposit


def confirm_deposit(session: Session, deposit_id: int, *, viewer: Viewer | None) -> Deposit:
    """Finance confirms the money arrived: posted to the ledger; the case enters the work list (做单中心)."""
    require(viewer, FINANCE, "确认定金")
    deposit = get_deposit(session, viewer, deposit_id)
    moved = session.execute(update(Deposit).where(Deposit.id == deposit.id, Deposit.status == "received")
                            .values(status="confirmed", confirmed_at=clock.now(),
                                    confirmed_by_staff_id=viewer.staff_id if viewer else None)
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(deposit)
    if moved != 1:
        raise StateConflict("该定金已被确认或已作废，请刷新后重试")
    _post_receipt(session, deposit, staff_id=viewer.staff_id if viewer else None)
    return deposit


def _post_receipt(session: Session, deposit: Deposit, *, staff_id: int | None) -> None:
    """A confirmed deposit: Dr cash/bank / Cr 客户定金; the case enters the work list (做单中心)."""
    agreement = session.get(Agreement, deposit.agreement_id)
    entry = ledger.post(session, source_type="deposit", source_id=deposit.id, source_key=f"deposit:{deposit.id}",
                        memo=f"收定金 {agreement.number}", entry_date=deposit.received_date, by_staff_id=staff_id,
                        lines=[ledger.Line(ledger.method_account(deposit.method), debit=deposit.amount),
                               ledger.Line("deposits_held", credit=deposit.amount)])
    deposit.journal_entry_id = entry.id
    session.execute(update(Agreement).where(Agreement.id == agreement.id, Agreement.status == "approved")
                    .values(status="working").execution_options(synchronize_session=False))
    session.flush()
    session.refresh(agreement)
    audit.record(session, "finance.deposit_confirmed", entity_type="finance_deposit", entity_id=deposit.id,
                 after={"amount": deposit.amount, "entry": entry.id})


def deposit_due(session: Session, agreement: Agreement) -> int:
    """What the customer still owes of the agreed deposit (定金), fen: agreed − held − waiting for confirmation."""
    if agreement.status not in ("approved", "working"):
        return 0
    taken = int(session.scalar(select(func.coalesce(func.sum(Deposit.amount - Deposit.refunded_amount), 0)).where(
        Deposit.agreement_id == agreement.id, Deposit.status.in_(("received", "confirmed")))) or 0)
    return max(agreement.deposit_amount - taken, 0)


def receive_paid(session: Session, agreement_id: int, *, amount: int, paid_date: date, out_trade_no: str,
                 payment_order_id: int) -> Deposit:
    """A deposit the customer paid through WeChat Pay: the provider's verified payment is the confirmation,
    so it is recorded confirmed and posted (Dr 微信账户 / Cr 客户定金) at once. Once per payment
    (``payment_order_id`` is unique); refused (the money then waits for review in payments) when the
    agreement no longer takes a deposit or the amount is above what is still due."""
    existing = session.scalar(select(Deposit).where(Deposit.payment_order_id == payment_order_id))
    if existing is not None:
        return existing
    agreement = agreements.get_agreement(session, None, agreement_id, for_update=True)
    if agreement.status not in ("approved", "working"):
        raise StateConflict(f"签单 {agreement.number} 当前不收定金（{agreement.status}），请人工核对后退款或入账")
    due = deposit_due(session, agreement)
    if fen(amount, "定金金额", "amount") > due:
        raise FinanceInvalid(f"付款 {format_yuan(amount)} 超过签单 {agreement.number} 尚未收取的定金 "
                             f"{format_yuan(due)}", field="amount")
    now = clock.now()
    deposit = Deposit(agreement_id=agreement.id, amount=amount, method="wechat",
                      received_date=min(paid_date, clock.today()), reference=out_trade_no[:64], status="confirmed",
                      entered_by_staff_id=None, created_at=now, confirmed_at=now, confirmed_by_staff_id=None,
                      payment_order_id=payment_order_id)
    session.add(deposit)
    session.flush()
    audit.record(session, "finance.deposit_paid_online", entity_type="finance_deposit", entity_id=deposit.id,
                 after={"agreement": agreement.number, "amount": amount, "out_trade_no": out_trade_no})
    _post_receipt(session, deposit, staff_id=None)
    return deposit


def void_deposit(session: Session, deposit_id: int, *, reason: str, viewer: Viewer | None) -> Deposit:
    """作废 a mis-entered deposit (it must be entered again). A confirmed one is reversed in the ledger;
    one with refunds or waiting refunds cannot be voided."""
    require(viewer, FINANCE, "作废定金")
    if not (reason or "").strip():
        raise FinanceInvalid("请填写作废原因", field="reason")
    deposit = get_deposit(session, viewer, deposit_id, for_update=True)
    if deposit.payment_order_id is not None:
        raise StateConflict("客户通过微信支付的定金不是录入错误，不能作废；如需退还请申请退款（原路退回）")
    if deposit.refunded_amount or session.scalar(select(DepositRefund.id).where(
            DepositRefund.deposit_id == deposit.id, DepositRefund.status.in_(OPEN_REFUNDS))) is not None:
        raise StateConflict("该定金已有退款或待确认的退款申请，不能作废")
    agreement = session.get(Agreement, deposit.agreement_id)
    if agreement.status == "settled":
        raise StateConflict("签单已结算，定金已抵扣，不能作废")
    was = deposit.status
    moved = session.execute(update(Deposit).where(Deposit.id == deposit.id, Deposit.status.in_(("received", "confirmed")))
                            .values(status="voided", voided_at=clock.now(), void_reason=reason.strip()[:200],
                                    voided_by_staff_id=viewer.staff_id if viewer else None)
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(deposit)
    if moved != 1:
        raise StateConflict("该定金已作废")
    if was == "confirmed" and deposit.journal_entry_id:
        ledger.reverse(session, deposit.journal_entry_id, reason=f"定金作废：{reason.strip()}",
                       by_staff_id=viewer.staff_id if viewer else None)
        if held_amount(session, agreement.id) == 0:
            session.execute(update(Agreement).where(Agreement.id == agreement.id, Agreement.status == "working")
                            .values(status="approved").execution_options(synchronize_session=False))
            session.refresh(agreement)
    audit.record(session, "finance.deposit_voided", entity_type="finance_deposit", entity_id=deposit.id,
                 detail=reason.strip()[:200])
    return deposit


def held_amount(session: Session, agreement_id: int) -> int:
    """Deposits confirmed and not refunded: what settlement applies."""
    return int(session.scalar(select(func.coalesce(func.sum(Deposit.amount - Deposit.refunded_amount), 0))
                              .where(Deposit.agreement_id == agreement_id, Deposit.status == "confirmed")) or 0)


def pending_refund_amount(session: Session, deposit_id: int) -> int:
    """Refunds asked for or under way (原路退款中), fen: not refundable a second time."""
    return int(session.scalar(select(func.coalesce(func.sum(DepositRefund.amount), 0))
                              .where(DepositRefund.deposit_id == deposit_id,
                                     DepositRefund.status.in_(OPEN_REFUNDS))) or 0)


def request_refund(session: Session, deposit_id: int, *, amount: int, method: str, reason: str,
                   viewer: Viewer | None) -> DepositRefund:
    """退定金申请 (case officer): at most what was received less refunds done and waiting."""
    deposit = get_deposit(session, viewer, deposit_id, for_update=True)
    agreement = session.get(Agreement, deposit.agreement_id)
    if viewer is not None and viewer.role not in FINANCE and viewer.staff_id not in (
            agreement.case_officer_id, agreement.sales_staff_id) and viewer.role != "supervisor":
        require(viewer, FINANCE, "申请退定金")
    amount = fen(amount, "退款金额", "amount")
    if deposit.status != "confirmed":
        raise StateConflict("只有已确认的定金可以申请退款")
    if agreement.status == "settled":
        raise StateConflict("签单已结算，定金已抵扣服务费，不能退款")
    if not (reason or "").strip():
        raise FinanceInvalid("请填写退款原因", field="reason")
    available = deposit.amount - deposit.refunded_amount - pending_refund_amount(session, deposit.id)
    if amount > available:
        raise FinanceInvalid(f"退款金额 {format_yuan(amount)} 超过可退金额 {format_yuan(max(available, 0))}"
                             f"（已收 {format_yuan(deposit.amount)}）", field="amount", available=available)
    refund = DepositRefund(deposit_id=deposit.id, amount=amount, method=_method(method), reason=reason.strip()[:200],
                           status="requested", requested_by_staff_id=viewer.staff_id if viewer else None,
                           requested_at=clock.now())
    session.add(refund)
    session.flush()
    audit.record(session, "finance.refund_requested", entity_type="finance_deposit", entity_id=deposit.id,
                 after={"refund": refund.id, "amount": amount})
    return refund


def decide_refund(session: Session, refund_id: int, *, accept: bool, viewer: Viewer | None) -> DepositRefund:
    """Finance pays the refund back (posted) or rejects it. Decided once; never past the amount received.

    A deposit the customer paid through WeChat Pay, refunded by WeChat, goes back the way it came (原路退回):
    the refund is asked of the provider and stays ``refunding`` until its result (:func:`provider_refund_done`,
    from the refund notification or a poll; at once when the provider answers SUCCESS straight away)."""
    require(viewer, FINANCE, "确认退定金")
    refund = session.get(DepositRefund, refund_id)
    if refund is None:
        raise RecordNotFound("退款申请不存在")
    deposit = get_deposit(session, viewer, refund.deposit_id)
    online = accept and refund.method == "wechat" and deposit.payment_order_id is not None
    moved = session.execute(update(DepositRefund).where(DepositRefund.id == refund.id,
                                                        DepositRefund.status == "requested")
                            .values(status=("refunding" if online else "confirmed") if accept else "rejected",
                                    decided_at=clock.now(), decided_by_staff_id=viewer.staff_id if viewer else None)
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(refund)
    if moved != 1:
        raise StateConflict("该退款申请已处理")
    if accept:
        agreement = session.get(Agreement, deposit.agreement_id)
        if agreement.status == "settled":
            raise StateConflict("签单已结算，定金已抵扣服务费，不能退款")
        if online:
            refund.out_refund_no = f"FDR{refund.id:012d}"
            session.flush()
            payment_refunds.request(session, deposit.payment_order_id, amount=refund.amount,
                                    reason=f"退定金 {agreement.number}", out_refund_no=refund.out_refund_no,
                                    refund_ref=f"finance_deposit_refund:{refund.id}",
                                    staff_id=viewer.staff_id if viewer else None)
            session.refresh(refund)
        else:
            _pay_back(session, refund, deposit, agreement, staff_id=viewer.staff_id if viewer else None)
    audit.record(session, "finance.refund_confirmed" if accept else "finance.refund_rejected",
                 entity_type="finance_deposit", entity_id=deposit.id, after={"refund": refund.id, "amount": refund.amount,
                                                                              "status": refund.status})
    return refund


def _pay_back(session: Session, refund: DepositRefund, deposit: Deposit, agreement: Agreement, *,
              staff_id: int | None) -> None:
    """The refunded amount leaves the deposit (never past what was received) and is posted."""
    grown = session.execute(update(Deposit).where(Deposit.id == deposit.id, Deposit.status == "confirmed",
                                                  Deposit.refunded_amount + refund.amount <= Deposit.amount)
                            .values(refunded_amount=Deposit.refunded_amount + refund.amount)
                            .execution_options(synchronize_session=False)).rowcount
    session.refresh(deposit)
    if grown != 1:
        raise FinanceInvalid("退款金额超过已收定金减已退金额", field="amount")
    entry = ledger.post(session, source_type="refund", source_id=refund.id, source_key=f"refund:{refund.id}",
                        memo=f"退定金 {agreement.number}", by_staff_id=staff_id,
                        lines=[ledger.Line("deposits_held", debit=refund.amount),
                               ledger.Line(ledger.method_account(refund.method), credit=refund.amount)])
    refund.journal_entry_id = entry.id
    session.flush()


def provider_refund_done(session: Session, refund_id: int, *, succeeded: bool, provider_status: str) -> bool:
    """The provider's final answer on a deposit paid back the way it came. Once: False when already decided.
    Success: the money leaves the deposit and is posted (Dr 客户定金 / Cr 微信账户). Failure (closed,
    abnormal): the refund is ``failed`` and the deposit is held as before (a new refund may be asked for)."""
    moved = session.execute(update(DepositRefund).where(DepositRefund.id == refund_id,
                                                        DepositRefund.status == "refunding")
                            .values(status="confirmed" if succeeded else "failed")
                            .execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        return False
    refund = session.get(DepositRefund, refund_id)
    session.refresh(refund)
    deposit = session.get(Deposit, refund.deposit_id)
    agreement = session.get(Agreement, deposit.agreement_id)
    if succeeded:
        _pay_back(session, refund, deposit, agreement, staff_id=refund.decided_by_staff_id)
    audit.record(session, "finance.refund_paid_online" if succeeded else "finance.refund_failed",
                 entity_type="finance_deposit", entity_id=deposit.id,
                 after={"refund": refund.id, "amount": refund.amount, "provider_status": provider_status})
    session.flush()
    return True


def lend_to_customer(session: Session, agreement_id: int, *, principal_amount: int, method: str,
                     viewer: Viewer | None, interest_amount: int = 0, cost_amount: int = 0,
                     loan_date: date | None = None, note: str | None = None) -> CustomerLoan:
    """借款: a short-term loan to the customer (e.g. to clear a debt before the new loan), repaid at settlement."""
    require(viewer, FINANCE, "登记客户借款")
    agreement = agreements.get_agreement(session, viewer, agreement_id)
    if agreement.status not in ("working", "disbursed"):
        raise StateConflict("只有做单中的签单可以登记客户借款")
    loan = CustomerLoan(agreement_id=agreement.id, principal_amount=fen(principal_amount, "借款本金", "principal_amount"),
                        interest_amount=fen(interest_amount, "借款利息", "interest_amount", allow_zero=True),
                        cost_amount=fen(cost_amount, "借款成本", "cost_amount", allow_zero=True),
                        loan_date=_day(loan_date, "借款日期", "loan_date"), method=_method(method),
                        status="outstanding", note=(note or "").strip()[:200] or None,
                        by_staff_id=viewer.staff_id if viewer else None, created_at=clock.now())
    session.add(loan)
    session.flush()
    entry = ledger.post(session, source_type="customer_loan", source_id=loan.id, source_key=f"customer_loan:{loan.id}",
                        memo=f"客户借款 {agreement.number}", entry_date=loan.loan_date,
                        by_staff_id=viewer.staff_id if viewer else None,
                        lines=[ledger.Line("customer_loans", debit=loan.principal_amount),
                               ledger.Line(ledger.method_account(loan.method), credit=loan.principal_amount)])
    loan.journal_entry_id = entry.id
    session.flush()
    audit.record(session, "finance.customer_loan", entity_type="finance_agreement", entity_id=agreement.id,
                 after={"loan": loan.id, "principal": loan.principal_amount})
    return loan


def deposits_of(session: Session, agreement_id: int) -> list[Deposit]:
    return list(session.scalars(select(Deposit).where(Deposit.agreement_id == agreement_id).order_by(Deposit.id)))


def refunds_of(session: Session, agreement_id: int) -> list[DepositRefund]:
    return list(session.scalars(select(DepositRefund).join(Deposit, Deposit.id == DepositRefund.deposit_id)
                                .where(Deposit.agreement_id == agreement_id).order_by(DepositRefund.id)))


def loans_of(session: Session, agreement_id: int) -> list[CustomerLoan]:
    return list(session.scalars(select(CustomerLoan).where(CustomerLoan.agreement_id == agreement_id)
                                .order_by(CustomerLoan.id)))


CLOSED_CASES = ("settled", "cancelled")


def deposit_query(viewer: Viewer, *, status: str | None = None, held: bool = False) -> Select[Any]:
    """The deposit list's SELECT. ``held``: deposits still held (在持定金) — confirmed, not wholly refunded,
    of a case not yet settled or cancelled (analytics' 定金余额 aggregates it)."""
    stmt = (select(Deposit, Agreement, Customer).join(Agreement, Agreement.id == Deposit.agreement_id)
            .join(Customer, Customer.id == Agreement.customer_id).where(case_filter(viewer)))
    if status:
        stmt = stmt.where(Deposit.status == status)
    if held:
        stmt = stmt.where(Deposit.status == "confirmed", Deposit.amount > Deposit.refunded_amount,
                          Agreement.status.not_in(CLOSED_CASES))
    return stmt


def deposit_list(session: Session, viewer: Viewer, *, status: str | None = None, held: bool = False,
                 limit: int = 50, offset: int = 0) -> list[tuple[Deposit, Agreement, Customer]]:
    """定金列表: every deposit of the viewer's cases, newest first."""
    stmt = deposit_query(viewer, status=status, held=held)
    return list(session.execute(stmt.order_by(Deposit.id.desc()).limit(limit).offset(offset)))


def awaiting_deposit(session: Session, viewer: Viewer, *, limit: int = 50) -> list[tuple[Agreement, Customer]]:
    """Approved agreements waiting for their deposit (the deposit list's to-do)."""
    return agreements.list_agreements(session, viewer, status="approved", limit=limit)


def work_list(session: Session, viewer: Viewer, *, limit: int = 50, offset: int = 0,
              mine: bool = False) -> list[tuple[Agreement, Customer]]:
    """做单中心: agreements with a confirmed deposit, being worked (做单) or waiting for settlement."""
    stmt = (select(Agreement, Customer).join(Customer, Customer.id == Agreement.customer_id)
            .where(case_filter(viewer), Agreement.status.in_(("working", "disbursed"))))
    if mine:
        stmt = stmt.where(Agreement.case_officer_id == viewer.staff_id)
    return list(session.execute(stmt.order_by(Agreement.id.desc()).limit(limit).offset(offset)))
