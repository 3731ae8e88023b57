"""Repayments (还款) and their reversal (冲正), decided by the database.

Booking (:func:`record_repayment`), in one unit of work under the loan's row lock:

1. The external reference (bank slip, channel serial) is unique in the database. The same reference
   again — a double click, a retried request, two clerks with the same slip — returns the repayment
   already booked when loan, amount, date and channel agree (idempotent), and is refused (409) otherwise.
2. The amount may not exceed what is payable on the value date: every installment due by then, their
   penalty as of that day, and the current period (当期). Beyond that is prepayment (提前还款): booked as one
   when the caller passes the borrower's choice (``prepayment_mode``, see ``prepayments``), refused with the
   figure otherwise, nothing written.
3. Write-off (冲销): oldest installment first; inside one, the contract's order (default penalty → fee →
   interest → principal). One ``RepaymentAllocation`` per (installment, component); the installment's
   ``paid_*`` follow, then :func:`lending.servicing.state.refresh` recomputes penalty, status, overdue days,
   bucket, and closes the loan when nothing is left (CRM stage → 已结清).
4. Value dates run forward: not in the future, not before the loan started, not before the latest repayment
   that stands (a later-booked earlier slip would rewrite the penalty already written off).

Reversal (:func:`reverse_repayment`): a ``reversal`` entry pointing at the repayment (unique: once) and the
negated allocations; every later transaction is written off again in value-date order as if the repayment never
was (:mod:`lending.servicing.corrections`: backdated correction, difference rows appended, penalties recomputed), the
loan's state recomputed, and it reopens if it had closed. Both tables are append-only; the reversal is audited
with every later entry's split before and after. The money itself goes back by a refund
(:mod:`lending.servicing.refunds`).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock, outbox
from core.errors import PermissionDenied
from core.money import format_yuan
from crm import customers
from crm.models import Role
from crm.permissions import permission
from crm.scope import Viewer
from lending.models import REPAYMENT_CHANNEL_LABELS, Loan, Repayment, RepaymentAllocation
from lending.servicing import corrections, prepayments, state
from lending.servicing.arithmetic import allocate
from lending.servicing.events import REPAYMENT_REVERSED_TASK
from lending.servicing.exceptions import (
    AlreadyReversed,
    LoanClosed,
    Overpayment,
    RepaymentInvalid,
    RepaymentNotFound,
    ReversalRefused,
)
from lending.servicing.loans import get_loan
from lending.servicing.posting import (
    by_reference,
    fix_penalty,
    insert_repayment,
    latest_standing_date,
    post,
    replay,
    stage_after,
)

__all__ = ["CHANNELS", "RECORDERS", "payable", "record_repayment", "reverse_repayment"]

RECORDERS = permission("lending.repayments", "录入还款", "登记线下还款与冲正", {Role.FINANCE, Role.MANAGER, Role.ADMIN}, group="贷后")
CHANNELS = tuple(REPAYMENT_CHANNEL_LABELS)


def check_recorder(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in RECORDERS:
        raise PermissionDenied("只有财务、经理或管理员可以登记或冲正还款")


def payable(session: Session, loan: Loan, day: date | None = None) -> int:
    """What may be paid on ``day`` (fen): everything due by then with its penalty, and the current period."""
    day = day or clock.today()
    terms = state.terms_for(session, loan)
    dues = state.dues_as_of(terms, state.installments(session, loan.id), state.ledger(session, loan.id), day)
    return sum(d.total for d in dues)


def _validate(amount: object, channel: str, reference: str, day: date) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RepaymentInvalid("还款金额必须是大于 0 的整数（分）", field="amount")
    if channel not in REPAYMENT_CHANNEL_LABELS:
        raise RepaymentInvalid(f"未知的还款渠道：{channel}（可选：{'、'.join(CHANNELS)}）", field="channel")
    if not reference or len(reference) > 64:
        raise RepaymentInvalid("请填写还款流水号（银行回单号或渠道流水号，最多 64 位）", field="external_reference")
    if day > clock.today():
        raise RepaymentInvalid("还款日期不能晚于今天", field="repayment_date")


def record_repayment(session: Session, loan_id: int, *, viewer: Viewer | None, amount: int,
                     external_reference: str, channel: str = "bank_transfer", repayment_date: date | None = None,
                     note: str | None = None, prepayment_mode: str | None = None,
                     keep_excess: bool = False) -> Repayment:
    """Book a repayment against a loan (see the module docstring). Only flushes; the caller commits.

    ``prepayment_mode`` (``keep_term`` / ``keep_installment``): the borrower chose to prepay, so an amount above
    what is payable on the value date is a prepayment (or, at the payoff figure, the payoff) instead of refused:
    :func:`lending.servicing.prepayments.book_locked`. ``keep_excess``: the borrower paid more than was payable and
    did not ask to prepay: the payable part is written off and the rest kept as the repayment's overpayment credit
    (溢缴款), refundable in part or whole (:func:`lending.servicing.refunds.refund_overpayment`)."""
    check_recorder(viewer)
    reference = (external_reference or "").strip()
    day = repayment_date or clock.today()
    _validate(amount, channel, reference, day)
    loan = get_loan(session, viewer, loan_id, for_update=True)  # scope first; a second click waits here
    if (existing := by_reference(session, reference)) is not None:  # booked before, or while we waited
        return replay(existing, loan_id, amount, day, channel)
    if loan.status != "active":
        raise LoanClosed(f"贷款 #{loan.id} 已结清，不能再登记还款")
    if day < loan.start_date:
        raise RepaymentInvalid(f"还款日期不能早于放款日 {loan.start_date.isoformat()}", field="repayment_date")
    latest = latest_standing_date(session, loan.id)
    if latest is not None and day < latest:
        raise RepaymentInvalid(f"还款日期不能早于本贷款最近一笔还款的日期 {latest.isoformat()}（请先冲正之后的还款）",
                               field="repayment_date")
    terms = state.terms_for(session, loan)
    rows = state.installments(session, loan.id)
    dues = state.dues_as_of(terms, rows, state.ledger(session, loan.id), day)
    total = sum(d.total for d in dues)
    staff_id = viewer.staff_id if viewer else None
    if amount > total and prepayment_mode:
        return prepayments.book_locked(session, loan, amount=amount, day=day, mode=prepayment_mode,
                                       reference=reference, channel=channel, note=note, staff_id=staff_id)
    if amount > total and not keep_excess:
        raise Overpayment(f"还款金额 {format_yuan(amount)} 超过截至 {day.isoformat()} 的应还金额 {format_yuan(total)}"
                          f"（已到期各期及当期，含罚息）；多出 {format_yuan(amount - total)} 不能入账，"
                          f"提前还款请选择提前还款方式后办理", field="amount", payable=total)
    repayment, created = insert_repayment(session, loan, amount=amount, day=day, channel=channel,
                                          reference=reference, note=note, staff_id=staff_id)
    if not created:  # the same slip, booked meanwhile
        return replay(repayment, loan_id, amount, day, channel)
    by_id = {r.id: r for r in rows}
    fix_penalty(by_id, dues)
    split = allocate(min(amount, total), dues, terms.write_off_order)
    post(session, loan, repayment, split, by_id, staff_id=staff_id)
    if amount > total:
        audit.record(session, "lending.repayment.credit", entity_type="lending_loan", entity_id=loan.id,
                     after={"repayment_id": repayment.id, "credit": amount - total})
        customers.record_event(session, loan.customer_id, "lending_repayment_credit",
                               f"贷款 #{loan.id} 还款 #{repayment.id} 多付 {format_yuan(amount - total)}，记为溢缴款",
                               actor_staff_id=staff_id, ref_type="lending_repayment", ref_id=repayment.id)
    return repayment


def get_repayment(session: Session, viewer: Viewer | None, repayment_id: int) -> Repayment:
    repayment = session.get(Repayment, repayment_id)
    if repayment is None:
        raise RepaymentNotFound()
    get_loan(session, viewer, repayment.loan_id)  # out of scope is not found
    return repayment


def _split_json(split: dict[tuple[int, str], int]) -> list[list[object]]:
    return [[iid, component, fen] for (iid, component), fen in sorted(split.items())]


def reversal_of(session: Session, repayment_id: int) -> Repayment | None:
    return session.scalar(select(Repayment).where(Repayment.reversal_of_id == repayment_id))


def reverse_repayment(session: Session, repayment_id: int, *, viewer: Viewer | None, reason: str) -> Repayment:
    """Reverse a mistaken repayment (once): the reversal entry, negated allocations, the loan recomputed."""
    check_recorder(viewer)
    reason = (reason or "").strip()
    if not reason:
        raise RepaymentInvalid("请填写冲正原因", field="reason")
    original = get_repayment(session, viewer, repayment_id)
    if original.kind != "repayment":
        raise ReversalRefused({"reversal": "冲正记录本身不能再冲正", "capitalisation": "重组的逾期资本化不能冲正"}
                              .get(original.kind, "减免不能冲正"))
    if original.purpose in ("prepayment", "payoff"):
        raise ReversalRefused("提前还款已重算还款计划（新版本），不能直接冲正")
    loan = get_loan(session, viewer, original.loan_id, for_update=True)
    if (done := reversal_of(session, original.id)) is not None:
        raise AlreadyReversed(f"还款 #{original.id} 已于冲正记录 #{done.id} 冲正，不能重复冲正")
    staff_id = viewer.staff_id if viewer else None
    today = clock.today()
    with session.begin_nested():  # a refused correction leaves nothing behind
        try:
            with session.begin_nested():
                reversal = Repayment(loan_id=loan.id, kind="reversal", amount=original.amount, repayment_date=today,
                                     channel=original.channel, external_reference=None, reversal_of_id=original.id,
                                     note=reason[:300], by_staff_id=staff_id, created_at=clock.now())
                session.add(reversal)
                session.flush()
        except IntegrityError:
            raise AlreadyReversed(f"还款 #{original.id} 已冲正，不能重复冲正") from None
        allocations = list(session.scalars(select(RepaymentAllocation).where(
            RepaymentAllocation.repayment_id == original.id).order_by(RepaymentAllocation.id)))
        session.add_all([RepaymentAllocation(repayment_id=reversal.id, installment_id=a.installment_id,
                                             component=a.component, amount=-a.amount) for a in allocations])
        session.flush()
        replayed = corrections.replay_after(session, loan, original, reversal)
        corrections.sync_paid(session, loan)
    change = state.refresh(session, loan, today)
    moved = [r for r in replayed if r.changed]
    audit.record(session, "lending.repayment.reverse", entity_type="lending_loan", entity_id=loan.id,
                 before={"repayment_id": original.id, "amount": original.amount,
                         "replayed": {str(r.repayment_id): _split_json(r.before) for r in moved}},
                 after={"reversal_id": reversal.id, "replayed": {str(r.repayment_id): _split_json(r.after) for r in moved}},
                 detail=reason)
    customers.record_event(session, loan.customer_id, "lending_repayment_reversed",
                           f"贷款 #{loan.id} 还款 #{original.id}（{format_yuan(original.amount)}）已冲正：{reason}"
                           + (f"；之后 {len(moved)} 笔按日期重新冲销" if moved else ""),
                           actor_staff_id=staff_id, ref_type="lending_repayment", ref_id=reversal.id)
    if change.reopened:
        stage_after(session, loan, "repaying", staff_id)
    outbox.enqueue(session, REPAYMENT_REVERSED_TASK, reversal.id)
    return reversal
