"""Segment conditions on the qualification profile (``qualification.<name>``) and on custom fields
(``custom.<key>``), for :mod:`crm.segments`.

A custom field's values live in the column of its type and only there, so a condition compiles without
knowing the type: ``equals`` compares the text column (and the number column when the value is a
number), ``gte``/``lte`` the number column, ``after``/``before`` the date column. With a session the
condition is checked against the definition (the field exists, the comparison suits its type, the
value is one it could hold), with the same Chinese messages as a stored value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from core.errors import ValidationFailed
from crm import custom_fields
from crm.models import (
    CAR_LABELS,
    CREDIT_LEVEL_LABELS,
    EMPLOYMENT_LABELS,
    INCOME_BAND_LABELS,
    PROPERTY_LABELS,
    Customer,
    CustomerQualification,
    CustomField,
    CustomFieldValue,
)
from crm.tag_exceptions import InvalidRule

__all__ = ["CUSTOM", "QUALIFICATION", "QUALIFICATION_FIELDS", "ProfileSpec", "compile_condition", "filter_choices",
           "form_specs", "form_value", "is_profile_field", "label_of", "list_clause", "parse_value"]

CUSTOM = "custom."
QUALIFICATION = "qualification."
_CODES = {"in": "属于", "not_in": "不属于"}
_COUNTS = {"gte": "不低于", "lte": "不高于"}
# name -> (Chinese label, comparisons, code labels or None for a count)
QUALIFICATION_FIELDS: dict[str, tuple[str, dict[str, str], dict[str, str] | None]] = {
    "employment_type": ("职业身份", _CODES, EMPLOYMENT_LABELS),
    "income_band": ("月收入档", _CODES, INCOME_BAND_LABELS),
    "social_insurance_months": ("社保缴纳月数", _COUNTS, None),
    "provident_fund_months": ("公积金缴纳月数", _COUNTS, None),
    "property_status": ("房产", _CODES, PROPERTY_LABELS),
    "car_status": ("车辆", _CODES, CAR_LABELS),
    "credit_level": ("征信情况", _CODES, CREDIT_LEVEL_LABELS),
}
_ANY_CMPS = {"equals", "contains", "in", "gte", "lte", "after", "before", "is_empty", "not_empty"}


def is_profile_field(name: str) -> bool:
    return name.startswith((CUSTOM, QUALIFICATION))


def label_of(name: str) -> str:
    if name.startswith(QUALIFICATION):
        spec = QUALIFICATION_FIELDS.get(name.removeprefix(QUALIFICATION))
        return f"资质·{spec[0]}" if spec else name
    return name.removeprefix(CUSTOM)


def _qualification_value(name: str, cmp: str, value: Any, where: str) -> Any:
    spec = QUALIFICATION_FIELDS.get(name)
    if spec is None:
        raise InvalidRule(f"{where}：未知的资质字段「{name}」", field=QUALIFICATION + name)
    label, cmps, codes = spec
    if cmp not in cmps:
        raise InvalidRule(f"{where}：「{label}」不支持比较方式「{cmp}」，可用：{'、'.join(cmps.values())}")
    if codes is None:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 600:
            raise InvalidRule(f"{where}：「{label}」须是 0–600 的整数（月）")
        return value
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise InvalidRule(f"{where}：「{label}」请至少选择一个取值")
    unknown = [v for v in values if v not in codes]
    if unknown:
        raise InvalidRule(f"{where}：「{label}」未知的取值「{'、'.join(unknown)}」，可用：{'、'.join(codes)}")
    return sorted(set(values))


def _custom_value(cmp: str, value: Any, where: str) -> Any:
    """The value's normal form without the definition (saved rules re-parsed with no session)."""
    if cmp not in _ANY_CMPS:
        raise InvalidRule(f"{where}：未知的比较方式「{cmp}」")
    if cmp in ("is_empty", "not_empty"):
        return None
    if cmp == "in":
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise InvalidRule(f"{where}：请至少选择一个选项")
        return list(dict.fromkeys(values))
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRule(f"{where}：请填写筛选值")
    text = str(value).strip()
    if cmp in ("gte", "lte"):
        try:
            return Decimal(text)
        except InvalidOperation:
            raise InvalidRule(f"{where}：请填写数字") from None
    if cmp in ("after", "before"):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidRule(f"{where}：日期格式应为 YYYY-MM-DD，如 2026-01-31") from None
    if not text:
        raise InvalidRule(f"{where}：请填写筛选值")
    return text


def parse_value(name: str, cmp: str, value: Any, where: str, session: Session | None) -> Any:
    if name.startswith(QUALIFICATION):
        return _qualification_value(name.removeprefix(QUALIFICATION), cmp, value, where)
    key = name.removeprefix(CUSTOM)
    if session is not None:
        field = session.scalar(select(CustomField).where(CustomField.key == key, CustomField.active.is_(True)))
        if field is None:
            raise InvalidRule(f"{where}：自定义字段「{key}」不存在或已停用", field=name)
        try:
            custom_fields.parse_filter(field, cmp, value)
        except ValidationFailed as exc:
            raise InvalidRule(f"{where}：{exc.message}", field=name) from None
    return _custom_value(cmp, value, where)


def compile_condition(name: str, cmp: str, value: Any) -> ColumnElement[bool]:
    if name.startswith(QUALIFICATION):
        column = getattr(CustomerQualification, name.removeprefix(QUALIFICATION))
        held = CustomerQualification.customer_id == Customer.id
        if cmp == "not_in":  # "not A" includes customers with nothing recorded
            return ~exists().where(held, column.in_(value))
        if cmp == "in":
            return exists().where(held, column.in_(value))
        return exists().where(held, column >= value if cmp == "gte" else column <= value)
    v = CustomFieldValue
    field_id = select(CustomField.id).where(CustomField.key == name.removeprefix(CUSTOM)).scalar_subquery()
    base = and_(v.customer_id == Customer.id, v.field_id == field_id)
    if cmp == "is_empty":
        return ~exists().where(base)
    if cmp == "not_empty":
        return exists().where(base)
    if cmp == "equals":
        try:
            number = Decimal(value)
        except InvalidOperation:
            test = v.text_value == value
        else:
            test = or_(v.text_value == value, v.number_value == number)
    else:
        test = {"contains": lambda: v.text_value.contains(value, autoescape=True), "in": lambda: v.text_value.in_(value),
                "gte": lambda: v.number_value >= value, "lte": lambda: v.number_value <= value,
                "after": lambda: v.date_value >= value, "before": lambda: v.date_value <= value}[cmp]()
    return exists().where(base, test)


CMP_LABELS = {"equals": "等于", "contains": "包含", "in": "属于", "not_in": "不属于", "gte": "不低于", "lte": "不高于",
              "after": "不早于", "before": "不晚于", "is_empty": "为空", "not_empty": "不为空"}


def filter_choices(session: Session) -> dict[str, str]:
    """What the customer list may be filtered on besides its own columns: field name -> Chinese label."""
    out = {QUALIFICATION + name: f"资质·{spec[0]}" for name, spec in QUALIFICATION_FIELDS.items()}
    out.update({CUSTOM + f.key: f.label for f in custom_fields.definitions(session)})
    return out


def list_clause(session: Session, name: str, cmp: str, raw: str) -> ColumnElement[bool] | None:
    """The customer list's one profile filter (``qualification.<name>`` or ``custom.<key>``); None when unset.
    A code filter takes its value as a code or as its Chinese label."""
    if not name:
        return None
    if not is_profile_field(name):
        raise ValidationFailed(f"未知的筛选字段：{name[:40]}", field="cf_field")
    value: Any = raw.strip() if cmp not in ("is_empty", "not_empty") else None
    spec = QUALIFICATION_FIELDS.get(name.removeprefix(QUALIFICATION)) if name.startswith(QUALIFICATION) else None
    if spec is not None and spec[2] is not None and cmp == "equals":
        cmp = "in"  # a code field: "equals" is "is one of"
    if spec is not None and spec[2] is not None and value:
        by_label = {label: code for code, label in spec[2].items()}
        value = [by_label.get(v.strip(), v.strip()) for v in value.replace("，", ",").split(",") if v.strip()]
    value = parse_value(name, cmp, value, "筛选", session)
    return compile_condition(name, cmp, value)


@dataclass(frozen=True)
class ProfileSpec:
    """What the segment builder's rows need of a field (the same shape as ``crm.segments.FieldSpec``)."""

    label: str
    kind: str
    cmps: dict[str, str]


def form_specs(session: Session) -> dict[str, ProfileSpec]:
    """The builder's extra fields: the qualification's plain facts and every active custom field."""
    out = {QUALIFICATION + name: ProfileSpec(f"资质·{label}", "qualification", cmps)
           for name, (label, cmps, _) in QUALIFICATION_FIELDS.items()}
    for f in custom_fields.definitions(session):
        cmps = {k: v for k, v in custom_fields.FILTER_CMPS[f.field_type].items()
                if not f.sensitive or k in ("is_empty", "not_empty")}
        out[CUSTOM + f.key] = ProfileSpec(f.label, "custom", cmps)
    return out


def form_value(name: str, cmp: str, text: str) -> Any:
    """A builder row's typed text as a rule value: a list for "in" (codes or their Chinese labels)."""
    text = (text or "").strip()
    if cmp in ("is_empty", "not_empty"):
        return None
    if cmp not in ("in", "not_in"):
        return text
    tokens = [t for t in re.split(r"[,，、;；\s]+", text) if t]
    spec = QUALIFICATION_FIELDS.get(name.removeprefix(QUALIFICATION)) if name.startswith(QUALIFICATION) else None
    if spec is not None and spec[2] is not None:
        by_label = {label: code for code, label in spec[2].items()}
        tokens = [by_label.get(t, t) for t in tokens]
    return tokens
