"""Withdrawals (提现) and payout batches (发放批次).

A referrer asks for an amount up to the withdrawable balance (available minus open requests);
finance or a manager approves or rejects; approved requests go into a batch per channel (bank
card or WeChat Pay) which is exported for the transfer and then marked paid, which writes the
``deduction`` (tax, fee) and ``paid`` ledger entries. A refund after payout leaves a negative
available balance; later accruals fill it first, so the next payout nets it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from core import audit, clock, exports, pii
from core.db import insert_ignore
from core.money import fen_to_yuan, format_yuan
from crm.models import Role
from crm.permissions import permission
from crm.scope import Viewer
from referral import ledger, referrers
from referral.exceptions import (
    InsufficientBalance,
    InvalidAmount,
    InvalidReferrer,
    NotAllowed,
    PayoutBatchNotFound,
    PayoutStateError,
    ReferrerDisabled,
    WithdrawalNotFound,
    WithdrawalStateError,
)
from referral.models import (
    CommissionEntry,
    EntryKind,
    PayoutBatch,
    Referrer,
    ReferrerStatus,
    WithdrawalRequest,
    WithdrawalStatus,
)

PAYOUT_MANAGERS = permission("referral.payouts", "佣金发放", "审核和发放推荐佣金", {Role.ADMIN, Role.MANAGER, Role.FINANCE}, group="财务")
CHANNEL_LABELS = {"bank": "银行卡", "wechat": "微信零钱"}


def _check(viewer: Viewer | None) -> int | None:
    if viewer is not None and viewer.role not in PAYOUT_MANAGERS:
        raise NotAllowed("只有财务、经理或系统管理员可以审批和发放佣金")
    return viewer.staff_id if viewer else None


def request_withdrawal(session: Session, referrer_id: int, amount_fen: int) -> WithdrawalRequest:
    """A referrer's withdrawal request; refused above the withdrawable balance, nothing written."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise InvalidAmount("提现金额必须大于 0")
    referrer = referrers.lock_referrer(session, referrer_id)
    if referrer.status != ReferrerStatus.ACTIVE:
        raise ReferrerDisabled()
    if not referrer.payee_account_enc or not referrer.payee_channel:
        raise InvalidReferrer("请先设置收款账户", code="payee_missing")
    bal = ledger.balance(session, referrer_id)
    if amount_fen > bal.withdrawable:
        raise InsufficientBalance(
            f"可提现余额为 {format_yuan(bal.withdrawable)}，不足以提现 {format_yuan(amount_fen)}",
            withdrawable=bal.withdrawable)
    request = WithdrawalRequest(referrer_id=referrer_id, amount=amount_fen, status=WithdrawalStatus.REQUESTED,
                                requested_at=clock.now())
    session.add(request)
    session.flush()
    audit.record(session, "referral.withdrawal.request", entity_type="withdrawal_request", entity_id=request.id,
                 after={"referrer_id": referrer_id, "amount": amount_fen})
    return request


def _transition(session: Session, withdrawal_id: int, from_: tuple[str, ...], to: str, **values: object
                ) -> WithdrawalRequest:
    changed = session.execute(
        update(WithdrawalRequest).where(WithdrawalRequest.id == withdrawal_id, WithdrawalRequest.status.in_(from_))
        .values(status=to, **values).execution_options(synchronize_session=False)).rowcount
    request = session.scalar(select(WithdrawalRequest).where(WithdrawalRequest.id == withdrawal_id)
                             .execution_options(populate_existing=True))
    if request is None:
        raise WithdrawalNotFound()
    if changed != 1:
        raise WithdrawalStateError()
    audit.record(session, f"referral.withdrawal.{to}", entity_type="withdrawal_request", entity_id=withdrawal_id,
                 before={"status": from_[0]}, after={"status": to}, detail=values.get("reason"))  # type: ignore[arg-type]
    return request


def approve(session: Session, viewer: Viewer | None, withdrawal_id: int) -> WithdrawalRequest:
    staff_id = _check(viewer)
    return _transition(session, withdrawal_id, (WithdrawalStatus.REQUESTED,), WithdrawalStatus.APPROVED,
                       decided_at=clock.now(), decided_by_staff_id=staff_id)


def reject(session: Session, viewer: Viewer | None, withdrawal_id: int, reason: str) -> WithdrawalRequest:
    staff_id = _check(viewer)
    if not (reason or "").strip():
        raise InvalidAmount("请填写驳回原因", code="reason_required")
    return _transition(session, withdrawal_id, (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED),
                       WithdrawalStatus.REJECTED, decided_at=clock.now(), decided_by_staff_id=staff_id,
                       reason=reason.strip()[:200])


def cancel(session: Session, referrer_id: int, withdrawal_id: int) -> WithdrawalRequest:
    """The referrer withdraws their own request while it still awaits approval."""
    request = session.get(WithdrawalRequest, withdrawal_id)
    if request is None or request.referrer_id != referrer_id:
        raise WithdrawalNotFound()
    return _transition(session, withdrawal_id, (WithdrawalStatus.REQUESTED,), WithdrawalStatus.CANCELLED)


def _deductions(session: Session, gross: int) -> tuple[int, int]:
    config = referrers.get_config(session)
    tax = int((Decimal(gross) * config.payout_tax_rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    fee = min(config.payout_fee_amount, max(0, gross - tax))
    return tax, fee


def create_batch(session: Session, viewer: Viewer | None, channel: str, withdrawal_ids: list[int] | None = None
                 ) -> PayoutBatch:
    """Put approved requests of one channel into a new batch. A request whose balance fell below its
    amount (a reversal since approval) is paid what is available, or rejected when nothing is."""
    staff_id = _check(viewer)
    if channel not in CHANNEL_LABELS:
        raise InvalidReferrer("发放渠道只能是银行卡或微信零钱", code="invalid_channel")
    stmt = (select(WithdrawalRequest.id, WithdrawalRequest.referrer_id)
            .join(Referrer, Referrer.id == WithdrawalRequest.referrer_id)
            .where(WithdrawalRequest.status == WithdrawalStatus.APPROVED, Referrer.payee_channel == channel)
            .order_by(WithdrawalRequest.referrer_id, WithdrawalRequest.id))
    if withdrawal_ids is not None:
        stmt = stmt.where(WithdrawalRequest.id.in_(withdrawal_ids))
    candidates = session.execute(stmt).all()
    if not candidates:
        raise PayoutStateError("没有可发放的已批准提现申请", code="nothing_to_pay")
    batch = PayoutBatch(channel=channel, status="open", created_by_staff_id=staff_id, created_at=clock.now())
    session.add(batch)
    session.flush()
    count = total = 0
    for withdrawal_id, referrer_id in candidates:
        referrers.lock_referrer(session, referrer_id)
        request = session.scalar(select(WithdrawalRequest).where(WithdrawalRequest.id == withdrawal_id)
                                 .execution_options(populate_existing=True))
        if request is None or request.status != WithdrawalStatus.APPROVED:
            continue  # taken by a concurrent batch
        bal = ledger.balance(session, referrer_id)
        room = bal.available - (bal.held - request.amount)
        gross = min(request.amount, room)
        if gross <= 0:
            _transition(session, withdrawal_id, (WithdrawalStatus.APPROVED,), WithdrawalStatus.REJECTED,
                        decided_at=clock.now(), decided_by_staff_id=staff_id, reason="余额因冲回不足，已自动驳回")
            continue
        tax, fee = _deductions(session, gross)
        _transition(session, withdrawal_id, (WithdrawalStatus.APPROVED,), WithdrawalStatus.BATCHED,
                    payout_batch_id=batch.id, amount=gross, deduction_amount=tax + fee, paid_amount=gross - tax - fee)
        count += 1
        total += gross - tax - fee
    if count == 0:
        raise PayoutStateError("没有可发放的提现申请（余额不足的已自动驳回）", code="nothing_to_pay")
    batch.item_count, batch.total_amount = count, total
    session.flush()
    audit.record(session, "referral.payout.batch", entity_type="payout_batch", entity_id=batch.id,
                 after={"channel": channel, "items": count, "total": total})
    return batch


def mark_paid(session: Session, viewer: Viewer | None, batch_id: int) -> PayoutBatch:
    """The transfer is done: write deduction and paid entries (once), close the requests and the batch."""
    staff_id = _check(viewer)
    now = clock.now()
    changed = session.execute(update(PayoutBatch).where(PayoutBatch.id == batch_id, PayoutBatch.status == "open")
                              .values(status="paid", paid_at=now, paid_by_staff_id=staff_id)
                              .execution_options(synchronize_session=False)).rowcount
    batch = session.scalar(select(PayoutBatch).where(PayoutBatch.id == batch_id)
                           .execution_options(populate_existing=True))
    if batch is None:
        raise PayoutBatchNotFound()
    if changed != 1:
        raise PayoutStateError("该批次已标记为已发放")
    items = list(session.scalars(select(WithdrawalRequest).where(WithdrawalRequest.payout_batch_id == batch_id,
                                                                 WithdrawalRequest.status == WithdrawalStatus.BATCHED)
                                 .order_by(WithdrawalRequest.referrer_id)))
    for request in items:
        referrers.lock_referrer(session, request.referrer_id)
        common = {"referrer_id": request.referrer_id, "payout_batch_id": batch_id, "withdrawal_id": request.id,
                  "event_at": now, "created_at": now}
        if request.deduction_amount:
            insert_ignore(session, CommissionEntry, {**common, "kind": EntryKind.DEDUCTION,
                                                     "amount": -request.deduction_amount,
                                                     "source_event_key": f"payout:{request.id}:deduction",
                                                     "note": "代扣税费"}, ["source_event_key"])
        insert_ignore(session, CommissionEntry, {**common, "kind": EntryKind.PAID,
                                                 "amount": -(request.paid_amount or 0),
                                                 "source_event_key": f"payout:{request.id}:paid"},
                      ["source_event_key"])
        _transition(session, request.id, (WithdrawalStatus.BATCHED,), WithdrawalStatus.PAID)
    audit.record(session, "referral.payout.paid", entity_type="payout_batch", entity_id=batch_id,
                 after={"items": len(items), "total": batch.total_amount})
    return batch


def mask_name(name: str | None) -> str:
    name = (name or "").strip()
    if len(name) <= 1:
        return name or "—"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


EXPORT_HEADERS = ["序号", "收款人", "收款方式", "开户行", "收款账号", "提现金额(元)", "扣除(元)", "实发金额(元)", "备注"]


def export_rows(session: Session, viewer: Viewer | None, batch_id: int, *, full_names: bool = False
                ) -> list[list[object]]:
    """Rows for the transfer file. The account is opened from its sealed form (the transfer needs
    it); the export is audit-logged. Names are masked unless ``full_names`` (also logged). Amounts
    are yuan as ``Decimal`` (number cells); the file is written by :mod:`core.exports`."""
    _check(viewer)
    batch = session.get(PayoutBatch, batch_id)
    if batch is None:
        raise PayoutBatchNotFound()
    rows: list[list[object]] = []
    items = session.execute(select(WithdrawalRequest, Referrer).join(Referrer, Referrer.id == WithdrawalRequest.referrer_id)
                            .where(WithdrawalRequest.payout_batch_id == batch_id).order_by(WithdrawalRequest.id)).all()
    for n, (request, referrer) in enumerate(items, start=1):
        account = pii.open_sealed(pii.PAYLOAD, referrer.payee_account_enc) if referrer.payee_account_enc else ""
        name = referrer.payee_name or referrer.name
        rows.append([n, name if full_names else mask_name(name), CHANNEL_LABELS.get(referrer.payee_channel or "", ""),
                     referrer.payee_bank or "", account, fen_to_yuan(request.amount),
                     fen_to_yuan(request.deduction_amount or 0), fen_to_yuan(request.paid_amount or 0),
                     f"佣金提现#{request.id}"])
    audit.record(session, "referral.payout.export", entity_type="payout_batch", entity_id=batch_id,
                 after={"rows": len(rows), "full_names": full_names}, detail="导出发放文件（含收款账号）")
    return rows


def export_csv(session: Session, viewer: Viewer | None, batch_id: int, *, full_names: bool = False) -> bytes:
    return exports.csv_bytes(EXPORT_HEADERS, export_rows(session, viewer, batch_id, full_names=full_names))


def export_xlsx(session: Session, viewer: Viewer | None, batch_id: int, *, full_names: bool = False) -> bytes:
    return exports.xlsx_bytes(f"发放批次{batch_id}", EXPORT_HEADERS,
                              export_rows(session, viewer, batch_id, full_names=full_names))


def withdrawals_query(status: str | None = None) -> Select[Any]:
    """The withdrawal list's SELECT (no order): the page and the export."""
    stmt = select(WithdrawalRequest, Referrer).join(Referrer, Referrer.id == WithdrawalRequest.referrer_id)
    if status:
        stmt = stmt.where(WithdrawalRequest.status == status)
    return stmt


def list_withdrawals(session: Session, status: str | None = None, limit: int = 200) -> list[tuple[WithdrawalRequest, Referrer]]:
    stmt = withdrawals_query(status).order_by(WithdrawalRequest.id.desc()).limit(limit)
    return [(w, r) for w, r in session.execute(stmt).all()]


def list_batches(session: Session, limit: int = 100) -> list[PayoutBatch]:
    return list(session.scalars(select(PayoutBatch).order_by(PayoutBatch.id.desc()).limit(limit)))
