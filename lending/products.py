"""The product catalogue: funders (资方), products and their immutable versions, and quotes.

- :func:`create_product` / :func:`edit_product` validate a :class:`ProductTerms`, quote samples with the
  schedule engine (minimum and maximum amount × every allowed term) and refuse the version when the
  engine refuses a sample or its comprehensive annualised cost (综合年化成本) exceeds the cap
  (``lending.schedule.cap``, setting ``SCRM_APR_CAP_RATE``). An edit never changes a stored version:
  it adds version N+1 and points the product at it.
- :func:`loan_terms` is THE mapping from a product version (or unsaved terms) to the engine's
  :class:`LoanTerms`; :func:`quote` builds the schedule and the APR for one amount and term.

Services only flush; the caller's unit of work commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import AppError, ValidationFailed
from core.money import Rounding, format_yuan, parse_rate
from crm.models import CUSTOMER_TYPE_LABELS
from lending import product_requirements as requirements
from lending.models import (
    FUNDER_TYPE_LABELS,
    Funder,
    FunderType,
    PenaltyBasis,
    Product,
    ProductVersion,
    WriteOffOrder,
)
from lending.product_exceptions import (
    AmountOutOfRange,
    FunderNameTaken,
    FunderNotFound,
    InvalidProductTerms,
    ProductCodeTaken,
    ProductInactive,
    ProductNotFound,
    ProductVersionNotFound,
    TermNotAllowed,
)
from lending.schedule.apr import percent
from lending.schedule.cap import AprAboveCap, apr_cap, check_apr_cap
from lending.schedule.engine import Schedule, build_schedule
from lending.schedule.exact import round_to
from lending.schedule.terms import (
    MAX_PERIODS,
    MAX_PRINCIPAL,
    DayBasis,
    FeeTiming,
    InterestMethod,
    InterestPeriod,
    LoanTerms,
    RepaymentMethod,
    coerce_enum,
)

__all__ = [
    "ProductTerms", "Quote", "SampleQuote", "create_funder", "create_product", "edit_product", "get_product",
    "get_version", "list_funders", "list_products", "loan_terms", "quote", "quote_terms", "sample_quotes",
    "set_product_active", "update_funder", "versions_of",
]

MAX_AGE = 100
MAX_RATE = Decimal(1)


class _TermsLike(Protocol):
    """What :func:`loan_terms` reads: a :class:`ProductVersion` row or an unsaved :class:`ProductTerms`."""

    repayment_method: str
    annual_rate: Decimal
    interest_method: str
    interest_period: str
    days_in_year: str
    currency_digits: int
    rounding: str
    installment_multiple_amount: int
    grace_principal_periods: int
    grace_interest_periods: int
    service_fee_rate: Decimal
    service_fee_amount: int
    service_fee_timing: str
    deposit_rate: Decimal
    deposit_amount: int
    deposit_refundable: bool


@dataclass(frozen=True, kw_only=True)
class ProductTerms:
    """Every term of a product version, as entered; :meth:`normalized` validates it (Chinese messages).

    Amounts in fen, rates as Decimal fractions (strings such as "0.12" or "12%" accepted).
    ``regions`` / ``customer_types`` empty or None mean "no restriction".
    """

    min_amount: int
    max_amount: int
    terms_months: Sequence[int]
    repayment_method: str
    annual_rate: Decimal | str
    interest_method: str = InterestMethod.DECLINING
    interest_period: str = InterestPeriod.SAME
    days_in_year: str = DayBasis.D360
    currency_digits: int = 2
    rounding: str = Rounding.HALF_UP
    installment_multiple_amount: int = 1
    grace_principal_periods: int = 0
    grace_interest_periods: int = 0
    penalty_rate: Decimal | str = Decimal(0)
    penalty_basis: str = PenaltyBasis.DAILY
    overdue_grace_days: int = 0
    write_off_order: str = WriteOffOrder.PENALTY_FEE_INTEREST_PRINCIPAL
    service_fee_rate: Decimal | str = Decimal(0)
    service_fee_amount: int = 0
    service_fee_timing: str = FeeTiming.PER_PERIOD
    deposit_rate: Decimal | str = Decimal(0)
    deposit_amount: int = 0
    deposit_refundable: bool = True
    prepayment_charge_rate: Decimal | str = Decimal(0)
    min_age: int | None = None
    max_age: int | None = None
    regions: Sequence[str] | None = None
    customer_types: Sequence[str] | None = None
    min_income_amount: int | None = None
    # on the qualification profile (lending.product_requirements)
    min_social_insurance_months: int | None = None
    min_provident_fund_months: int | None = None
    property_required: bool = False
    car_required: bool = False
    max_debt_ratio: Decimal | str | None = None
    min_credit_level: str | None = None
    max_credit_overdue_count: int | None = None
    max_credit_queries_6m: int | None = None
    allowed_industries: Sequence[str] | None = None
    excluded_industries: Sequence[str] | None = None

    @classmethod
    def of(cls, version: ProductVersion) -> ProductTerms:
        """The terms of a stored version (the starting point of an edit)."""
        return cls(**{f.name: getattr(version, f.name) for f in fields(cls)})

    def normalized(self) -> ProductTerms:
        v = _Validator()
        min_amount = v.fen(self.min_amount, "min_amount", "最低金额", low=1)
        max_amount = v.fen(self.max_amount, "max_amount", "最高金额", low=1)
        if max_amount < min_amount:
            raise InvalidProductTerms("最高金额不能低于最低金额", field="max_amount")
        terms = v.terms(self.terms_months)
        min_age = v.optional_int(self.min_age, "min_age", "最低年龄", low=16, high=MAX_AGE)
        max_age = v.optional_int(self.max_age, "max_age", "最高年龄", low=16, high=MAX_AGE)
        if min_age is not None and max_age is not None and max_age < min_age:
            raise InvalidProductTerms("最高年龄不能低于最低年龄", field="max_age")
        return ProductTerms(
            min_amount=min_amount, max_amount=max_amount, terms_months=terms,
            repayment_method=str(coerce_enum(RepaymentMethod, self.repayment_method, "repayment_method", "还款方式")),
            annual_rate=v.rate(self.annual_rate, "annual_rate", "年利率"),
            interest_method=str(coerce_enum(InterestMethod, self.interest_method, "interest_method", "计息方式")),
            interest_period=str(coerce_enum(InterestPeriod, self.interest_period, "interest_period", "计息周期")),
            days_in_year=str(coerce_enum(DayBasis, self.days_in_year, "days_in_year", "年计息天数")),
            currency_digits=v.int(self.currency_digits, "currency_digits", "货币小数位数", low=0, high=2),
            rounding=str(coerce_enum(Rounding, self.rounding, "rounding", "舍入方式")),
            installment_multiple_amount=v.int(self.installment_multiple_amount, "installment_multiple_amount",
                                              "还款额取整单位（分）", low=1, high=MAX_PRINCIPAL),
            grace_principal_periods=v.int(self.grace_principal_periods, "grace_principal_periods",
                                          "只还息宽限期数", low=0, high=MAX_PERIODS),
            grace_interest_periods=v.int(self.grace_interest_periods, "grace_interest_periods",
                                         "免还款宽限期数", low=0, high=MAX_PERIODS),
            penalty_rate=v.rate(self.penalty_rate, "penalty_rate", "罚息利率"),
            penalty_basis=str(coerce_enum(PenaltyBasis, self.penalty_basis, "penalty_basis", "罚息利率类型")),
            overdue_grace_days=v.int(self.overdue_grace_days, "overdue_grace_days", "逾期宽限天数", low=0, high=30),
            write_off_order=str(coerce_enum(WriteOffOrder, self.write_off_order, "write_off_order", "冲销顺序")),
            service_fee_rate=v.rate(self.service_fee_rate, "service_fee_rate", "服务费率"),
            service_fee_amount=v.fen(self.service_fee_amount, "service_fee_amount", "固定服务费", low=0),
            service_fee_timing=str(coerce_enum(FeeTiming, self.service_fee_timing, "service_fee_timing",
                                               "服务费收取方式")),
            deposit_rate=v.rate(self.deposit_rate, "deposit_rate", "保证金比例"),
            deposit_amount=v.fen(self.deposit_amount, "deposit_amount", "固定保证金", low=0),
            deposit_refundable=v.bool(self.deposit_refundable, "deposit_refundable", "保证金是否退还"),
            prepayment_charge_rate=v.rate(self.prepayment_charge_rate, "prepayment_charge_rate", "提前还款违约金比例"),
            min_age=min_age, max_age=max_age,
            regions=v.regions(self.regions),
            customer_types=v.customer_types(self.customer_types),
            min_income_amount=None if self.min_income_amount is None else v.fen(
                self.min_income_amount, "min_income_amount", "最低月收入", low=0),
            **requirements.normalize({name: getattr(self, name) for name in requirements.REQUIREMENT_FIELDS}),
        )

    def as_row(self) -> dict[str, Any]:
        """Column values for a :class:`ProductVersion` (normalized terms only)."""
        row = asdict(self)
        row["terms_months"] = list(self.terms_months)
        row["regions"] = list(self.regions) if self.regions else None
        row["customer_types"] = list(self.customer_types) if self.customer_types else None
        for name in ("allowed_industries", "excluded_industries"):
            row[name] = list(getattr(self, name)) if getattr(self, name) else None
        return row


class _Validator:
    @staticmethod
    def int(value: Any, field_name: str, label: str, *, low: int, high: int | None = None) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidProductTerms(f"{label}必须是整数", field=field_name)
        if value < low or (high is not None and value > high):
            raise InvalidProductTerms(f"{label}须在 {low} 到 {high if high is not None else '∞'} 之间：{value}",
                                      field=field_name)
        return value

    def optional_int(self, value: Any, field_name: str, label: str, *, low: int, high: int) -> int | None:
        if value is None or value == "":
            return None
        return self.int(value, field_name, label, low=low, high=high)

    @staticmethod
    def fen(value: Any, field_name: str, label: str, *, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidProductTerms(f"{label}必须是整数（分）", field=field_name)
        if value < low or value > MAX_PRINCIPAL:
            raise InvalidProductTerms(f"{label}超出范围：{format_yuan(value)}", field=field_name)
        return value

    @staticmethod
    def rate(value: Any, field_name: str, label: str) -> Decimal:
        if isinstance(value, float | bool):
            raise InvalidProductTerms(f"{label}不能是浮点数", field=field_name)
        try:
            rate = value if isinstance(value, Decimal) else parse_rate(value)
        except (ValidationFailed, TypeError):
            raise InvalidProductTerms(f"{label}格式不正确：{value}", field=field_name) from None
        if not rate.is_finite() or rate < 0 or rate > MAX_RATE:
            raise InvalidProductTerms(f"{label}须在 0 到 100% 之间：{value}", field=field_name)
        if rate != rate.quantize(Decimal("1e-8")):
            raise InvalidProductTerms(f"{label}最多 8 位小数：{value}", field=field_name)
        return rate

    @staticmethod
    def bool(value: Any, field_name: str, label: str) -> bool:
        if not isinstance(value, bool):
            raise InvalidProductTerms(f"{label}必须是是/否", field=field_name)
        return value

    def terms(self, values: Sequence[int]) -> list[int]:
        if isinstance(values, str) or not values:
            raise InvalidProductTerms("至少允许一种期限（月）", field="terms_months")
        terms = sorted({self.int(v, "terms_months", "期限（月）", low=1, high=MAX_PERIODS) for v in values})
        return terms

    @staticmethod
    def regions(values: Sequence[str] | None) -> list[str] | None:
        if not values:
            return None
        if isinstance(values, str):
            raise InvalidProductTerms("地区须是列表", field="regions")
        cleaned = sorted({str(v).strip() for v in values if str(v).strip()})
        if any(len(v) > 40 for v in cleaned):
            raise InvalidProductTerms("地区名称过长", field="regions")
        return cleaned or None

    @staticmethod
    def customer_types(values: Sequence[str] | None) -> list[str] | None:
        if not values:
            return None
        if isinstance(values, str):
            raise InvalidProductTerms("客户类型须是列表", field="customer_types")
        cleaned = sorted({str(v).strip() for v in values if str(v).strip()})
        unknown = [v for v in cleaned if v not in CUSTOMER_TYPE_LABELS]
        if unknown:
            choices = "、".join(CUSTOMER_TYPE_LABELS)
            raise InvalidProductTerms(f"未知的客户类型：{'、'.join(unknown)}（可选：{choices}）", field="customer_types")
        return cleaned or None


# --- the one mapping to the schedule engine ----------------------------------------------------------


def loan_terms(version: _TermsLike, amount: int, term_months: int, start_date: date) -> LoanTerms:
    """The engine's terms for ``amount`` fen over ``term_months`` under a product version (or unsaved terms).

    Periods are monthly (a bullet loan is one period at the end of the term, the engine decides);
    the deposit is ``amount × deposit_rate + deposit_amount``, rounded once with the product rounding.
    Does not check the product's amount range or allowed terms (:func:`quote` does).
    """
    rounding = Rounding(version.rounding)
    quantum = 10 ** (2 - int(version.currency_digits))
    deposit = version.deposit_amount
    if version.deposit_rate:
        deposit += round_to(amount * Fraction(Decimal(version.deposit_rate)), rounding, quantum)
    return LoanTerms(
        principal=amount,
        annual_rate=Decimal(version.annual_rate),
        periods=term_months,
        method=version.repayment_method,
        start_date=start_date,
        interest_method=version.interest_method,
        interest_period=version.interest_period,
        days_in_year=version.days_in_year,
        rounding=rounding,
        digits=int(version.currency_digits),
        installment_multiple=int(version.installment_multiple_amount),
        grace_principal=int(version.grace_principal_periods),
        grace_interest=int(version.grace_interest_periods),
        service_fee_rate=Decimal(version.service_fee_rate),
        service_fee_amount=int(version.service_fee_amount),
        service_fee_timing=version.service_fee_timing,
        deposit=deposit,
        deposit_refundable=bool(version.deposit_refundable),
    )


@dataclass(frozen=True)
class Quote:
    """One amount and term under one version: the engine's schedule and its comprehensive annualised cost."""

    amount: int
    term_months: int
    schedule: Schedule
    apr: Decimal
    version_id: int | None = None

    @property
    def monthly_payment(self) -> int:
        """The first period's total; with no-payment grace periods, the first period that asks for money."""
        for row in self.schedule.periods:
            if row.total:
                return row.total
        return 0

    @property
    def apr_percent(self) -> str:
        return percent(self.apr)

    def as_dict(self) -> dict[str, Any]:
        totals = self.schedule.totals
        return {
            "version_id": self.version_id, "amount": self.amount, "term_months": self.term_months,
            "apr_rate": str(self.apr), "apr_percent": self.apr_percent, "monthly_payment": self.monthly_payment,
            "received": self.schedule.received, "upfront_fee": self.schedule.upfront_fee,
            "deposit": self.schedule.terms.deposit,
            "totals": {"principal": totals.principal, "interest": totals.interest, "fee": totals.fee,
                       "total": totals.total},
            "periods": [
                {"number": r.number, "due_date": r.due_date.isoformat(), "principal": r.principal,
                 "interest": r.interest, "fee": r.fee, "total": r.total, "balance": r.balance,
                 "capitalised": r.capitalised}
                for r in self.schedule.periods
            ],
        }


def quote_terms(terms: _TermsLike, amount: int, term_months: int, start_date: date | None = None, *,
                cap: Decimal | None = None, version_id: int | None = None) -> Quote:
    """Schedule and APR for terms (no range checks); refused with the reason above the cap."""
    schedule = build_schedule(loan_terms(terms, amount, term_months, start_date or clock.today()))
    apr = check_apr_cap(schedule, cap)
    return Quote(amount, term_months, schedule, apr, version_id)


def check_amount_and_term(version: ProductVersion | ProductTerms, amount: int, term_months: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise AmountOutOfRange("金额必须是整数（分）", field="amount")
    if not version.min_amount <= amount <= version.max_amount:
        raise AmountOutOfRange(
            f"金额 {format_yuan(amount)} 不在产品允许的 {format_yuan(version.min_amount)}"
            f" – {format_yuan(version.max_amount)} 之间", field="amount")
    if term_months not in list(version.terms_months):
        allowed = "、".join(str(t) for t in version.terms_months)
        raise TermNotAllowed(f"期限 {term_months} 个月不可选（可选：{allowed} 个月）", field="term_months")


def quote(version: ProductVersion, amount: int, term_months: int, start_date: date | None = None) -> Quote:
    """The schedule and 综合年化成本 of ``amount`` fen over ``term_months`` under a stored version."""
    check_amount_and_term(version, amount, term_months)
    return quote_terms(version, amount, term_months, start_date, version_id=version.id)


@dataclass(frozen=True)
class SampleQuote:
    amount: int
    term_months: int
    apr: Decimal
    monthly_payment: int


def sample_quotes(terms: ProductTerms, start_date: date | None = None) -> list[SampleQuote]:
    """Quotes at the minimum and maximum amount × every allowed term; the first refusal is raised,
    naming the amount and term (a term the engine refuses, or an APR above the cap)."""
    start = start_date or clock.today()
    cap = apr_cap()
    samples = []
    for term in terms.terms_months:
        for amount in sorted({terms.min_amount, terms.max_amount}):
            where = f"金额 {format_yuan(amount)}、期限 {term} 个月："
            try:
                q = quote_terms(terms, amount, term, start, cap=cap)
            except AprAboveCap as exc:
                raise AprAboveCap(where + exc.message + "，不能保存此产品版本", **exc.details) from None
            except AppError as exc:
                raise InvalidProductTerms(where + exc.message, field=exc.details.get("field")) from None
            samples.append(SampleQuote(amount, term, q.apr, q.monthly_payment))
    return samples


# --- funders -----------------------------------------------------------------------------------------


def _funder_type(value: str) -> str:
    try:
        return str(FunderType(value))
    except ValueError:
        raise ValidationFailed(f"资方类型不正确：{value}（可选：{'、'.join(FUNDER_TYPE_LABELS)}）",
                               field="funder_type") from None


def _name(value: str, label: str, field_name: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"请填写{label}", field=field_name)
    if len(value) > limit:
        raise ValidationFailed(f"{label}不能超过 {limit} 个字", field=field_name)
    return value


def create_funder(session: Session, *, name: str, funder_type: str = FunderType.BANK, note: str | None = None,
                  actor: audit.Actor | None = None) -> Funder:
    name = _name(name, "资方名称", "name", 80)
    if session.scalar(select(Funder.id).where(Funder.name == name)) is not None:
        raise FunderNameTaken(f"资方名称已存在：{name}", field="name")
    now = clock.now()
    funder = Funder(name=name, funder_type=_funder_type(funder_type), active=True, note=note or None,
                    created_at=now, updated_at=now)
    session.add(funder)
    session.flush()
    audit.record(session, "lending.funder.create", entity_type="lending_funder", entity_id=funder.id,
                 after={"name": name, "funder_type": funder.funder_type}, actor=actor)
    return funder


def update_funder(session: Session, funder_id: int, *, name: str | None = None, funder_type: str | None = None,
                  active: bool | None = None, note: str | None = None, actor: audit.Actor | None = None) -> Funder:
    funder = session.get(Funder, funder_id, with_for_update=True)
    if funder is None:
        raise FunderNotFound()
    before = {"name": funder.name, "funder_type": funder.funder_type, "active": funder.active}
    if name is not None:
        name = _name(name, "资方名称", "name", 80)
        taken = session.scalar(select(Funder.id).where(Funder.name == name, Funder.id != funder_id))
        if taken is not None:
            raise FunderNameTaken(f"资方名称已存在：{name}", field="name")
        funder.name = name
    if funder_type is not None:
        funder.funder_type = _funder_type(funder_type)
    if active is not None:
        funder.active = active
    if note is not None:
        funder.note = note or None
    funder.updated_at = clock.now()
    session.flush()
    audit.record(session, "lending.funder.update", entity_type="lending_funder", entity_id=funder.id,
                 before=before, after={"name": funder.name, "funder_type": funder.funder_type,
                                       "active": funder.active}, actor=actor)
    return funder


def list_funders(session: Session, *, active_only: bool = False) -> list[Funder]:
    query = select(Funder).order_by(Funder.name)
    if active_only:
        query = query.where(Funder.active.is_(True))
    return list(session.scalars(query))


# --- products and versions ---------------------------------------------------------------------------


def _add_version(session: Session, product: Product, number: int, terms: ProductTerms,
                 samples: list[SampleQuote], *, by_staff_id: int | None, note: str | None) -> ProductVersion:
    version = ProductVersion(
        product_id=product.id, version=number, **terms.as_row(),
        max_apr_rate=max(s.apr for s in samples).quantize(Decimal("1e-8")),
        note=(note or "").strip()[:300] or None, created_by_staff_id=by_staff_id, created_at=clock.now(),
    )
    session.add(version)
    session.flush()
    product.current_version_id = version.id
    product.updated_at = version.created_at
    session.flush()
    return version


def _terms_audit(terms: ProductTerms) -> dict[str, Any]:
    return {k: v if isinstance(v, bool | int | str) or v is None else str(v) for k, v in asdict(terms).items()}


def create_product(session: Session, *, code: str, name: str, funder_id: int, terms: ProductTerms,
                   by_staff_id: int | None = None, note: str | None = None,
                   actor: audit.Actor | None = None) -> Product:
    """A new product with version 1 (refused, with nothing written, if a sample quote is refused)."""
    code = _name(code, "产品编码", "code", 40)
    name = _name(name, "产品名称", "name", 80)
    if session.get(Funder, funder_id) is None:
        raise FunderNotFound(field="funder_id")
    terms = terms.normalized()
    samples = sample_quotes(terms)
    if session.scalar(select(Product.id).where(Product.code == code)) is not None:
        raise ProductCodeTaken(f"产品编码已存在：{code}", field="code")
    now = clock.now()
    product = Product(code=code, name=name, funder_id=funder_id, active=True, created_at=now, updated_at=now)
    session.add(product)
    session.flush()
    version = _add_version(session, product, 1, terms, samples, by_staff_id=by_staff_id, note=note or "首个版本")
    audit.record(session, "lending.product.create", entity_type="lending_product", entity_id=product.id,
                 after={"code": code, "name": name, "version_id": version.id, **_terms_audit(terms)}, actor=actor)
    return product


def edit_product(session: Session, product_id: int, terms: ProductTerms, *, name: str | None = None,
                 funder_id: int | None = None, by_staff_id: int | None = None, note: str | None = None,
                 actor: audit.Actor | None = None) -> ProductVersion:
    """Change a product: new terms become version N+1 (stored versions never change).

    Locks the product row, so two edits at once number their versions one after the other (the
    unique (product_id, version) stands behind it). Unchanged terms add no version.
    """
    product = session.get(Product, product_id, with_for_update=True)
    if product is None:
        raise ProductNotFound()
    if name is not None:
        product.name = _name(name, "产品名称", "name", 80)
    if funder_id is not None and funder_id != product.funder_id:
        if session.get(Funder, funder_id) is None:
            raise FunderNotFound(field="funder_id")
        product.funder_id = funder_id
    terms = terms.normalized()
    current = session.get(ProductVersion, product.current_version_id) if product.current_version_id else None
    if current is not None and ProductTerms.of(current).normalized() == terms:
        product.updated_at = clock.now()
        session.flush()
        return current
    samples = sample_quotes(terms)
    last = session.scalar(select(func.max(ProductVersion.version)).where(ProductVersion.product_id == product.id))
    version = _add_version(session, product, (last or 0) + 1, terms, samples, by_staff_id=by_staff_id, note=note)
    audit.record(session, "lending.product.new_version", entity_type="lending_product", entity_id=product.id,
                 before={"version_id": current.id if current else None},
                 after={"version_id": version.id, "version": version.version, **_terms_audit(terms)}, actor=actor)
    return version


def set_product_active(session: Session, product_id: int, active: bool, *,
                       actor: audit.Actor | None = None) -> Product:
    product = session.get(Product, product_id, with_for_update=True)
    if product is None:
        raise ProductNotFound()
    if product.active != active:
        product.active = active
        product.updated_at = clock.now()
        session.flush()
        audit.record(session, "lending.product.activate" if active else "lending.product.deactivate",
                     entity_type="lending_product", entity_id=product.id, after={"active": active}, actor=actor)
    return product


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise ProductNotFound()
    return product


def get_version(session: Session, version_id: int) -> ProductVersion:
    version = session.get(ProductVersion, version_id)
    if version is None:
        raise ProductVersionNotFound()
    return version


def current_version(session: Session, product_id: int, *, require_active: bool = True) -> ProductVersion:
    """The version a new application quotes from; refused when the product or its funder is inactive."""
    product = get_product(session, product_id)
    if require_active and not (product.active and product.funder.active):
        raise ProductInactive(f"产品已停用：{product.name}")
    if product.current_version_id is None:
        raise ProductVersionNotFound("产品还没有可用的版本")
    return get_version(session, product.current_version_id)


def versions_of(session: Session, product_id: int) -> list[ProductVersion]:
    return list(session.scalars(
        select(ProductVersion).where(ProductVersion.product_id == product_id).order_by(ProductVersion.version.desc())))


def list_products(session: Session, *, active_only: bool = False) -> list[tuple[Product, ProductVersion | None]]:
    """Products with their current version, by funder and code."""
    query = (
        select(Product, ProductVersion)
        .join(Funder, Product.funder_id == Funder.id)
        .outerjoin(ProductVersion, Product.current_version_id == ProductVersion.id)
        .order_by(Funder.name, Product.code)
    )
    if active_only:
        query = query.where(Product.active.is_(True), Funder.active.is_(True))
    return [(p, v) for p, v in session.execute(query)]


def with_changes(terms: ProductTerms, **changes: Any) -> ProductTerms:
    """A copy of the terms with some fields changed (for edits)."""
    return replace(terms, **changes)

