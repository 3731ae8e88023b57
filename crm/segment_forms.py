"""Segment rules to and from the console's form rows (condition groups of field / operator / text).

The form shows two levels: groups joined by one operator, each a list of conditions joined by the
group's own operator. People type values as text ("高意向、已加微", "A,B", "50000-200000",
"2026-01-31", "30"); this module turns them into rule values (tag names into ids, stage labels
into codes …) with Chinese refusals, and back again for editing. Deeper trees stay editable as JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import segment_profile
from crm.models import Department, Staff, Tag, TagGroup
from crm.segments import ENUMS, FIELDS, OPS, parse_rule
from crm.tag_exceptions import InvalidRule

_SPLIT = re.compile(r"[,，、;；\s]+")
_RANGE = re.compile(r"\s*([0-9][0-9,.]*)\s*(?:-|~|～|至|到|,|，)\s*([0-9][0-9,.]*)\s*")


@dataclass
class FormRow:
    field: str = ""
    cmp: str = ""
    value: str = ""


@dataclass
class FormGroup:
    op: str = "and"
    rows: list[FormRow] = field(default_factory=list)


@dataclass
class FormRule:
    op: str = "and"
    groups: list[FormGroup] = field(default_factory=list)
    fits: bool = True  # False: the rule nests deeper than the form shows (edit it as JSON)


def _tokens(text: str) -> list[str]:
    return [t for t in _SPLIT.split(text.strip()) if t]


def rule_from_form(session: Session, form: FormRule) -> dict[str, Any]:
    """Build a rule from the rows that have a field chosen; refuses with the row's position."""
    if form.op not in OPS:
        raise InvalidRule("请选择条件组之间的组合方式")
    groups = []
    for gi, group in enumerate(form.groups, start=1):
        rules = []
        for ri, row in enumerate(group.rows, start=1):
            if not row.field:
                continue
            where = f"第 {gi} 组第 {ri} 行"
            if segment_profile.is_profile_field(row.field):  # checked in full by parse_rule below
                rules.append({"field": row.field, "cmp": row.cmp,
                              "value": segment_profile.form_value(row.field, row.cmp, row.value)})
                continue
            spec = FIELDS.get(row.field)
            if spec is None:
                raise InvalidRule(f"{where}：未知的字段「{row.field}」")
            if row.cmp not in spec.cmps:
                raise InvalidRule(f"{where}：「{spec.label}」不支持所选的比较方式，可用：{'、'.join(spec.cmps.values())}")
            rules.append({"field": row.field, "cmp": row.cmp,
                          "value": _value(session, row.field, row.cmp, row.value, f"{where}（{spec.label}）")})
        if rules:
            if group.op not in OPS:
                raise InvalidRule(f"第 {gi} 组：请选择组合方式")
            groups.append({"op": group.op, "rules": rules})
    if not groups:
        raise InvalidRule("请至少添加一个条件")
    rule = groups[0] if len(groups) == 1 else {"op": form.op, "rules": groups}
    parse_rule(rule, session)  # the full validation, with the same messages as the API
    return rule


def _value(session: Session, name: str, cmp: str, text: str, where: str) -> Any:  # noqa: C901 - one per kind
    text = (text or "").strip()
    kind = FIELDS[name].kind
    if kind == "date":
        if cmp in ("is_empty", "not_empty"):
            return None
        return text
    if not text:
        raise InvalidRule(f"{where}：请填写值")
    if kind == "amount":
        if cmp == "between":
            match = _RANGE.fullmatch(text)
            if not match:
                raise InvalidRule(f"{where}：请按「最低-最高」填写金额（元），如 50000-200000")
            return [match.group(1), match.group(2)]
        return text
    if name == "region" and cmp == "equals":
        return text
    tokens = _tokens(text)
    if name == "tags":
        return _tag_ids(session, tokens, where)
    if name == "owner":
        return _staff_ids(session, tokens, where)
    if name == "department":
        return _department_ids(session, tokens, where)
    labels = ENUMS.get(name)
    if labels:
        by_label = {label: code for code, label in labels.items()}
        return [by_label.get(t, t) for t in tokens]
    return tokens


def _tag_ids(session: Session, tokens: list[str], where: str) -> list[int]:
    rows = session.execute(select(Tag.id, Tag.name, TagGroup.name).join(TagGroup, TagGroup.id == Tag.group_id)
                           .where(Tag.deleted_at.is_(None))).all()
    ids = []
    for token in tokens:
        if token.isdigit():
            ids.append(int(token))
            continue
        group_name, _, tag_name = token.rpartition("/")
        found = [tid for tid, tname, gname in rows if tname == tag_name and (not group_name or gname == group_name)]
        if not found:
            raise InvalidRule(f"{where}：标签「{token}」不存在")
        if len(found) > 1:
            raise InvalidRule(f"{where}：多个标签组中都有「{token}」，请写成「组名/标签名」")
        ids.append(found[0])
    return ids


def _staff_ids(session: Session, tokens: list[str], where: str) -> list[int]:
    names = [t for t in tokens if not t.isdigit()]
    by_username = dict(session.execute(select(Staff.username, Staff.id).where(Staff.username.in_(names))).all()) \
        if names else {}
    missing = [t for t in names if t not in by_username]
    if missing:
        raise InvalidRule(f"{where}：员工登录名不存在：{'、'.join(missing)}（也可填写员工编号）")
    return [int(t) if t.isdigit() else by_username[t] for t in tokens]


def _department_ids(session: Session, tokens: list[str], where: str) -> list[int]:
    ids = []
    for token in tokens:
        if token.isdigit():
            ids.append(int(token))
            continue
        found = list(session.scalars(select(Department.id).where(Department.name == token)))
        if not found:
            raise InvalidRule(f"{where}：部门「{token}」不存在")
        ids.extend(found)
    return ids


# --- back to rows, for editing -------------------------------------------------------------------

def form_from_rule(session: Session, rule: dict[str, Any] | None, *, blank_rows: int = 2,
                   blank_groups: int = 1) -> FormRule:
    """The rule as form groups and rows, with some blank rows and groups to add conditions in."""
    form = FormRule()
    if rule:
        tree = parse_rule(rule)
        form.op = tree.op
        loose = [r for r in tree.rules if not hasattr(r, "rules")]
        nested = [r for r in tree.rules if hasattr(r, "rules")]
        if loose:  # conditions at the top join the same way as the groups: one more group says the same
            form.groups.append(FormGroup(tree.op, [_row(session, c) for c in loose]))
        for group in nested:
            if any(hasattr(r, "rules") for r in group.rules):
                form.fits = False
                continue
            form.groups.append(FormGroup(group.op, [_row(session, c) for c in group.rules]))
    for group in form.groups:
        group.rows.extend(FormRow() for _ in range(blank_rows))
    for _ in range(blank_groups if form.fits else 0):
        form.groups.append(FormGroup("and", [FormRow() for _ in range(blank_rows + 1)]))
    return form


def _row(session: Session, cond: Any) -> FormRow:
    value = cond.to_json()["value"]
    if cond.field == "tags":
        rows = session.execute(select(Tag.id, Tag.name, TagGroup.name).join(TagGroup, TagGroup.id == Tag.group_id)
                               .where(Tag.id.in_(value))).all()
        counts: dict[str, int] = {}
        for _, tname, _ in session.execute(select(Tag.id, Tag.name, Tag.group_id).where(Tag.deleted_at.is_(None))):
            counts[tname] = counts.get(tname, 0) + 1
        names = {tid: (f"{gname}/{tname}" if counts.get(tname, 0) > 1 else tname) for tid, tname, gname in rows}
        text = "、".join(names.get(t, str(t)) for t in value)
    elif cond.field == "owner":
        usernames = dict(session.execute(select(Staff.id, Staff.username).where(Staff.id.in_(value))).all())
        text = "、".join(usernames.get(i, str(i)) for i in value)
    elif cond.field in ENUMS:
        text = "、".join(ENUMS[cond.field].get(v, v) for v in value)
    elif cond.field == "demand_amount" and isinstance(value, list):
        text = f"{value[0]}-{value[1]}"
    elif isinstance(value, list):
        text = "、".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return FormRow(cond.field, cond.cmp, text)
