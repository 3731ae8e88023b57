"""Tables of the referral domain: referrers, first-touch attributions, versioned commission rules,
the append-only commission ledger, withdrawal requests and payout batches.

Loans and products belong to lending; this migration branch starts from 0002, so ``loan_id`` and
``product_id`` are stored as plain ids (no foreign key to lending tables).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = [
    "ENTRY_KIND_LABELS", "REFERRER_KIND_LABELS", "WITHDRAWAL_STATUS_LABELS", "Attribution", "AttributionSource",
    "Basis", "BeneficiaryKind", "BountyEvent", "CommissionEntry", "CommissionRule", "CommissionRuleVersion",
    "EntryKind", "PayoutBatch", "ReferralConfig", "Referrer", "ReferrerKind", "ReferrerStatus", "WithdrawalRequest",
    "WithdrawalStatus",
]

RATE = Numeric(12, 8)


class ReferrerKind(StrEnum):
    CUSTOMER = "customer"  # a customer inviting friends
    AGENT = "agent"  # 经纪人, an external broker
    CHANNEL = "channel"  # 渠道, a partner channel
    STAFF = "staff"  # an employee (also the beneficiary of staff commission schemes)


REFERRER_KIND_LABELS = {"customer": "客户", "agent": "经纪人", "channel": "渠道", "staff": "员工"}


class ReferrerStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class AttributionSource(StrEnum):
    MINIPROGRAM = "miniprogram"
    WECOM = "wecom"
    MANUAL = "manual"


class BeneficiaryKind(StrEnum):
    REFERRER = "referrer"  # the attributed referrer (level 1) and its parent (level 2)
    STAFF = "staff"  # the customer's salesperson: 佣金方案


class Basis(StrEnum):
    PRINCIPAL = "principal"  # rate x disbursed principal
    SERVICE_FEE = "service_fee"  # rate x service fee actually collected
    BOUNTY = "bounty"  # a fixed amount for an event


class BountyEvent(StrEnum):
    FIRST_APPLICATION = "first_application"
    VISIT = "visit"
    DISBURSEMENT = "disbursement"


class EntryKind(StrEnum):
    ACCRUED = "accrued"  # +amount, pending until confirmed
    CONFIRMED = "confirmed"  # moves an accrual (confirms_entry_id) from pending to available; not money itself
    REVERSED = "reversed"  # -amount of the accrual it reverses (reverses_entry_id, once)
    PAID = "paid"  # -amount paid out in a batch
    DEDUCTION = "deduction"  # -amount withheld at payout (tax, fees)


ENTRY_KIND_LABELS = {"accrued": "计提", "confirmed": "确认", "reversed": "冲回", "paid": "已发放", "deduction": "扣除"}


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    BATCHED = "batched"
    PAID = "paid"
    CANCELLED = "cancelled"


WITHDRAWAL_STATUS_LABELS = {
    "requested": "待审批", "approved": "已批准", "rejected": "已驳回", "batched": "发放中", "paid": "已发放",
    "cancelled": "已取消",
}
# Withdrawals whose amount is held out of the available balance.
OPEN_WITHDRAWAL = (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED, WithdrawalStatus.BATCHED)


class ReferralConfig(Base):
    """One row (id 1): the attribution lock window, how many levels earn, payout deductions."""

    __tablename__ = "referral_config"
    __table_args__ = (
        CheckConstraint("max_levels IN (1, 2)", name="max_levels_1_or_2"),
        CheckConstraint("lock_days >= 0", name="lock_days_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lock_days: Mapped[int] = mapped_column(default=180)
    max_levels: Mapped[int] = mapped_column(default=2)
    default_clawback_days: Mapped[int] = mapped_column(default=30)
    payout_tax_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    payout_fee_amount: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


class Referrer(Base):
    __tablename__ = "referrer"
    __table_args__ = (
        CheckConstraint("kind IN ('customer', 'agent', 'channel', 'staff')", name="kind_valid"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(60))
    code: Mapped[str] = mapped_column(String(12), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), unique=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("referrer.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ReferrerStatus.ACTIVE)
    # Where payouts go: the account sealed with core.pii PAYLOAD, only its masked form shown.
    payee_name: Mapped[str | None] = mapped_column(String(60))
    payee_channel: Mapped[str | None] = mapped_column(String(16))  # bank | wechat
    payee_bank: Mapped[str | None] = mapped_column(String(60))
    payee_account_enc: Mapped[str | None] = mapped_column(String(300))
    payee_account_masked: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]


class Attribution(Base):
    """Who brought a customer: one row per customer, so the first touch wins."""

    __tablename__ = "referral_attribution"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), unique=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("referrer.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    locked_until: Mapped[datetime]
    created_at: Mapped[datetime]
    changed_at: Mapped[datetime | None]
    changed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class CommissionRule(Base):
    """A named commission rule; its terms live in immutable :class:`CommissionRuleVersion` rows."""

    __tablename__ = "commission_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    beneficiary_kind: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("commission_rule_version.id", use_alter=True, name="fk_commission_rule_current_version"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CommissionRuleVersion(Base):
    """The terms of a rule at one time. Never updated: an edit is a new version."""

    __tablename__ = "commission_rule_version"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("commission_rule.id"), index=True)
    version: Mapped[int]
    # Scope: which loans (product, funder type) and which beneficiaries (referrer kind / staff level).
    product_id: Mapped[int | None]  # lending_product.id (no FK: other migration branch)
    funder_type: Mapped[str | None] = mapped_column(String(20))
    referrer_kind: Mapped[str | None] = mapped_column(String(16))
    staff_level: Mapped[int | None]
    basis: Mapped[str] = mapped_column(String(16))
    bounty_event: Mapped[str | None] = mapped_column(String(24))
    level1_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    level2_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    level1_bounty_amount: Mapped[int] = mapped_column(default=0)
    level2_bounty_amount: Mapped[int] = mapped_column(default=0)
    # [{"min_amount": fen, "max_amount": fen | null, "level1_rate": "0.01", "level2_rate": "0.002"}]
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    per_loan_cap_amount: Mapped[int | None]
    monthly_cap_amount: Mapped[int | None]
    clawback_days: Mapped[int] = mapped_column(default=30)
    note: Mapped[str | None] = mapped_column(String(200))
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class CommissionEntry(Base):
    """The ledger: append-only (database triggers; the ORM refuses updates), integer fen, signed.

    A source event accrues once: ``source_event_key`` is unique, inserted with ON CONFLICT DO NOTHING.
    """

    __tablename__ = "commission_entry"
    __table_args__ = (
        CheckConstraint("kind IN ('accrued', 'confirmed', 'reversed', 'paid', 'deduction')", name="kind_valid"),
        CheckConstraint(
            "(kind IN ('accrued', 'confirmed') AND amount >= 0) OR (kind IN ('reversed', 'paid', 'deduction') "
            "AND amount <= 0)", name="amount_sign"),
        Index("ix_commission_entry_referrer_kind", "referrer_id", "kind"),
        Index("ix_commission_entry_event_at", "event_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("referrer.id"))  # the beneficiary
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    source_event_key: Mapped[str] = mapped_column(String(120), unique=True)
    level: Mapped[int | None]
    basis_amount: Mapped[int | None]  # principal or fee the amount was computed on
    rule_version_id: Mapped[int | None] = mapped_column(ForeignKey("commission_rule_version.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(index=True)  # lending loan id (no FK: other migration branch)
    product_id: Mapped[int | None]
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    reverses_entry_id: Mapped[int | None] = mapped_column(ForeignKey("commission_entry.id"), unique=True)
    confirms_entry_id: Mapped[int | None] = mapped_column(ForeignKey("commission_entry.id"), unique=True)
    payout_batch_id: Mapped[int | None] = mapped_column(ForeignKey("payout_batch.id"), index=True)
    withdrawal_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawal_request.id"), index=True)
    confirmable_at: Mapped[datetime | None]  # end of the clawback window (accruals)
    event_at: Mapped[datetime]  # when the source event happened (months and tiers use it)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class WithdrawalRequest(Base):
    __tablename__ = "withdrawal_request"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),
                      Index("ix_withdrawal_request_referrer_status", "referrer_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("referrer.id"))
    amount: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=WithdrawalStatus.REQUESTED)
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    payout_batch_id: Mapped[int | None] = mapped_column(ForeignKey("payout_batch.id"), index=True)
    paid_amount: Mapped[int | None]  # net transferred
    deduction_amount: Mapped[int | None]


class PayoutBatch(Base):
    __tablename__ = "payout_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # bank | wechat
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | paid
    item_count: Mapped[int] = mapped_column(default=0)
    total_amount: Mapped[int] = mapped_column(default=0)  # net to transfer
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    paid_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


@event.listens_for(CommissionEntry, "before_update")
@event.listens_for(CommissionEntry, "before_delete")
@event.listens_for(CommissionRuleVersion, "before_update")
@event.listens_for(CommissionRuleVersion, "before_delete")
def _refuse_change(_mapper: Any, _conn: Any, target: Any) -> None:
    raise RuntimeError(f"{target.__tablename__} is append-only")
