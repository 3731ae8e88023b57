"""Custom fields (自定义字段): a manager defines them, everyone fills them in on the customer record.

A definition has a key (ascii, stable: API, exports, segments), a label, a type (text, number, date,
choice), options (choice), whether it is required, the customer types it applies to (none: all), and
whether it is sensitive (text only: the value is sealed, shown masked, revealed with an audit row).

Values are validated against their definition (a number that is not one, a date not in YYYY-MM-DD,
an option not in the list, a required field left empty for a customer it applies to): every error of
an edit is collected into one Chinese message and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import Session

from core import audit, clock, pii
from core.errors import NotFound, PermissionDenied, ValidationFailed
from crm.customers import get_customer, record_event
from crm.models import (
    CUSTOMER_TYPE_LABELS,
    FIELD_TYPE_LABELS,
    Customer,
    CustomField,
    CustomFieldValue,
    Role,
)
from crm.permissions import permission
from crm.scope import Viewer

__all__ = [
    "DEFINERS", "FILTER_CMPS", "applies_to", "create_field", "definitions", "filter_clause", "get_field",
    "parse_definition", "reveal_value", "set_values", "shown_values", "update_field", "values_for_customers",
]

DEFINERS = permission("settings.custom_fields", "自定义字段", "定义客户的自定义字段", {Role.ADMIN, Role.MANAGER})
MAX_FIELDS = 50
MAX_OPTIONS = 50
MAX_TEXT = 200
NUMBER_LIMIT = Decimal("1e15")
_KEY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# comparison -> Chinese label, per type (lists, segments)
FILTER_CMPS: dict[str, dict[str, str]] = {
    "text": {"equals": "等于", "contains": "包含", "is_empty": "为空", "not_empty": "不为空"},
    "choice": {"in": "属于", "is_empty": "为空", "not_empty": "不为空"},
    "number": {"gte": "不低于", "lte": "不高于", "equals": "等于", "is_empty": "为空", "not_empty": "不为空"},
    "date": {"after": "不早于", "before": "不晚于", "is_empty": "为空", "not_empty": "不为空"},
}


class CustomFieldNotFound(NotFound):
    code = "custom_field_not_found"
    message = "自定义字段不存在"


def _require_definer(viewer: Viewer) -> None:
    if viewer.role not in DEFINERS:
        raise PermissionDenied("只有系统管理员和经理可以设置自定义字段")


def definitions(session: Session, *, include_inactive: bool = False) -> list[CustomField]:
    stmt = select(CustomField).order_by(CustomField.position, CustomField.id)
    if not include_inactive:
        stmt = stmt.where(CustomField.active.is_(True))
    return list(session.scalars(stmt))


def get_field(session: Session, field_id: int) -> CustomField:
    field = session.get(CustomField, field_id)
    if field is None:
        raise CustomFieldNotFound()
    return field


def applies_to(field: CustomField, customer_type: str | None) -> bool:
    return not field.customer_types or customer_type in field.customer_types


# --- definitions ---------------------------------------------------------------------------------

def _text(raw: Any, label: str, name: str, limit: int, *, required: bool = True) -> str:
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise ValidationFailed(f"{label}必须是文字", field=name)
    text = raw.strip()
    if required and not text:
        raise ValidationFailed(f"请填写{label}", field=name)
    if len(text) > limit:
        raise ValidationFailed(f"{label}不能超过 {limit} 个字", field=name)
    return text


def _flag(raw: Any, label: str, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw in (None, "", "0", "false", "off"):
        return False
    if raw in ("1", "true", "on"):
        return True
    raise ValidationFailed(f"{label}只能是是或否", field=name)


def _list(raw: Any, label: str, name: str) -> list[str]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        raw = re.split(r"[\n,，、]", raw)
    if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
        raise ValidationFailed(f"{label}必须是文字列表", field=name)
    return list(dict.fromkeys(v.strip() for v in raw if v.strip()))


def parse_definition(data: Mapping[str, Any], *, existing: CustomField | None = None) -> dict[str, Any]:
    """A definition's attributes, validated. The key and type of an existing field never change
    (its stored values were written for them)."""
    out: dict[str, Any] = {}
    if existing is None:
        key = _text(data.get("key"), "字段代码", "key", 40)
        if not _KEY.match(key):
            raise ValidationFailed("字段代码只能用小写英文字母、数字和下划线，以字母开头，2–40 个字符（如 work_years）",
                                   field="key")
        field_type = _text(data.get("field_type"), "字段类型", "field_type", 8)
        if field_type not in FIELD_TYPE_LABELS:
            raise ValidationFailed(f"字段类型只能是：{'、'.join(FIELD_TYPE_LABELS.values())}", field="field_type")
        out |= {"key": key, "field_type": field_type}
    else:
        field_type = existing.field_type
        for name in ("key", "field_type"):
            if name in data and data[name] not in (None, "", getattr(existing, name)):
                raise ValidationFailed("字段代码和类型创建后不能修改（可停用后新建字段）", field=name)
    out["label"] = _text(data.get("label"), "字段名称", "label", 30)
    options = _list(data.get("options"), "选项", "options")
    if field_type == "choice":
        if not options:
            raise ValidationFailed("单选字段请至少填写一个选项", field="options")
        if len(options) > MAX_OPTIONS or any(len(o) > 40 for o in options):
            raise ValidationFailed(f"选项最多 {MAX_OPTIONS} 个，每个不超过 40 个字", field="options")
        if existing is not None and (lost := [o for o in existing.options if o not in options]):
            raise ValidationFailed(f"已有的选项不能删除：{'、'.join(lost)}（可以新增选项）", field="options")
    elif options:
        raise ValidationFailed("只有单选字段可以设置选项", field="options")
    out["options"] = options
    types = _list(data.get("customer_types"), "适用客户类型", "customer_types")
    unknown = [t for t in types if t not in CUSTOMER_TYPE_LABELS]
    if unknown:
        raise ValidationFailed(f"未知的客户类型：{'、'.join(unknown)}", field="customer_types")
    out["customer_types"] = types
    out["required"] = _flag(data.get("required"), "是否必填", "required")
    out["sensitive"] = _flag(data.get("sensitive"), "是否敏感", "sensitive")
    if out["sensitive"] and field_type != "text":
        raise ValidationFailed("只有文本字段可以设为敏感（加密保存、掩码显示）", field="sensitive")
    if existing is not None and out["sensitive"] != existing.sensitive:
        raise ValidationFailed("敏感设置创建后不能修改", field="sensitive")
    out["show_in_list"] = _flag(data.get("show_in_list"), "列表显示", "show_in_list")
    out["active"] = _flag(data.get("active", True if existing is None else existing.active), "启用", "active")
    position = data.get("position")
    if position not in (None, ""):
        if isinstance(position, bool) or not str(position).strip().isdigit() or int(str(position)) > 999:
            raise ValidationFailed("排序必须是 0–999 的整数", field="position")
        out["position"] = int(str(position))
    return out


def create_field(session: Session, viewer: Viewer, data: Mapping[str, Any]) -> CustomField:
    _require_definer(viewer)
    attrs = parse_definition(data)
    taken = session.scalar(select(CustomField.id).where(
        (CustomField.key == attrs["key"]) | (CustomField.label == attrs["label"])))
    if taken:
        raise ValidationFailed("字段代码或名称已被使用", field="key")
    if len(definitions(session, include_inactive=True)) >= MAX_FIELDS:
        raise ValidationFailed(f"自定义字段最多 {MAX_FIELDS} 个", field="key")
    now = clock.now()
    field = CustomField(**attrs, created_at=now, updated_at=now)
    session.add(field)
    session.flush()
    audit.record(session, "crm.custom_field.create", entity_type="crm_custom_field", entity_id=field.id,
                 after={k: v for k, v in attrs.items()})
    return field


def update_field(session: Session, viewer: Viewer, field_id: int, data: Mapping[str, Any]) -> CustomField:
    _require_definer(viewer)
    field = get_field(session, field_id)
    attrs = parse_definition(data, existing=field)
    if session.scalar(select(CustomField.id).where(CustomField.label == attrs["label"], CustomField.id != field.id)):
        raise ValidationFailed("字段名称已被使用", field="label")
    before = {k: getattr(field, k) for k in attrs}
    for k, v in attrs.items():
        setattr(field, k, v)
    field.updated_at = clock.now()
    session.flush()
    audit.record(session, "crm.custom_field.update", entity_type="crm_custom_field", entity_id=field.id,
                 before=before, after=attrs)
    return field


# --- values --------------------------------------------------------------------------------------

def _value(field: CustomField, raw: Any) -> tuple[str | None, Decimal | None, date | None]:
    """(text, number, date) of one raw value; (None, None, None) for empty. Raises with a Chinese message."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, None, None
    if field.field_type == "number":
        if isinstance(raw, bool | float):
            raise ValidationFailed(f"「{field.label}」请填写数字文本（如 \"12.5\"），不接受浮点数", field=field.key)
        text = str(raw).strip().replace(",", "").translate(str.maketrans("０１２３４５６７８９．－", "0123456789.-"))
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or not re.fullmatch(r"-?\d+(\.\d{1,4})?", text):
            raise ValidationFailed(f"「{field.label}」必须是数字（最多 4 位小数），收到「{str(raw)[:20]}」", field=field.key)
        if abs(number) >= NUMBER_LIMIT:
            raise ValidationFailed(f"「{field.label}」数值过大", field=field.key)
        return None, number, None
    if field.field_type == "date":
        if isinstance(raw, date):
            return None, None, raw
        try:
            return None, None, date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValidationFailed(f"「{field.label}」日期格式应为 YYYY-MM-DD（如 2026-01-31），收到「{str(raw)[:20]}」",
                                   field=field.key) from None
    if not isinstance(raw, str):
        raise ValidationFailed(f"「{field.label}」必须是文字", field=field.key)
    text = raw.strip()
    if field.field_type == "choice" and text not in field.options:
        raise ValidationFailed(f"「{field.label}」只能选：{'、'.join(field.options)}（收到「{text[:20]}」）", field=field.key)
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"「{field.label}」不能超过 {MAX_TEXT} 个字", field=field.key)
    return text, None, None


def _stored(session: Session, customer_id: int) -> dict[int, CustomFieldValue]:
    return {v.field_id: v for v in session.scalars(
        select(CustomFieldValue).where(CustomFieldValue.customer_id == customer_id))}


def set_values(session: Session, viewer: Viewer | None, customer_id: int, raw: Mapping[str, Any], *,
               customer_type: str | None = None, actor_staff_id: int | None = None) -> list[str]:
    """Write the values sent (by field key); required fields that apply to the customer must end up filled.

    ``customer_type`` overrides the customer's own (a form that changes both at once). With no viewer
    (the system, or a record its creator just made) no scope applies and ``actor_staff_id`` is the actor.
    Returns the labels of the fields that changed."""
    customer = get_customer(session, viewer, customer_id, for_update=True)  # concurrent edits in turn
    ctype = customer_type or customer.customer_type
    fields = {f.key: f for f in definitions(session)}
    errors: list[tuple[str, str]] = []
    unknown = [k for k in raw if k not in fields]
    if unknown:
        raise ValidationFailed(f"未知的自定义字段：{'、'.join(unknown)}", field=unknown[0])
    parsed: dict[str, tuple[str | None, Decimal | None, date | None]] = {}
    for key, value in raw.items():
        try:
            parsed[key] = _value(fields[key], value)
        except ValidationFailed as exc:
            errors.append((key, exc.message))
    stored = _stored(session, customer.id)
    for key, field in fields.items():
        if not field.required or not applies_to(field, ctype) or key in dict(errors):
            continue
        filled = parsed[key] != (None, None, None) if key in parsed else (
            field.id in stored and stored[field.id].display() is not None)
        if not filled:
            errors.append((key, f"「{field.label}」为必填项"))
    if errors:
        raise ValidationFailed("；".join(message for _, message in errors), field=errors[0][0],
                               errors={key: message for key, message in errors})
    changed: list[str] = []
    now = clock.now()
    staff_id = viewer.staff_id if viewer else actor_staff_id
    for key, (text, number, day) in parsed.items():
        field = fields[key]
        row = stored.get(field.id)
        sealed = None
        if field.sensitive and text is not None:
            if row is not None and row.sealed_value and pii.open_sealed(pii.CUSTOM_FIELD, row.sealed_value) == text:
                continue
            sealed, text = pii.seal(pii.CUSTOM_FIELD, text), pii.mask_loose(text)
        elif row is not None and (row.text_value, row.number_value, row.date_value) == (text, number, day):
            continue
        if (text, number, day) == (None, None, None):
            if row is not None:
                session.delete(row)
                changed.append(field.label)
            continue
        if row is None:
            row = CustomFieldValue(customer_id=customer.id, field_id=field.id)
            session.add(row)
        row.text_value, row.number_value, row.date_value, row.sealed_value = text, number, day, sealed
        row.updated_at, row.updated_by_staff_id = now, staff_id
        changed.append(field.label)
    if changed:
        session.flush()
        audit.record(session, "customer.custom_fields", entity_type="customer", entity_id=customer.id,
                     after={"fields": changed})
        record_event(session, customer.id, "profile.custom_fields", "修改自定义字段：" + "、".join(changed),
                     actor_staff_id=staff_id)
    return changed


def _shown(field: CustomField, row: CustomFieldValue | None) -> str:
    if row is None:
        return ""
    if row.number_value is not None:
        return format(row.number_value.normalize(), "f")
    if row.date_value is not None:
        return row.date_value.isoformat()
    return row.text_value or ""


def shown_values(session: Session, customer: Customer) -> list[dict[str, Any]]:
    """The fields that apply to the customer with their shown value (masked when sensitive)."""
    stored = _stored(session, customer.id)
    return [{"key": f.key, "label": f.label, "field_type": f.field_type, "options": f.options,
             "required": f.required, "sensitive": f.sensitive, "value": _shown(f, stored.get(f.id))}
            for f in definitions(session) if applies_to(f, customer.customer_type)]


def values_for_customers(session: Session, customer_ids: Iterable[int],
                         fields: list[CustomField]) -> dict[int, dict[str, str]]:
    """{customer id: {field key: shown value}} for a page of a list or an export."""
    ids = list(customer_ids)
    by_id = {f.id: f for f in fields}
    if not ids or not by_id:
        return {}
    out: dict[int, dict[str, str]] = {}
    for row in session.scalars(select(CustomFieldValue).where(
            CustomFieldValue.customer_id.in_(ids), CustomFieldValue.field_id.in_(list(by_id)))):
        out.setdefault(row.customer_id, {})[by_id[row.field_id].key] = _shown(by_id[row.field_id], row)
    return out


def reveal_value(session: Session, viewer: Viewer, customer_id: int, key: str) -> str:
    customer = get_customer(session, viewer, customer_id)
    field = session.scalar(select(CustomField).where(CustomField.key == key))
    if field is None:
        raise CustomFieldNotFound()
    row = session.get(CustomFieldValue, (customer.id, field.id))
    if row is None:
        return ""
    if not row.sealed_value:
        return _shown(field, row)
    return audit.reveal(session, pii.CUSTOM_FIELD, row.sealed_value, entity_type="customer", entity_id=customer.id,
                        reason=f"查看自定义字段「{field.label}」")


# --- filtering ------------------------------------------------------------------------------------

def parse_filter(field: CustomField, cmp: str, raw: Any) -> Any:
    """A comparison value for a list filter or a segment condition, validated like a stored value."""
    cmps = FILTER_CMPS[field.field_type]
    if cmp not in cmps:
        raise ValidationFailed(f"「{field.label}」不支持比较方式「{cmp}」，可用：{'、'.join(cmps.values())}",
                               field=field.key)
    if field.sensitive and cmp not in ("is_empty", "not_empty"):
        raise ValidationFailed(f"「{field.label}」是敏感字段，只能按是否为空筛选", field=field.key)
    if cmp in ("is_empty", "not_empty"):
        return None
    if cmp == "in":
        values = raw if isinstance(raw, list) else [raw]
        for v in values:
            _value(field, v)
        if not values:
            raise ValidationFailed(f"「{field.label}」请至少选择一个选项", field=field.key)
        return [str(v).strip() for v in values]
    text, number, day = _value(field, raw)
    value = number if number is not None else day or text
    if value is None:
        raise ValidationFailed(f"「{field.label}」请填写筛选值", field=field.key)
    return value


def filter_clause(field: CustomField, cmp: str, value: Any) -> ColumnElement[bool]:
    """A boolean over ``customer``: the customer's value of the field compares so (EXISTS probe)."""
    v = CustomFieldValue
    base = and_(v.customer_id == Customer.id, v.field_id == field.id)
    if cmp == "is_empty":
        return ~exists().where(base)
    if cmp == "not_empty":
        return exists().where(base)
    column = {"number": v.number_value, "date": v.date_value}.get(field.field_type, v.text_value)
    condition = {
        "equals": column == value, "contains": column.contains(value, autoescape=True), "in": column.in_(value or []),
        "gte": column >= value, "lte": column <= value, "after": column >= value, "before": column <= value,
    }[cmp]
    return exists().where(base, condition)
