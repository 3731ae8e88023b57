"""Funders (资方), products and their immutable versions.

Contract for the rest of lending (applications, contracts, servicing):

- ``Funder`` — who lends the money: a bank, a consumer-finance company, a guarantor/credit insurer
  (担保/信用保险), a microloan company or other. ``active`` switches all its products off for matching.
- ``Product`` — a stable code and name under one funder; ``current_version_id`` points at the version
  offered today. Deactivating a product stops new quotes and matches; existing loans are untouched.
- ``ProductVersion`` — every term of the product at one point in time. IMMUTABLE once flushed: an
  edit creates version N+1 (``lending.products.edit_product``) and moves ``current_version_id``.
  Applications and contracts store ``product_version_id`` and quote from it for ever.
  Map a version to the schedule engine only through ``lending.products.loan_terms(version, …)``.

Money is integer fen (``*_amount``), rates are Decimal fractions (``*_rate``: 0.12 is 12 % a year).
Later changes to these tables are additive only (new nullable columns, new tables).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint, event, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base

__all__ = [
    "FUNDER_TYPE_LABELS", "PENALTY_BASIS_LABELS", "WRITE_OFF_ORDER_LABELS", "Funder", "FunderType", "PenaltyBasis",
    "Product", "ProductVersion", "WriteOffOrder",
]

RATE = Numeric(12, 8)


class FunderType(StrEnum):
    BANK = "bank"
    CONSUMER_FINANCE = "consumer_finance"
    GUARANTEE = "guarantee"  # 担保 / 信用保险
    MICROLOAN = "microloan"
    OTHER = "other"


FUNDER_TYPE_LABELS = {
    "bank": "银行", "consumer_finance": "消费金融公司", "guarantee": "担保/信用保险", "microloan": "小额贷款公司",
    "other": "其他",
}


class PenaltyBasis(StrEnum):
    DAILY = "daily"  # penalty_rate is a daily rate (万分之五 = 0.0005)
    ANNUAL = "annual"  # penalty_rate is an annual rate, charged per day at annual / days-in-year


PENALTY_BASIS_LABELS = {"daily": "日利率", "annual": "年利率"}


class WriteOffOrder(StrEnum):
    """冲销顺序: how a repayment is split inside one installment (installments always oldest first)."""

    PENALTY_FEE_INTEREST_PRINCIPAL = "penalty_fee_interest_principal"  # the lenders' usual default
    FEE_INTEREST_PRINCIPAL_PENALTY = "fee_interest_principal_penalty"  # 民法典 561: costs, interest, principal

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.value.split("_"))


WRITE_OFF_ORDER_LABELS = {
    "penalty_fee_interest_principal": "罚息 → 费用 → 利息 → 本金（默认）",
    "fee_interest_principal_penalty": "费用 → 利息 → 本金 → 罚息",
}


class Funder(Base):
    """资方: the lender behind a product."""

    __tablename__ = "lending_funder"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    funder_type: Mapped[str] = mapped_column(String(20), default=FunderType.BANK)
    active: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Product(Base):
    """A loan product offered through one funder; its terms live in :class:`ProductVersion`."""

    __tablename__ = "lending_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    funder_id: Mapped[int] = mapped_column(ForeignKey("lending_funder.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("lending_product_version.id", use_alter=True, name="fk_lending_product_current_version"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    funder: Mapped[Funder] = relationship()
    current_version: Mapped[ProductVersion | None] = relationship(foreign_keys=[current_version_id],
                                                                 post_update=True)


class ProductVersion(Base):
    """The terms of a product at one moment. Never updated or deleted: edits make a new version."""

    __tablename__ = "lending_product_version"
    __table_args__ = (
        UniqueConstraint("product_id", "version"),
        CheckConstraint("min_amount > 0 AND max_amount >= min_amount", name="amount_range"),
        CheckConstraint("annual_rate >= 0", name="annual_rate_non_negative"),
        CheckConstraint("min_age IS NULL OR max_age IS NULL OR max_age >= min_age", name="age_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("lending_product.id"), index=True)
    version: Mapped[int]

    # amounts and terms
    min_amount: Mapped[int]  # fen
    max_amount: Mapped[int]  # fen
    terms_months: Mapped[list[Any]] = mapped_column(JSON)  # allowed terms, e.g. [3, 6, 12]
    repayment_method: Mapped[str] = mapped_column(String(20))  # lending.schedule.terms.RepaymentMethod
    # interest
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    interest_method: Mapped[str] = mapped_column(String(12), default="declining")  # declining | flat
    interest_period: Mapped[str] = mapped_column(String(8), default="same")  # same | daily
    days_in_year: Mapped[str] = mapped_column(String(8), default="360")  # 360 | 365 | actual
    currency_digits: Mapped[int] = mapped_column(default=2)
    rounding: Mapped[str] = mapped_column(String(12), default="half_up")  # half_up | half_even
    installment_multiple_amount: Mapped[int] = mapped_column(default=1)  # fen; 100 = round to whole yuan
    grace_principal_periods: Mapped[int] = mapped_column(default=0)  # interest-only periods
    grace_interest_periods: Mapped[int] = mapped_column(default=0)  # no-payment periods, interest capitalised
    # penalty interest (罚息) on overdue principal
    penalty_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    penalty_basis: Mapped[str] = mapped_column(String(8), default=PenaltyBasis.DAILY)
    # servicing (贷后): days after a due date before an unpaid bill is overdue; the write-off order (冲销顺序)
    overdue_grace_days: Mapped[int] = mapped_column(default=0)
    write_off_order: Mapped[str] = mapped_column(String(40), default=WriteOffOrder.PENALTY_FEE_INTEREST_PRINCIPAL)
    # fees: service fee = principal × service_fee_rate + service_fee_amount, per period or upfront
    service_fee_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    service_fee_amount: Mapped[int] = mapped_column(default=0)  # fen
    service_fee_timing: Mapped[str] = mapped_column(String(12), default="per_period")  # per_period | upfront
    # deposit (保证金) = principal × deposit_rate + deposit_amount, withheld at disbursement
    deposit_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    deposit_amount: Mapped[int] = mapped_column(default=0)  # fen
    deposit_refundable: Mapped[bool] = mapped_column(default=True)
    # 提前还款违约金: share of the principal prepaid, charged with a prepayment or payoff (0 = none)
    prepayment_charge_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0), server_default="0")
    # eligibility (matching); None / empty list = no restriction
    min_age: Mapped[int | None]
    max_age: Mapped[int | None]
    regions: Mapped[list[Any] | None] = mapped_column(JSON)  # region names or prefixes ("广东", "广东深圳")
    customer_types: Mapped[list[Any] | None] = mapped_column(JSON)  # crm CustomerType values
    min_income_amount: Mapped[int | None]  # fen per month
    # requirements on the customer's qualification profile (crm.qualification; lending.product_requirements)
    min_social_insurance_months: Mapped[int | None]
    min_provident_fund_months: Mapped[int | None]
    property_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    car_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    max_debt_ratio: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))  # monthly debt service / income
    min_credit_level: Mapped[str | None] = mapped_column(String(12))  # the worst crm credit level accepted
    max_credit_overdue_count: Mapped[int | None]
    max_credit_queries_6m: Mapped[int | None]
    allowed_industries: Mapped[list[Any] | None] = mapped_column(JSON)  # industry names or prefixes
    excluded_industries: Mapped[list[Any] | None] = mapped_column(JSON)
    # the highest comprehensive annualised cost of the sample quotes at creation (min/max amount × terms)
    max_apr_rate: Mapped[Decimal | None] = mapped_column(RATE)
    note: Mapped[str | None] = mapped_column(String(300))  # what changed in this version
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]

    product: Mapped[Product] = relationship(foreign_keys=[product_id])


@event.listens_for(ProductVersion, "before_update")
@event.listens_for(ProductVersion, "before_delete")
def _refuse_change(*_: Any) -> None:
    raise RuntimeError("lending_product_version is immutable: edit the product to create a new version")
