"""Prepayment (提前还款) on any date: the quote, a partial prepayment and the full payoff (提前结清).

The quote as of a value date ``D`` (:func:`quote`), for the first open period *k* (the first unpaid installment
due after ``D``):

- what is due by ``D``: every installment due on or before ``D`` still unpaid, with its penalty as of ``D``;
- the principal not yet due (the balance the periods from *k* on repay);
- the interest that principal accrued from period *k*'s start (the previous due date, or the loan's start) to
  ``D``, by the product's day count, rounded once (``lending.schedule.prepayment.accrued_interest``);
- fees: on a payoff, period *k*'s fee when the period has begun;
- the product's prepayment charge (提前还款违约金): ``prepayment_charge_rate`` × the principal paid ahead,
  rounded once with the product's rounding.

An ``amount`` (fen, what the borrower pays) equal to the payoff closes the loan; a smaller one is a partial
prepayment: what is due by ``D`` first, then the largest principal ``P`` whose accrued interest and charge fit
(a fen or two that no larger ``P`` can take is principal too). The schedule from period *k* on is recalculated
on the lower balance (``keep_term`` 期限不变 or ``keep_installment`` 月供不变, ``lending.schedule.prepayment``);
the charge is added to period *k*'s fee. A new schedule version is appended (``lending.servicing.versions``).

Refused with the reason, nothing written: a date before the loan's start or before its latest transaction, a
date on or after the last due date (maturity), an amount above the payoff, an amount that leaves no principal
to prepay, a current period already partly paid, a closed loan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import ValidationFailed
from core.money import Rounding, format_yuan
from crm import customers
from lending.models import Contract, Loan, LoanInstallment, Repayment
from lending.schedule.engine import Schedule
from lending.schedule.exact import round_to
from lending.schedule.prepayment import PrepaymentMode, accrued_interest, payoff_on, period_start, prepay_on
from lending.schedule.terms import coerce_enum
from lending.servicing import state, versions
from lending.servicing.arithmetic import Due, allocate
from lending.servicing.exceptions import BookingInconsistent, LoanClosed, PrepaymentRefused
from lending.servicing.posting import fix_penalty, insert_repayment, latest_standing_date, post, replay

__all__ = ["MODE_LABELS", "PrepaymentQuote", "book_locked", "quote"]

MODE_LABELS = {"keep_term": "期限不变，减少月供", "keep_installment": "月供不变，缩短期限"}


@dataclass(frozen=True)
class PrepaymentQuote:
    loan_id: int
    on: date
    kind: str  # payoff | prepayment
    mode: str | None  # keep_term | keep_installment (a partial prepayment)
    period: int  # the first open period (当期)
    due: dict[str, int]  # what is due by ``on``, per component (penalty, fee, interest, principal)
    due_amount: int
    outstanding_principal: int  # principal not yet due
    principal_amount: int  # principal paid ahead
    accrued_interest_amount: int  # on that principal, from the period's start to ``on``
    fee_amount: int  # the current period's fee (payoff only)
    charge_amount: int  # 提前还款违约金
    total_amount: int  # what the borrower pays
    payoff_amount: int  # the full payoff on ``on``, for reference
    schedule: Schedule  # the schedule after it
    dues: tuple[Due, ...]

    @property
    def closes(self) -> bool:
        return self.kind == "payoff"

    def as_dict(self) -> dict[str, Any]:
        """The quote in fen (ints) and ISO dates, with the schedule after it; channels format it."""
        return {
            "loan_id": self.loan_id, "date": self.on.isoformat(), "kind": self.kind, "mode": self.mode,
            "period": self.period, "due": dict(self.due), "due_amount": self.due_amount,
            "outstanding_principal_amount": self.outstanding_principal, "principal_amount": self.principal_amount,
            "accrued_interest_amount": self.accrued_interest_amount, "fee_amount": self.fee_amount,
            "charge_amount": self.charge_amount, "total_amount": self.total_amount,
            "payoff_amount": self.payoff_amount,
            "schedule": [{"number": p.number, "due_date": p.due_date.isoformat(), "principal_amount": p.principal,
                          "interest_amount": p.interest, "fee_amount": p.fee, "total_amount": p.total,
                          "balance_amount": p.balance, "prepayment_amount": p.prepayment}
                         for p in self.schedule.periods],
        }


def _charge_rate(session: Session, loan: Loan) -> Fraction:
    contract = session.get(Contract, loan.contract_id)
    if contract is None:
        raise BookingInconsistent("贷款没有对应的合同")
    return Fraction(versions.contract_terms(contract).prepayment_charge_rate or 0)


def _check_dates(session: Session, loan: Loan, on: date, rows: list[LoanInstallment]) -> None:
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能提前还款")
    if on < loan.start_date:
        raise PrepaymentRefused(f"提前还款日期不能早于放款日 {loan.start_date.isoformat()}", field="date")
    latest = latest_standing_date(session, loan.id)
    if latest is not None and on < latest:
        raise PrepaymentRefused(f"提前还款日期 {on.isoformat()} 不能早于本贷款最近一笔交易的日期 {latest.isoformat()}",
                                field="date")
    maturity = rows[-1].due_date
    if on >= maturity:
        raise PrepaymentRefused(f"提前还款日期须早于到期日 {maturity.isoformat()}（到期日当天及以后请按正常还款办理）",
                                field="date")


def quote(session: Session, loan: Loan, on: date, *, amount: int | None = None,
          mode: PrepaymentMode | str = PrepaymentMode.KEEP_TERM) -> PrepaymentQuote:
    """The prepayment quote of the loan on ``on`` for ``amount`` fen (None: the full payoff). Writes nothing."""
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise PrepaymentRefused("提前还款金额必须是大于 0 的整数（分）", field="amount")
    mode = coerce_enum(PrepaymentMode, mode, "mode", "提前还款方式")
    rows = state.installments(session, loan.id)
    _check_dates(session, loan, on, rows)
    terms = state.terms_for(session, loan)
    dues = tuple(d for d in state.dues_as_of(terms, rows, state.ledger(session, loan.id), on)
                 if next(r for r in rows if r.id == d.installment_id).due_date <= on)
    due = {c: sum(d.outstanding[c] for d in dues) for c in ("penalty", "fee", "interest", "principal")}
    due_amount = sum(due.values())
    current = next((r for r in rows if r.due_date > on and r.outstanding_amount > 0), None)
    if current is None:
        raise PrepaymentRefused("以后各期均已还清，没有可提前归还的本金", field="date")
    schedule = versions.current_schedule(session, loan, rows)
    period = current.number
    start = period_start(schedule, period)
    balance = sum(r.principal_amount for r in rows if r.number >= period) - current.paid_principal_amount
    paid = {"paid_principal": current.paid_principal_amount, "paid_interest": current.paid_interest_amount}
    rate = _charge_rate(session, loan)
    rounding, quantum = Rounding(schedule.terms.rounding), schedule.terms.quantum

    def charge(principal: int) -> int:
        return round_to(principal * rate, rounding, quantum) if rate else 0

    def partial_total(principal: int) -> int:
        return due_amount + accrued_interest(schedule.terms, principal, start, on) + charge(principal) + principal

    fee_now = current.fee_amount - current.paid_fee_amount if on > start else 0
    payoff_total = (due_amount + fee_now + accrued_interest(schedule.terms, balance, start, on) + charge(balance)
                    + balance)
    if amount is None or amount == payoff_total:
        after = payoff_on(schedule, period=period, on=on, paid_fee=current.paid_fee_amount, **paid)
        return PrepaymentQuote(loan.id, on, "payoff", None, period, due, due_amount, balance, balance,
                               after.accrued_interest, fee_now, charge(balance),
                               payoff_total, payoff_total, after.schedule, dues)
    if amount > payoff_total:
        raise PrepaymentRefused(f"金额 {format_yuan(amount)} 超过 {on.isoformat()} 提前结清所需的 {format_yuan(payoff_total)}",
                                field="amount", payoff=payoff_total)
    if partial_total(1) > amount:
        raise PrepaymentRefused(f"金额 {format_yuan(amount)} 不足以提前还本：须先还清截至 {on.isoformat()} 已到期的 "
                                f"{format_yuan(due_amount)}，再加提前归还的本金及其利息、违约金", field="amount",
                                due=due_amount)
    low, high = 1, balance - 1  # the largest principal whose total fits
    while low < high:
        middle = (low + high + 1) // 2
        if partial_total(middle) <= amount:
            low = middle
        else:
            high = middle - 1
    fitted = low
    principal = fitted + (amount - partial_total(fitted))  # a fen or two no larger principal could take
    if principal >= balance:
        raise PrepaymentRefused(f"金额接近提前结清金额，请按结清金额 {format_yuan(payoff_total)} 办理提前结清",
                                field="amount", payoff=payoff_total)
    after = prepay_on(schedule, period=period, on=on, amount=principal, mode=mode, **paid)
    accrued = accrued_interest(schedule.terms, fitted, start, on)
    rows_after = list(after.schedule.periods)
    row = rows_after[period - 1]  # its interest holds what the prepaid principal accrued: the fitted figure
    rows_after[period - 1] = replace(row, interest=row.interest - after.accrued_interest + accrued)
    new_schedule = replace(after.schedule, periods=tuple(rows_after))
    return PrepaymentQuote(loan.id, on, "prepayment", str(mode), period, due, due_amount, balance, principal,
                           accrued, 0, charge(fitted), amount, payoff_total, new_schedule, dues)


def book_locked(session: Session, loan: Loan, *, amount: int, day: date, mode: PrepaymentMode | str,
                reference: str, channel: str, note: str | None, staff_id: int | None) -> Repayment:
    """Book a prepayment or payoff of ``amount`` fen on ``day``; the caller holds the loan's row lock and has
    validated the reference, channel and date. Only flushes."""
    if day > clock.today():
        raise ValidationFailed("提前还款日期不能晚于今天", field="repayment_date")
    q = quote(session, loan, day, amount=amount, mode=mode)
    repayment, created = insert_repayment(session, loan, amount=amount, day=day, channel=channel, reference=reference,
                                          note=note, staff_id=staff_id, purpose=q.kind)
    if not created:
        return replay(repayment, loan.id, amount, day, channel)
    rows = state.installments(session, loan.id)
    versions.ensure_original(session, loan, rows)
    by_id = {r.id: r for r in rows}
    fix_penalty(by_id, list(q.dues))
    split = allocate(q.due_amount, list(q.dues), state.terms_for(session, loan).write_off_order) if q.dues else []
    rows = versions.write_rows(session, loan, rows, q.schedule, q.period,
                               extra_fee={q.period: q.charge_amount} if q.charge_amount else None)
    current = next(r for r in rows if r.number == q.period)
    if q.closes:  # everything left on the period
        split += [(current.id, "fee", current.fee_amount - current.paid_fee_amount),
                  (current.id, "interest", current.interest_amount - current.paid_interest_amount)]
    else:
        split += [(current.id, "fee", q.charge_amount), (current.id, "interest", q.accrued_interest_amount)]
    split += [(current.id, "principal", q.principal_amount)]
    split = [s for s in split if s[2] > 0]
    if sum(s[2] for s in split) != amount:
        raise BookingInconsistent(f"提前还款拆分合计 {sum(s[2] for s in split)} 分，不等于还款金额 {amount} 分")
    version = versions.append(session, loan, q.schedule, reason=q.kind, effective_date=day, rows=rows,
                              repayment_id=repayment.id, mode=q.mode, staff_id=staff_id)
    label = "提前结清" if q.closes else f"部分提前还款（{MODE_LABELS[str(q.mode)]}）"
    post(session, loan, repayment, split, {r.id: r for r in rows}, staff_id=staff_id, label=label)
    audit.record(session, "lending.schedule.version", entity_type="lending_loan", entity_id=loan.id,
                 after={"version": version.version, "reason": q.kind, "mode": q.mode, "repayment_id": repayment.id,
                        "principal": q.principal_amount, "accrued_interest": q.accrued_interest_amount,
                        "charge": q.charge_amount, "periods": len(rows)})
    if not q.closes:
        customers.record_event(session, loan.customer_id, "lending_schedule",
                               f"贷款 #{loan.id} 还款计划已重算（第 {version.version} 版，剩余 {len(rows)} 期）",
                               actor_staff_id=staff_id, ref_type="lending_loan", ref_id=loan.id)
    return repayment
