"""A customer's qualification profile (资质): read masked, edit with validation, reveal with an audit row.

Input comes from the console form, the sidebar and the staff API as one mapping of field name to raw
value (text typed by a person, or typed JSON): amounts in yuan ("8000.00", never a float), months as
whole numbers, codes from the label tables in ``crm.models.profile``. Only the names sent change;
an empty value clears the field. Any bad value refuses the whole edit with a Chinese message naming
the field, and nothing is written.

The exact personal figures (:data:`SEALED_FIELDS`) are sealed as one JSON token; the plain columns
(income band, months, holdings, credit level …) carry what lists, segments and matching need.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core import audit, clock, money, pii
from core.errors import ValidationFailed
from crm.customers import get_customer, record_event
from crm.models import (
    CAR_LABELS,
    CREDIT_LEVEL_LABELS,
    EMPLOYMENT_LABELS,
    INCOME_BAND_LABELS,
    PROPERTY_LABELS,
    CustomerQualification,
)
from crm.scope import Viewer

__all__ = [
    "AMOUNT_FIELDS", "CODE_FIELDS", "COUNT_FIELDS", "FIELD_LABELS", "SEALED_FIELDS", "Qualification",
    "income_band", "qualification_of", "read", "reveal", "update",
]

# field -> Chinese label, in display order
FIELD_LABELS: dict[str, str] = {
    "employment_type": "职业身份", "employer": "工作单位", "industry": "所属行业",
    "income_monthly_amount": "月收入（元）",
    "social_insurance_months": "社保缴纳月数", "social_insurance_base_amount": "社保缴费基数（元）",
    "provident_fund_months": "公积金缴纳月数", "provident_fund_base_amount": "公积金缴存基数（元）",
    "property_status": "房产", "property_value_amount": "房产估值（元）",
    "car_status": "车辆", "car_value_amount": "车辆估值（元）",
    "debt_total_amount": "现有负债总额（元）", "debt_monthly_amount": "每月还款额（元）",
    "credit_level": "征信情况", "credit_overdue_count": "近两年逾期次数", "credit_queries_6m": "近半年查询次数",
    "credit_note": "征信备注",
}
CODE_FIELDS: dict[str, dict[str, str]] = {"employment_type": EMPLOYMENT_LABELS, "property_status": PROPERTY_LABELS,
                                          "car_status": CAR_LABELS, "credit_level": CREDIT_LEVEL_LABELS}
AMOUNT_FIELDS = ("income_monthly_amount", "social_insurance_base_amount", "provident_fund_base_amount",
                 "property_value_amount", "car_value_amount", "debt_total_amount", "debt_monthly_amount")
COUNT_FIELDS = {"social_insurance_months": 600, "provident_fund_months": 600, "credit_overdue_count": 999,
                "credit_queries_6m": 999}
TEXT_FIELDS = {"employer": 60, "industry": 40, "credit_note": 200}
# personal figures: sealed, never in a plain column, shown masked
SEALED_FIELDS = ("employer", *AMOUNT_FIELDS, "credit_overdue_count", "credit_queries_6m", "credit_note")
PLAIN_FIELDS = ("employment_type", "industry", "social_insurance_months", "provident_fund_months",
                "property_status", "car_status", "credit_level")
MAX_AMOUNT = 100_000_000_00  # 1 亿元 in fen

_INCOME_BANDS = ((3_000_00, "lt3k"), (5_000_00, "3k_5k"), (10_000_00, "5k_10k"), (20_000_00, "10k_20k"),
                 (50_000_00, "20k_50k"))


def income_band(fen: int | None) -> str | None:
    if fen is None:
        return None
    return next((code for bound, code in _INCOME_BANDS if fen < bound), "gte50k")


@dataclass(frozen=True)
class Qualification:
    """The whole profile, opened (for matching and risk rules: never shown to a person as is)."""

    values: dict[str, Any]

    def get(self, name: str) -> Any:
        return self.values.get(name)

    @property
    def debt_ratio(self) -> Decimal | None:
        """Monthly debt service over monthly income (a Decimal), when both are known."""
        income, debt = self.get("income_monthly_amount"), self.get("debt_monthly_amount")
        if not income or debt is None:
            return None
        return (Decimal(debt) / Decimal(income)).quantize(Decimal("0.0001"))


def _row(session: Session, customer_id: int) -> CustomerQualification | None:
    return session.get(CustomerQualification, customer_id)


def _open(row: CustomerQualification | None) -> dict[str, Any]:
    if row is None:
        return {}
    values: dict[str, Any] = {name: getattr(row, name) for name in PLAIN_FIELDS}
    if row.sealed:
        values |= json.loads(pii.open_sealed(pii.QUALIFICATION, row.sealed))
    return {k: v for k, v in values.items() if v is not None}


def qualification_of(session: Session, customer_id: int) -> Qualification:
    """The opened profile for a machine (product matching, risk facts); an empty one when none is recorded."""
    return Qualification(_open(_row(session, customer_id)))


def _mask_amount(fen: int) -> str:
    digits = str(fen // 100)
    return digits[0] + "*" * (len(digits) - 1) + " 元" if len(digits) > 1 else "* 元"


def _mask_text(text: str) -> str:
    return text[0] + "*" * min(len(text) - 1, 6) if len(text) > 1 else "*"


def _shown(name: str, value: Any) -> str:
    if name in CODE_FIELDS:
        return CODE_FIELDS[name].get(value, value)
    if name in AMOUNT_FIELDS:
        return money.format_yuan(value)
    return str(value)


def read(session: Session, viewer: Viewer, customer_id: int) -> dict[str, Any]:
    """The profile as a person may see it without a reveal: plain facts shown, personal figures masked.

    ``{"filled": bool, "income_band": label|None, "fields": [{"name", "label", "value", "shown", "masked"}],
    "updated_at": …}``; ``value`` is the raw plain value (None for sealed fields).
    """
    get_customer(session, viewer, customer_id)
    row = _row(session, customer_id)
    opened = _open(row)
    fields = []
    for name, label in FIELD_LABELS.items():
        value = opened.get(name)
        sealed = name in SEALED_FIELDS
        if value is None:
            shown = "—"
        elif not sealed:
            shown = _shown(name, value)
        elif name in AMOUNT_FIELDS:
            shown = _mask_amount(value)
        elif name in TEXT_FIELDS:
            shown = _mask_text(value)
        else:
            shown = "*"
        fields.append({"name": name, "label": label, "value": None if sealed else value, "shown": shown,
                       "masked": sealed and value is not None})
    return {"filled": row is not None, "fields": fields,
            "income_band": INCOME_BAND_LABELS.get(row.income_band) if row and row.income_band else None,
            "updated_at": row.updated_at if row else None}


def reveal(session: Session, viewer: Viewer, customer_id: int, reason: str | None = None) -> dict[str, str]:
    """Every recorded field in full, for a person; the reveal is audit-logged (even when nothing is sealed)."""
    get_customer(session, viewer, customer_id)
    row = _row(session, customer_id)
    values = {k: v for k, v in _open(row).items() if k not in SEALED_FIELDS}
    if row is not None and row.sealed:
        values |= json.loads(audit.reveal(session, pii.QUALIFICATION, row.sealed, entity_type="customer",
                                          entity_id=customer_id, reason=reason or "查看资质明细"))
    else:
        audit.record(session, "pii.reveal", entity_type="customer", entity_id=customer_id,
                     after={"field": pii.QUALIFICATION}, detail=reason or "查看资质明细")
    return {FIELD_LABELS[k]: _shown(k, v) for k, v in sorted(values.items(), key=lambda kv: list(FIELD_LABELS).index(kv[0]))}


def _parse(name: str, raw: Any) -> Any:
    label = FIELD_LABELS[name].split("（")[0]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if name in CODE_FIELDS:
        labels = CODE_FIELDS[name]
        text = str(raw).strip()
        code = text if text in labels else next((k for k, v in labels.items() if v == text), None)
        if code is None:
            raise ValidationFailed(f"{label}只能是：{'、'.join(labels.values())}（收到「{text[:20]}」）", field=name)
        return code
    if name in AMOUNT_FIELDS:
        fen = money.parse_yuan_text(raw, field=name, label=label)
        if fen is not None and fen > MAX_AMOUNT:
            raise ValidationFailed(f"{label}不能超过 1 亿元", field=name)
        return fen
    if name in COUNT_FIELDS:
        if isinstance(raw, bool) or isinstance(raw, float):
            raise ValidationFailed(f"{label}必须是整数", field=name)
        text = str(raw).strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
        if not text.isdigit():
            raise ValidationFailed(f"{label}必须是 0 或正整数（收到「{text[:20]}」）", field=name)
        value = int(text)
        if value > COUNT_FIELDS[name]:
            raise ValidationFailed(f"{label}不能超过 {COUNT_FIELDS[name]}", field=name)
        return value
    if not isinstance(raw, str):
        raise ValidationFailed(f"{label}必须是文字", field=name)
    text = raw.strip()
    if len(text) > TEXT_FIELDS[name]:
        raise ValidationFailed(f"{label}不能超过 {TEXT_FIELDS[name]} 个字", field=name)
    return text


def parse(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an edit (unknown names refused); raises before anything is written."""
    unknown = sorted(set(changes) - set(FIELD_LABELS))
    if unknown:
        raise ValidationFailed(f"未知的资质字段：{'、'.join(unknown)}", field=unknown[0])
    return {name: _parse(name, raw) for name, raw in changes.items()}


def update(session: Session, viewer: Viewer, customer_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply an edit; returns the names that changed (the audit row and timeline name them, never their values)."""
    parsed = parse(changes)
    # the customer row locked: two edits at once apply one after the other (the first one creates the row)
    customer = get_customer(session, viewer, customer_id, for_update=True)
    row = _row(session, customer.id)
    current = _open(row)
    merged = {k: v for k, v in (current | parsed).items() if v is not None}
    changed = sorted(k for k in parsed if current.get(k) != parsed[k])
    if not changed:
        return {"changed": []}
    if row is None:
        row = CustomerQualification(customer_id=customer.id)
        session.add(row)
    for name in PLAIN_FIELDS:
        setattr(row, name, merged.get(name))
    row.income_band = income_band(merged.get("income_monthly_amount"))
    debts = [merged.get("debt_total_amount"), merged.get("debt_monthly_amount")]
    row.has_debt = None if all(d is None for d in debts) else any(d for d in debts)
    secret = {k: merged[k] for k in SEALED_FIELDS if k in merged}
    row.sealed = pii.seal(pii.QUALIFICATION, json.dumps(secret, ensure_ascii=False, sort_keys=True)) if secret else None
    row.updated_at, row.updated_by_staff_id = clock.now(), viewer.staff_id
    session.flush()
    labels = [FIELD_LABELS[k].split("（")[0] for k in changed]
    audit.record(session, "customer.qualification", entity_type="customer", entity_id=customer.id,
                 after={"fields": changed})
    record_event(session, customer.id, "profile.qualification", "更新资质：" + "、".join(labels),
                 actor_staff_id=viewer.staff_id)
    return {"changed": changed}
