"""准入条件 on the customer's qualification profile: what a product version may require, and the check.

A product version may require a minimum of 社保 and 公积金 months, a property, a car, a maximum debt
ratio (monthly debt service over monthly income, a Decimal: 0.5 is 50 %), a credit level no worse than
a given one (``crm.models.CREDIT_LEVEL_ORDER``, best first), at most so many credit overdues (近两年)
and credit queries (近半年), and industries admitted or excluded (names from
``crm.models.INDUSTRY_CHOICES``; a name matches a customer's industry that starts with it).

:func:`normalize` validates what a person entered (Chinese messages, field names of the form);
:func:`check` compares a version with the opened profile (``crm.qualification.Qualification.values``)
and returns the reasons it fails and the facts the profile does not have (待补充). A missing fact is
never taken as a pass or a fail: the matching lists the product as 需补充资料 with those facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from core.money import format_yuan
from crm.models import CREDIT_LEVEL_LABELS, CREDIT_LEVEL_ORDER, CUSTOMER_TYPE_LABELS, INDUSTRY_CHOICES
from lending.product_exceptions import InvalidProductTerms

__all__ = ["MAX_DEBT_RATIO", "REQUIREMENT_FIELDS", "check", "describe", "normalize", "ratio_percent"]

MAX_MONTHS = 600
MAX_COUNT = 999
MAX_DEBT_RATIO = Decimal(5)  # 500 %: debt service can exceed income; beyond that a typo
REQUIREMENT_FIELDS = ("min_social_insurance_months", "min_provident_fund_months", "property_required",
                      "car_required", "max_debt_ratio", "min_credit_level", "max_credit_overdue_count",
                      "max_credit_queries_6m", "allowed_industries", "excluded_industries")
_HOLDS = {"full", "mortgage", "loan"}  # property_status / car_status codes that mean "has one"


def ratio_percent(ratio: Decimal) -> str:
    """0.5 -> "50", 0.355 -> "35.5" (the form and the messages speak percent)."""
    text = f"{(Decimal(ratio) * 100).normalize():f}"
    return text


# --- validation ----------------------------------------------------------------------------------------


def _count(value: Any, field: str, label: str, *, low: int, high: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProductTerms(f"{label}必须是整数", field=field)
    if not low <= value <= high:
        raise InvalidProductTerms(f"{label}须在 {low} 到 {high} 之间：{value}", field=field)
    return value


def _flag(value: Any, field: str, label: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidProductTerms(f"{label}必须是是/否", field=field)
    return value


def _ratio(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float | bool):
        raise InvalidProductTerms("最高负债率不能是浮点数", field="max_debt_ratio")
    try:
        ratio = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidProductTerms(f"最高负债率格式不正确：{value}", field="max_debt_ratio") from None
    if not ratio.is_finite() or ratio <= 0 or ratio > MAX_DEBT_RATIO:
        raise InvalidProductTerms(f"最高负债率须大于 0% 且不超过 {ratio_percent(MAX_DEBT_RATIO)}%：{value}",
                                  field="max_debt_ratio")
    if ratio != ratio.quantize(Decimal("0.0001")):
        raise InvalidProductTerms("最高负债率最多精确到 0.01%", field="max_debt_ratio")
    return ratio


def _industries(values: Sequence[str] | None, field: str, label: str) -> list[str] | None:
    if not values:
        return None
    if isinstance(values, str):
        raise InvalidProductTerms(f"{label}须是列表", field=field)
    cleaned = sorted({str(v).strip() for v in values if str(v).strip()}, key=_industry_order)
    unknown = [v for v in cleaned if v not in INDUSTRY_CHOICES]
    if unknown:
        raise InvalidProductTerms(f"未知的行业：{'、'.join(unknown)}（可选：{'、'.join(INDUSTRY_CHOICES)}）", field=field)
    return cleaned or None


def _industry_order(name: str) -> tuple[int, str]:
    return (INDUSTRY_CHOICES.index(name), name) if name in INDUSTRY_CHOICES else (len(INDUSTRY_CHOICES), name)


def normalize(values: Mapping[str, Any]) -> dict[str, Any]:
    """The requirement fields of ``values`` validated (InvalidProductTerms in Chinese on the first bad one)."""
    level = values.get("min_credit_level") or None
    if level is not None and level not in CREDIT_LEVEL_LABELS:
        raise InvalidProductTerms(f"征信要求只能是：{'、'.join(CREDIT_LEVEL_LABELS.values())}（收到「{str(level)[:20]}」）",
                                  field="min_credit_level")
    allowed = _industries(values.get("allowed_industries"), "allowed_industries", "准入行业")
    excluded = _industries(values.get("excluded_industries"), "excluded_industries", "限制行业")
    both = sorted(set(allowed or ()) & set(excluded or ()), key=_industry_order)
    if both:
        raise InvalidProductTerms(f"行业不能既准入又限制：{'、'.join(both)}", field="excluded_industries")
    return {
        "min_social_insurance_months": _count(values.get("min_social_insurance_months"), "min_social_insurance_months",
                                              "最低社保缴纳月数", low=1, high=MAX_MONTHS),
        "min_provident_fund_months": _count(values.get("min_provident_fund_months"), "min_provident_fund_months",
                                            "最低公积金缴纳月数", low=1, high=MAX_MONTHS),
        "property_required": _flag(values.get("property_required"), "property_required", "是否要求房产"),
        "car_required": _flag(values.get("car_required"), "car_required", "是否要求车辆"),
        "max_debt_ratio": _ratio(values.get("max_debt_ratio")),
        "min_credit_level": level,
        "max_credit_overdue_count": _count(values.get("max_credit_overdue_count"), "max_credit_overdue_count",
                                           "最多逾期次数", low=0, high=MAX_COUNT),
        "max_credit_queries_6m": _count(values.get("max_credit_queries_6m"), "max_credit_queries_6m",
                                        "近半年最多查询次数", low=0, high=MAX_COUNT),
        "allowed_industries": allowed, "excluded_industries": excluded,
    }


# --- the check -----------------------------------------------------------------------------------------


def _debt_ratio(facts: Mapping[str, Any]) -> tuple[Decimal | None, list[str]]:
    income, debt = facts.get("income_monthly_amount"), facts.get("debt_monthly_amount")
    missing = ([] if income else ["月收入"]) + ([] if debt is not None else ["每月还款额"])
    if missing:
        return None, missing
    return (Decimal(debt) / Decimal(income)).quantize(Decimal("0.0001")), []


def check(version: Any, facts: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(reasons the profile fails the version's requirements, facts to be supplied), both in Chinese."""
    reasons: list[str] = []
    missing: list[str] = []

    def months(name: str, label: str, need: int | None) -> None:
        if need is None:
            return
        have = facts.get(name)
        if have is None:
            missing.append(f"{label}月数（要求至少 {need} 个月）")
        elif have < need:
            reasons.append(f"{label} {have} 个月，产品要求至少 {need} 个月")

    months("social_insurance_months", "社保缴纳", version.min_social_insurance_months)
    months("provident_fund_months", "公积金缴纳", version.min_provident_fund_months)
    for required, name, label in ((version.property_required, "property_status", "房产"),
                                  (version.car_required, "car_status", "车辆")):
        if not required:
            continue
        status = facts.get(name)
        if status is None:
            missing.append(f"{label}情况（产品要求有{label}）")
        elif status not in _HOLDS:
            reasons.append(f"无{label}，产品要求有{label}")
    if version.max_debt_ratio is not None:
        ratio, lacking = _debt_ratio(facts)
        limit = ratio_percent(version.max_debt_ratio)
        if ratio is None:
            missing.append(f"{'、'.join(lacking)}（用于核对负债率不超过 {limit}%）")
        elif ratio > version.max_debt_ratio:
            reasons.append(f"负债率 {ratio_percent(ratio)}%（月还款/月收入），产品要求不超过 {limit}%")
    if version.min_credit_level:
        level, need = facts.get("credit_level"), version.min_credit_level
        shown_need = CREDIT_LEVEL_LABELS.get(need, need)
        if level is None:
            missing.append(f"征信情况（要求不差于「{shown_need}」）")
        elif CREDIT_LEVEL_ORDER.index(level) > CREDIT_LEVEL_ORDER.index(need):
            reasons.append(f"征信情况「{CREDIT_LEVEL_LABELS.get(level, level)}」，产品要求不差于「{shown_need}」")
    for limit, name, label in ((version.max_credit_overdue_count, "credit_overdue_count", "近两年逾期"),
                               (version.max_credit_queries_6m, "credit_queries_6m", "近半年征信查询")):
        if limit is None:
            continue
        have = facts.get(name)
        if have is None:
            missing.append(f"{label}次数（要求不超过 {limit} 次）")
        elif have > limit:
            reasons.append(f"{label} {have} 次，产品要求不超过 {limit} 次")
    if version.allowed_industries or version.excluded_industries:
        _industry(version, (facts.get("industry") or "").strip(), reasons, missing)
    return reasons, missing


def _industry(version: Any, industry: str, reasons: list[str], missing: list[str]) -> None:
    allowed, excluded = version.allowed_industries or [], version.excluded_industries or []
    if not industry:
        rule = f"仅限：{'、'.join(allowed)}" if allowed else f"不接受：{'、'.join(excluded)}"
        missing.append(f"所属行业（{rule}）")
        return
    if allowed and not any(industry.startswith(name) for name in allowed):
        reasons.append(f"所属行业「{industry}」不在产品准入行业内（仅限：{'、'.join(allowed)}）")
    hit = next((name for name in excluded if industry.startswith(name)), None)
    if hit is not None:
        reasons.append(f"所属行业「{industry}」属于产品限制行业（{hit}）")


def describe(version: Any) -> list[tuple[str, str]]:
    """The version's eligibility conditions as (label, shown value) rows for the product page; every
    condition, the older ones (age, region, type, income) included, "不限" where none is set."""
    ages = ("不限" if version.min_age is None and version.max_age is None
            else f"{version.min_age or '不限'} – {version.max_age or '不限'} 周岁")
    types = "、".join(CUSTOMER_TYPE_LABELS.get(t, t) for t in version.customer_types or []) or "不限"
    level = version.min_credit_level
    return [
        ("年龄", ages),
        ("地区", "、".join(version.regions or []) or "不限"),
        ("客户类型", types),
        ("最低月收入", format_yuan(version.min_income_amount) if version.min_income_amount else "不限"),
        ("社保缴纳", f"至少 {version.min_social_insurance_months} 个月" if version.min_social_insurance_months else "不限"),
        ("公积金缴纳", f"至少 {version.min_provident_fund_months} 个月" if version.min_provident_fund_months else "不限"),
        ("房产", "须有房产" if version.property_required else "不限"),
        ("车辆", "须有车辆" if version.car_required else "不限"),
        ("负债率", f"不超过 {ratio_percent(version.max_debt_ratio)}%" if version.max_debt_ratio is not None
         else "不限"),
        ("征信情况", f"不差于「{CREDIT_LEVEL_LABELS.get(level, level)}」" if level else "不限"),
        ("近两年逾期", f"不超过 {version.max_credit_overdue_count} 次" if version.max_credit_overdue_count is not None
         else "不限"),
        ("近半年查询", f"不超过 {version.max_credit_queries_6m} 次" if version.max_credit_queries_6m is not None
         else "不限"),
        ("准入行业", "、".join(version.allowed_industries or []) or "不限"),
        ("限制行业", "、".join(version.excluded_industries or []) or "无"),
    ]
