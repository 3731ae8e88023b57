"""进件产品匹配: which products fit a customer's demand and profile, ranked, and why the others do not.

For a demand (amount in fen, term in months, customer type) and a profile (age from the ID number,
region, monthly income in fen when known) every product of every funder is checked against its
current version: active product and funder, amount range, allowed terms, age range, regions
(a product region matches a customer region that starts with it: "广东" admits "广东深圳"),
customer types and minimum income, and the requirements on the qualification profile
(``lending.product_requirements``: 社保 and 公积金 months, property, car, debt ratio, credit level,
overdues and queries, industries). A requirement the profile cannot answer (an unknown income, no
社保 months recorded …) neither admits nor excludes: the product is listed under ``needs_info``
(需补充资料) with the facts to supply, quoted like a match so the salesperson sees what it would cost;
a product that also fails a requirement is excluded, its missing facts listed beside the reasons.
Eligible products are quoted through the schedule engine (a quote refused there, for
instance above the cost cap, excludes the product with the engine's reason) and ranked by
comprehensive annualised cost as shown (to 0.01 %, so rounding noise in the twelfth decimal does not
decide), then by the monthly payment (first period that asks for money), then by product code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from core import clock
from core.errors import AppError, ValidationFailed
from core.money import format_yuan
from crm.models import CUSTOMER_TYPE_LABELS, Customer, CustomerType
from crm.qualification import qualification_of
from lending import product_requirements as requirements
from lending.models import Funder, Product, ProductVersion
from lending.person import age_from_sealed
from lending.products import Quote, quote

APR_RANK_STEP = Decimal("0.0001")  # 0.01 %

__all__ = [
    "Demand", "Exclusion", "Match", "MatchResult", "Profile", "demand_of", "match_products", "profile_of",
]


@dataclass(frozen=True)
class Demand:
    amount: int  # fen
    term_months: int
    customer_type: str | None = None


@dataclass(frozen=True)
class Profile:
    age: int | None = None
    region: str | None = None
    income_monthly: int | None = None  # fen per month, when known
    customer_type: str | None = None
    # the opened qualification profile (crm.qualification.Qualification.values); never shown as is
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    product: Product
    version: ProductVersion
    funder: Funder
    quote: Quote
    notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # 待补充: facts the profile lacks (only in MatchResult.needs_info)

    @property
    def monthly_payment(self) -> int:
        return self.quote.monthly_payment

    def as_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product.id, "product_code": self.product.code, "product_name": self.product.name,
            "version_id": self.version.id, "version": self.version.version, "funder": self.funder.name,
            "monthly_payment": self.monthly_payment, "apr_rate": str(self.quote.apr),
            "apr_percent": self.quote.apr_percent, "notes": list(self.notes), "missing": list(self.missing),
        }


@dataclass(frozen=True)
class Exclusion:
    product: Product
    funder: Funder
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"product_id": self.product.id, "product_code": self.product.code,
                "product_name": self.product.name, "funder": self.funder.name, "reasons": list(self.reasons),
                "missing": list(self.missing)}


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    needs_info: list[Match] = field(default_factory=list)  # 需补充资料
    excluded: list[Exclusion] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"matches": [m.as_dict() for m in self.matches], "needs_info": [m.as_dict() for m in self.needs_info],
                "excluded": [e.as_dict() for e in self.excluded]}


def profile_of(customer: Customer, *, income_monthly: int | None = None, day: date | None = None) -> Profile:
    """The matching profile of a CRM customer: age from the sealed ID number (opened, read, dropped); the
    qualification profile (crm.qualification) opened, its monthly income used unless one is given."""
    session = object_session(customer)
    facts: dict[str, Any] = dict(qualification_of(session, customer.id).values) if session is not None else {}
    if income_monthly is None:
        income_monthly = facts.get("income_monthly_amount")
    else:
        facts["income_monthly_amount"] = income_monthly
    return Profile(age=age_from_sealed(customer.id_number_enc, day), region=customer.region,
                   income_monthly=income_monthly, customer_type=customer.customer_type, facts=facts)


def demand_of(customer: Customer, *, amount: int | None = None, term_months: int | None = None,
              customer_type: str | None = None) -> Demand:
    """The customer's demand as recorded in the CRM (demand_amount, demand_term_months, customer_type),
    each overridable; refused in Chinese when the amount or term is known nowhere."""
    amount = amount if amount is not None else customer.demand_amount
    term = term_months if term_months is not None else customer.demand_term_months
    if amount is None:
        raise ValidationFailed("客户没有填写需求金额，请输入申请金额", field="amount")
    if term is None:
        raise ValidationFailed("客户没有填写需求期限，请输入申请期限（月）", field="term_months")
    return Demand(amount, term, customer_type or customer.customer_type)


def _validate(demand: Demand) -> None:
    if isinstance(demand.amount, bool) or not isinstance(demand.amount, int) or demand.amount <= 0:
        raise ValidationFailed("请填写正确的申请金额", field="amount")
    if isinstance(demand.term_months, bool) or not isinstance(demand.term_months, int) or demand.term_months <= 0:
        raise ValidationFailed("请填写正确的申请期限（月）", field="term_months")
    if demand.customer_type and demand.customer_type not in CUSTOMER_TYPE_LABELS:
        raise ValidationFailed(f"未知的客户类型：{demand.customer_type}", field="customer_type")


def eligibility_reasons(product: Product, funder: Funder, version: ProductVersion | None, demand: Demand,
                        profile: Profile) -> tuple[list[str], list[str], list[str]]:
    """(reasons to exclude, notes, missing facts) of one product for the demand and profile, in Chinese."""
    reasons: list[str] = []
    notes: list[str] = []
    missing: list[str] = []
    if not funder.active:
        reasons.append(f"资方「{funder.name}」已停用")
    if not product.active:
        reasons.append("产品已停用")
    if version is None:
        reasons.append("产品没有可用版本")
        return reasons, notes, missing
    if not version.min_amount <= demand.amount <= version.max_amount:
        reasons.append(f"申请金额 {format_yuan(demand.amount)} 不在 {format_yuan(version.min_amount)}"
                       f" – {format_yuan(version.max_amount)} 之间")
    if demand.term_months not in version.terms_months:
        allowed = "、".join(str(t) for t in version.terms_months)
        reasons.append(f"期限 {demand.term_months} 个月不可选（可选 {allowed} 个月）")
    if version.min_age is not None or version.max_age is not None:
        low, high = version.min_age or 0, version.max_age or 200
        span = f"{version.min_age or '不限'}–{version.max_age or '不限'} 周岁"
        if profile.age is None:
            reasons.append(f"缺少身份证号，无法核对年龄要求（{span}）")
        elif not low <= profile.age <= high:
            reasons.append(f"年龄 {profile.age} 周岁不符合要求（{span}）")
    if version.regions:
        region = (profile.region or "").strip()
        if not region:
            reasons.append(f"缺少所在地区，产品仅限：{'、'.join(version.regions)}")
        elif not any(region.startswith(allowed) for allowed in version.regions):
            reasons.append(f"地区「{region}」不在产品范围内（仅限：{'、'.join(version.regions)}）")
    customer_type = demand.customer_type or profile.customer_type
    if version.customer_types and customer_type in (None, "", CustomerType.UNKNOWN):
        allowed = "、".join(CUSTOMER_TYPE_LABELS.get(t, t) for t in version.customer_types)
        notes.append(f"需确认客户类型（产品仅限：{allowed}）")  # 未知 is not ineligible
    elif version.customer_types and customer_type not in version.customer_types:
        allowed = "、".join(CUSTOMER_TYPE_LABELS.get(t, t) for t in version.customer_types)
        shown = CUSTOMER_TYPE_LABELS.get(customer_type or "", customer_type or "未填写")
        reasons.append(f"客户类型「{shown}」不适用（仅限：{allowed}）")
    if version.min_income_amount:
        if profile.income_monthly is None:
            missing.append(f"月收入（要求不低于 {format_yuan(version.min_income_amount)}）")
        elif profile.income_monthly < version.min_income_amount:
            reasons.append(f"月收入 {format_yuan(profile.income_monthly)} 低于要求的"
                           f" {format_yuan(version.min_income_amount)}")
    facts = dict(profile.facts)
    if profile.income_monthly is not None:
        facts["income_monthly_amount"] = profile.income_monthly
    failed, lacking = requirements.check(version, facts)
    return reasons + failed, notes, missing + lacking


def match_products(session: Session, demand: Demand, profile: Profile, *,
                   start_date: date | None = None) -> MatchResult:
    """Every product across funders, eligible ones quoted and ranked, the others with their reasons."""
    _validate(demand)
    start = start_date or clock.today()
    rows = session.execute(
        select(Product, Funder, ProductVersion)
        .join(Funder, Product.funder_id == Funder.id)
        .outerjoin(ProductVersion, Product.current_version_id == ProductVersion.id)
        .order_by(Product.code)
    ).all()
    result = MatchResult()
    for product, funder, version in rows:
        reasons, notes, missing = eligibility_reasons(product, funder, version, demand, profile)
        if not reasons:
            try:
                q = quote(version, demand.amount, demand.term_months, start)
            except AppError as exc:
                reasons.append(f"无法报价：{exc.message}")
            else:
                match = Match(product, version, funder, q, tuple(notes), tuple(missing))
                (result.needs_info if missing else result.matches).append(match)
                continue
        result.excluded.append(Exclusion(product, funder, tuple(reasons), tuple(missing)))
    for listed in (result.matches, result.needs_info):
        listed.sort(key=lambda m: (m.quote.apr.quantize(APR_RANK_STEP), m.monthly_payment, m.product.code))
    return result
