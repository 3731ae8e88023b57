"""Customer segments (客户分群): a rule tree, validated, compiled into one SQL statement.

A rule is JSON::

    {"op": "and", "rules": [
        {"field": "tags", "cmp": "has_any", "value": [3, 7]},
        {"field": "grade", "cmp": "in", "value": ["A", "B"]},
        {"op": "or", "rules": [{"field": "region", "cmp": "equals", "value": "上海"},
                               {"field": "demand_amount", "cmp": "gte", "value": "500000"}]}]}

:func:`parse_rule` validates it (pydantic for the shapes, Chinese messages for people, unknown
fields and operators refused) into a :class:`Group`; :func:`condition` compiles that into one
SQLAlchemy boolean over ``customer`` (tags as EXISTS probes of ``customer_tag``, departments as a
subquery over the department tree), always AND'ed with the viewer's data scope. Nothing loops over
customers in Python. A rule that says nothing about ``status`` leaves blacklisted customers out.

Amounts in rules are yuan (strings or integers, never floats), compared in fen. Dates are
Asia/Shanghai business dates; "within N days" and "older than N days" count back from
core.clock.now().
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticError
from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from core import audit, clock, money
from core.errors import ValidationFailed
from crm import customers, segment_profile
from crm.models import (
    CUSTOMER_TYPE_LABELS,
    STAGE_LABELS,
    STATUS_LABELS,
    Customer,
    CustomerStatus,
    CustomerTag,
    Department,
    Grade,
    Role,
    Segment,
    Staff,
)
from crm.scope import Viewer
from crm.tag_exceptions import InvalidRule, SegmentEditDenied, SegmentNameTaken, SegmentNotFound

MAX_DEPTH = 4
MAX_CONDITIONS = 50
MAX_LIST = 500
PREVIEW_PAGE_SIZE = 20


# --- the vocabulary ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldSpec:
    label: str
    kind: str  # tags | codes | text | amount | date | ids
    cmps: dict[str, str]  # operator -> Chinese label


_DATE_CMPS = {"before": "早于（不含当天）", "after": "晚于（不含当天）", "within_days": "最近 N 天内",
              "older_than_days": "早于 N 天前", "is_empty": "为空", "not_empty": "不为空"}

FIELDS: dict[str, FieldSpec] = {
    "tags": FieldSpec("标签", "tags", {"has_any": "含任一", "has_all": "全部含有", "has_none": "都不含"}),
    "grade": FieldSpec("客户等级", "codes", {"in": "属于", "not_in": "不属于"}),
    "stage": FieldSpec("阶段", "codes", {"in": "属于", "not_in": "不属于"}),
    "region": FieldSpec("地区", "text", {"in": "属于", "equals": "等于"}),
    "customer_type": FieldSpec("客户类型", "codes", {"in": "属于"}),
    "source": FieldSpec("来源", "text", {"in": "属于"}),
    "demand_amount": FieldSpec("需求金额（元）", "amount", {"gte": "不低于", "lte": "不高于", "between": "介于"}),
    "created_at": FieldSpec("创建时间", "date", _DATE_CMPS),
    "assigned_at": FieldSpec("分配时间", "date", _DATE_CMPS),
    "last_followup_at": FieldSpec("最近跟进", "date", _DATE_CMPS),
    "next_followup_at": FieldSpec("下次跟进", "date", _DATE_CMPS),
    "owner": FieldSpec("负责人", "ids", {"in": "属于"}),
    "department": FieldSpec("负责人部门（含下级）", "ids", {"in": "属于"}),
    "status": FieldSpec("客户状态", "codes", {"in": "属于"}),
}

ENUMS: dict[str, dict[str, str]] = {"stage": STAGE_LABELS, "customer_type": CUSTOMER_TYPE_LABELS,
                                    "status": STATUS_LABELS}
OPS = {"and": "并且", "or": "或者"}


# --- the validated tree --------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    field: str
    cmp: str
    value: Any  # normalised: list[int] | list[str] | str | int (fen) | tuple[int, int] | date | int (days) | None

    def to_json(self) -> dict[str, Any]:
        value = self.value
        if self.field == "demand_amount":
            value = [_yuan(v) for v in value] if isinstance(value, tuple) else _yuan(value)
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        return {"field": self.field, "cmp": self.cmp, "value": value}


@dataclass(frozen=True)
class Group:
    op: str
    rules: tuple[Condition | Group, ...]

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "rules": [r.to_json() for r in self.rules]}

    def conditions(self) -> list[Condition]:
        out: list[Condition] = []
        for rule in self.rules:
            out.extend(rule.conditions() if isinstance(rule, Group) else [rule])
        return out


def _yuan(fen: int) -> str:
    return str(money.fen_to_yuan(fen))


class _GroupShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: StrictStr
    rules: list[dict[str, Any]]


class _ConditionShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: StrictStr
    cmp: StrictStr
    value: Any = None


_INT_LIST = TypeAdapter(list[StrictInt])
_STR_LIST = TypeAdapter(list[StrictStr])


def parse_rule(raw: Any, session: Session | None = None) -> Group:
    """Validate a rule tree. With a session, tag ids, grade codes, staff and departments must exist."""
    if not isinstance(raw, dict):
        raise InvalidRule("分群规则必须是一个条件组（含 op 与 rules）")
    counter = [0]
    tree = _parse_group(raw, "规则", 1, counter, session)
    if counter[0] == 0:
        raise InvalidRule("请至少添加一个条件")
    if session is not None:
        _check_references(session, tree)
    return tree


def _parse_group(raw: dict[str, Any], where: str, depth: int, counter: list[int],
                 session: Session | None = None) -> Group:
    if depth > MAX_DEPTH:
        raise InvalidRule(f"{where}：条件组最多嵌套 {MAX_DEPTH} 层")
    try:
        shape = _GroupShape.model_validate(raw)
    except PydanticError as exc:
        raise InvalidRule(f"{where}：条件组只能包含 op（and 或 or）和 rules（条件列表）",
                          errors=_locs(exc)) from exc
    if shape.op not in OPS:
        raise InvalidRule(f"{where}：未知的组合方式「{shape.op}」，只能是 and（并且）或 or（或者）")
    if not shape.rules:
        raise InvalidRule(f"{where}：条件组不能为空")
    rules: list[Condition | Group] = []
    for i, node in enumerate(shape.rules, start=1):
        here = f"{where} 第 {i} 项"
        if "op" in node or "rules" in node:
            rules.append(_parse_group(node, here, depth + 1, counter, session))
        else:
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise InvalidRule(f"条件太多：最多 {MAX_CONDITIONS} 个")
            rules.append(_parse_condition(node, here, session))
    return Group(shape.op, tuple(rules))


def _locs(exc: PydanticError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


def _parse_condition(raw: dict[str, Any], where: str, session: Session | None = None) -> Condition:
    try:
        shape = _ConditionShape.model_validate(raw)
    except PydanticError as exc:
        raise InvalidRule(f"{where}：条件只能包含 field（字段）、cmp（比较方式）和 value（值）",
                          errors=_locs(exc)) from exc
    if segment_profile.is_profile_field(shape.field):  # qualification.<name>, custom.<key>
        where = f"{where}（{segment_profile.label_of(shape.field)}）"
        return Condition(shape.field, shape.cmp,
                         segment_profile.parse_value(shape.field, shape.cmp, shape.value, where, session))
    spec = FIELDS.get(shape.field)
    if spec is None:
        raise InvalidRule(f"{where}：未知的字段「{shape.field}」", field=shape.field)
    if shape.cmp not in spec.cmps:
        allowed = "、".join(f"{k}（{v}）" for k, v in spec.cmps.items())
        raise InvalidRule(f"{where}：「{spec.label}」不支持比较方式「{shape.cmp}」，可用：{allowed}",
                          field=shape.field)
    value = _parse_value(shape.field, spec, shape.cmp, shape.value, f"{where}（{spec.label}）")
    return Condition(shape.field, shape.cmp, value)


def _parse_value(name: str, spec: FieldSpec, cmp: str, value: Any, where: str) -> Any:
    if spec.kind in ("tags", "ids"):
        return _int_list(value, where)
    if spec.kind == "codes":
        values = _str_list(value, where)
        if name == "grade":
            values = [v.upper() for v in values]
        labels = ENUMS.get(name)
        if labels is not None:
            unknown = [v for v in values if v not in labels]
            if unknown:
                raise InvalidRule(f"{where}：未知的取值「{'、'.join(unknown)}」，可用：{'、'.join(labels)}")
        return values
    if spec.kind == "text":
        if cmp == "equals":
            if not isinstance(value, str) or not value.strip() or len(value.strip()) > 40:
                raise InvalidRule(f"{where}：请填写一个值（不超过 40 个字）")
            return value.strip()
        return _str_list(value, where)
    if spec.kind == "amount":
        if cmp == "between":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise InvalidRule(f"{where}：「介于」需要两个金额：[最低, 最高]（元）")
            low, high = _amount(value[0], where), _amount(value[1], where)
            if low > high:
                raise InvalidRule(f"{where}：最低金额不能高于最高金额")
            return (low, high)
        return _amount(value, where)
    if spec.kind == "date":
        if cmp in ("is_empty", "not_empty"):
            if value not in (None, "", []):
                raise InvalidRule(f"{where}：「{spec.cmps[cmp]}」不需要填写值")
            return None
        if cmp in ("within_days", "older_than_days"):
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3650:
                raise InvalidRule(f"{where}：天数必须是 1–3650 之间的整数")
            return value
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidRule(f"{where}：日期格式应为 YYYY-MM-DD，如 2026-01-31") from exc
    raise InvalidRule(f"{where}：不支持的字段")  # pragma: no cover - FIELDS and kinds agree


def _int_list(value: Any, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        values = _INT_LIST.validate_python(value)
    except PydanticError as exc:
        raise InvalidRule(f"{where}：值必须是编号（整数）列表") from exc
    return _bounded(sorted(set(values)), where)


def _str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    try:
        values = _STR_LIST.validate_python(value)
    except PydanticError as exc:
        raise InvalidRule(f"{where}：值必须是文字列表") from exc
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if any(len(v) > 40 for v in cleaned):
        raise InvalidRule(f"{where}：单个取值不能超过 40 个字")
    return _bounded(cleaned, where)


def _bounded(values: list[Any], where: str) -> list[Any]:
    if not values:
        raise InvalidRule(f"{where}：请至少填写一个值")
    if len(values) > MAX_LIST:
        raise InvalidRule(f"{where}：最多 {MAX_LIST} 个值")
    return values


def _amount(value: Any, where: str) -> int:
    if isinstance(value, float | bool) or not isinstance(value, int | str | Decimal):
        raise InvalidRule(f"{where}：金额请填写数字（元），如 50000 或 \"50000.00\"")
    text = str(value).strip().replace(",", "")
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", text):
        raise InvalidRule(f"{where}：金额格式不正确：{value}（单位元，最多两位小数，不超过 1 亿）")
    fen = money.yuan_to_fen(text)
    if fen > customers.MAX_DEMAND_AMOUNT:
        raise InvalidRule(f"{where}：金额不能超过 1 亿元")
    return fen


def _check_references(session: Session, tree: Group) -> None:
    from crm.models import Tag

    wanted: dict[str, set[Any]] = {"tags": set(), "grade": set(), "owner": set(), "department": set()}
    for cond in tree.conditions():
        if cond.field in wanted and not segment_profile.is_profile_field(cond.field):
            wanted[cond.field].update(cond.value)
    checks = (("tags", Tag.id, "标签"), ("grade", Grade.code, "客户等级"), ("owner", Staff.id, "负责人"),
              ("department", Department.id, "部门"))
    for name, column, label in checks:
        if wanted[name]:
            found = set(session.scalars(select(column).where(column.in_(sorted(wanted[name])))))
            if name == "tags":
                found = set(session.scalars(select(Tag.id).where(Tag.id.in_(found), Tag.deleted_at.is_(None))))
            missing = sorted(wanted[name] - found, key=str)
            if missing:
                raise InvalidRule(f"{label}不存在：{'、'.join(map(str, missing))}", field=name)


# --- compilation ---------------------------------------------------------------------------------

_DATE_COLUMNS = {"created_at": Customer.created_at, "assigned_at": Customer.assigned_at,
                 "last_followup_at": Customer.last_followup_at, "next_followup_at": Customer.next_followup_at}
_PLAIN_COLUMNS = {"grade": Customer.grade, "stage": Customer.stage, "region": Customer.region,
                  "customer_type": Customer.customer_type, "source": Customer.source, "status": Customer.status,
                  "owner": Customer.owner_id}


def compile_tree(tree: Group) -> ColumnElement[bool]:
    """The rule as one boolean over ``customer`` (no scope, no default status filter)."""
    parts = [compile_tree(r) if isinstance(r, Group) else _compile_condition(r) for r in tree.rules]
    return and_(*parts) if tree.op == "and" else or_(*parts)


def _has_tag(tag_ids: list[int]) -> ColumnElement[bool]:
    return exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id.in_(tag_ids))


def _compile_condition(cond: Condition) -> ColumnElement[bool]:  # noqa: C901 - one branch per operator
    field, cmp, value = cond.field, cond.cmp, cond.value
    if segment_profile.is_profile_field(field):
        return segment_profile.compile_condition(field, cmp, value)
    if field == "tags":
        if cmp == "has_any":
            return _has_tag(value)
        if cmp == "has_all":
            return and_(*[_has_tag([t]) for t in value])
        return not_(_has_tag(value))
    if field == "department":
        root = aliased(Department)
        under = (select(Staff.id).join(Department, Staff.department_id == Department.id)
                 .where(exists().where(root.id.in_(value), Department.path.startswith(root.path))))
        return Customer.owner_id.in_(under)
    if field == "demand_amount":
        column = Customer.demand_amount
        if cmp == "gte":
            return column >= value
        if cmp == "lte":
            return column <= value
        return column.between(value[0], value[1])
    if field in _DATE_COLUMNS:
        column = _DATE_COLUMNS[field]
        if cmp == "is_empty":
            return column.is_(None)
        if cmp == "not_empty":
            return column.is_not(None)
        if cmp == "before":
            return column < clock.start_of_business_day(value)
        if cmp == "after":
            return column >= clock.start_of_business_day(value + timedelta(days=1))
        since = clock.now() - timedelta(days=value)
        return column >= since if cmp == "within_days" else column < since
    column = _PLAIN_COLUMNS[field]
    if cmp == "equals":
        return column == value
    if cmp == "not_in":
        # "not A or B" includes customers with no grade at all: they are not A or B.
        return or_(column.is_(None), column.not_in(value))
    return column.in_(value)


def condition(tree: Group, viewer: Viewer | None = None) -> ColumnElement[bool]:
    """The members of ``tree`` as seen by ``viewer`` (None: the system, everything)."""
    clause = compile_tree(tree)
    if not any(c.field == "status" for c in tree.conditions()):
        clause = and_(clause, Customer.status != CustomerStatus.BLACKLIST)
    if viewer is not None:
        clause = and_(clause, customers.visible_clause(viewer))
    return clause


def count(session: Session, tree: Group, viewer: Viewer | None = None) -> int:
    return session.scalar(select(func.count()).select_from(Customer).where(condition(tree, viewer))) or 0


def members(session: Session, tree: Group, viewer: Viewer | None = None) -> Select[tuple[Customer]]:
    return select(Customer).where(condition(tree, viewer)).order_by(Customer.id.desc())


@dataclass
class Member:
    id: int
    name: str
    phone_masked: str | None
    grade: str | None
    stage: str
    status: str
    region: str | None
    owner_name: str | None
    demand_amount: int | None


@dataclass
class Preview:
    total: int
    members: list[Member]
    page: int
    page_size: int

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total


def preview(session: Session, viewer: Viewer | None, raw_rule: Any, *, page: int = 1,
            page_size: int = PREVIEW_PAGE_SIZE) -> Preview:
    """How many customers the rule selects within the viewer's scope, and one page of them (masked)."""
    tree = parse_rule(raw_rule, session)
    page, page_size = max(1, page), max(1, min(page_size, 200))
    total = count(session, tree, viewer)
    stmt = (members(session, tree, viewer).add_columns(Staff.display_name)
            .outerjoin(Staff, Staff.id == Customer.owner_id)
            .limit(page_size).offset((page - 1) * page_size))
    rows = [Member(c.id, c.name, c.phone_masked, c.grade, c.stage, c.status, c.region, owner, c.demand_amount)
            for c, owner in session.execute(stmt)]
    return Preview(total, rows, page, page_size)


# --- saved segments ------------------------------------------------------------------------------

SEGMENT_EDITORS = frozenset({Role.ADMIN, Role.MANAGER})


def list_segments(session: Session, *, purpose: str | None = None) -> list[Segment]:
    stmt = select(Segment).order_by(Segment.updated_at.desc(), Segment.id.desc())
    if purpose == "mass_message":
        stmt = stmt.where(Segment.for_mass_message.is_(True))
    elif purpose == "group_routing":
        stmt = stmt.where(Segment.for_group_routing.is_(True))
    return list(session.scalars(stmt))


def get_segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise SegmentNotFound()
    return segment


def can_edit(viewer: Viewer, segment: Segment) -> bool:
    return viewer.role in SEGMENT_EDITORS or segment.created_by_staff_id == viewer.staff_id


def _name(name: str | None) -> str:
    value = (name or "").strip()
    if not value:
        raise ValidationFailed("请填写分群名称", field="name")
    if len(value) > 60:
        raise ValidationFailed("分群名称不能超过 60 个字", field="name")
    return value


def _description(text: str | None) -> str | None:
    value = (text or "").strip() or None
    if value and len(value) > 300:
        raise ValidationFailed("说明不能超过 300 个字", field="description")
    return value


def _save(session: Session, segment: Segment, name: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise SegmentNameTaken(f"分群「{name}」已存在") from exc


def create_segment(session: Session, viewer: Viewer | None, name: str, rule: Any, *, description: str | None = None,
                   for_mass_message: bool = False, for_group_routing: bool = False) -> Segment:
    name = _name(name)
    tree = parse_rule(rule, session)
    if session.scalar(select(Segment.id).where(Segment.name == name)):
        raise SegmentNameTaken(f"分群「{name}」已存在")
    now = clock.now()
    segment = Segment(name=name, description=_description(description), rule=tree.to_json(),
                      for_mass_message=for_mass_message, for_group_routing=for_group_routing,
                      created_by_staff_id=viewer.staff_id if viewer else None, created_at=now, updated_at=now)
    session.add(segment)
    _save(session, segment, name)
    audit.record(session, "segment.create", entity_type="segment", entity_id=segment.id,
                 after={"name": name, "rule": _rule_text(segment.rule)})
    return segment


def update_segment(session: Session, viewer: Viewer | None, segment_id: int, *, name: str | None = None,
                   rule: Any = None, description: str | None = None, for_mass_message: bool | None = None,
                   for_group_routing: bool | None = None) -> Segment:
    segment = get_segment(session, segment_id)
    if viewer is not None and not can_edit(viewer, segment):
        raise SegmentEditDenied()
    before = {"name": segment.name, "rule": _rule_text(segment.rule)}
    if name is not None:
        segment.name = _name(name)
        if session.scalar(select(Segment.id).where(Segment.name == segment.name, Segment.id != segment.id)):
            raise SegmentNameTaken(f"分群「{segment.name}」已存在")
    if rule is not None:
        segment.rule = parse_rule(rule, session).to_json()
    if description is not None:
        segment.description = _description(description)
    if for_mass_message is not None:
        segment.for_mass_message = for_mass_message
    if for_group_routing is not None:
        segment.for_group_routing = for_group_routing
    segment.updated_at = clock.now()
    _save(session, segment, segment.name)
    audit.record(session, "segment.update", entity_type="segment", entity_id=segment.id, before=before,
                 after={"name": segment.name, "rule": _rule_text(segment.rule)})
    return segment


def delete_segment(session: Session, viewer: Viewer | None, segment_id: int) -> None:
    segment = get_segment(session, segment_id)
    if viewer is not None and not can_edit(viewer, segment):
        raise SegmentEditDenied()
    session.delete(segment)
    session.flush()
    audit.record(session, "segment.delete", entity_type="segment", entity_id=segment_id,
                 before={"name": segment.name, "rule": _rule_text(segment.rule)})


def _rule_text(rule: dict[str, Any]) -> str:
    return json.dumps(rule, ensure_ascii=False, sort_keys=True)[:480]


def members_query(session: Session, segment: Segment, viewer: Viewer | None = None) -> Select[tuple[Customer]]:
    """The segment's customers now, as one SELECT (for mass messages and group routing).

    With no viewer, the system's view: every customer the rule selects (blacklisted ones left out
    unless the rule names a status). Add ``.with_only_columns(Customer.id)`` for ids only.
    """
    return members(session, parse_rule(segment.rule), viewer)


def member_count(session: Session, segment: Segment, viewer: Viewer | None = None) -> int:
    return count(session, parse_rule(segment.rule), viewer)


__all__ = [
    "FIELDS", "OPS", "Condition", "Group", "Member", "Preview", "condition", "count", "create_segment",
    "delete_segment", "get_segment", "list_segments", "member_count", "members", "members_query", "parse_rule",
    "preview", "update_segment",
]
