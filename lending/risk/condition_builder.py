"""The form condition builder (条件构建器): rows of field / operator / value joined by 并且 or 或者, written
as the rule expression underneath and read back from it.

One module knows the fields a person can pick: their key in the expression, Chinese label and unit —
``fen`` (typed in yuan through :func:`core.money.parse_yuan_text`, written in fen), ``days``, ``count``,
``rate`` (typed in %, written as a ratio: 45 -> ``0.45``), ``choice`` (a list of values with labels; a
yes/no fact is a choice of 是/否) and ``text`` (free text such as a region).

- :func:`render` turns rows into an expression (``amount > 200000_00 and customer_type in ["credit"]``);
  a bad value is refused with a Chinese message naming the row.
- :func:`parse` turns an expression back into rows when the builder can express it (one level of
  comparisons of a field with a literal, all joined by the same ``and`` / ``or``); otherwise it returns
  ``None`` and the expression stays as typed, for advanced editing.

The builder never decides what an expression means: risk rules are still compiled by
:mod:`lending.risk.expressions` when saved, automation conditions still checked by ``crm.automation``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationFailed
from core.money import fen_to_yuan, parse_yuan_text
from crm.automation import FIELD_LABELS as AUTOMATION_FIELD_LABELS
from crm.models import CREDIT_LEVEL_LABELS, CUSTOMER_TYPE_LABELS, EMPLOYMENT_LABELS, INDUSTRY_CHOICES, STAGE_LABELS
from lending.models import BUCKET_LABELS

__all__ = [
    "JOINS", "OPERATORS", "UNITS", "Built", "Field", "FieldSet", "Row", "automation_conditions",
    "automation_fields", "parse", "render", "risk_fields", "warning_fields",
]

UNITS = ("fen", "days", "count", "rate", "choice", "text")
UNIT_SUFFIX = {"fen": "元", "days": "天", "count": "", "rate": "%", "choice": "", "text": ""}
# operator -> (expression spelling, Chinese label)
OPERATORS: dict[str, tuple[str, str]] = {
    "gt": (">", "大于"), "ge": (">=", "不小于"), "lt": ("<", "小于"), "le": ("<=", "不大于"),
    "eq": ("==", "等于"), "ne": ("!=", "不等于"), "in": ("in", "属于"), "not_in": ("not in", "不属于"),
}
NUMBER_OPS = ("gt", "ge", "lt", "le", "eq", "ne", "in", "not_in")
CHOICE_OPS = ("eq", "ne", "in", "not_in")
LIST_OPS = ("in", "not_in")
JOINS = {"and": "并且", "or": "或者"}
_AST_OPS = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq", ast.NotEq: "ne",
            ast.In: "in", ast.NotIn: "not_in"}
_SPLIT = re.compile(r"[,，、;；]+")
_SPLIT_NUMBERS = re.compile(r"[，、;；]+")  # an ASCII comma in a number groups thousands: 1,200,000元
_MAX_NUMBER = 10**12
TRUE, FALSE = "true", "false"
YES_NO = ((TRUE, "是"), (FALSE, "否"))


@dataclass(frozen=True)
class Field:
    key: str  # as written in the expression: a fact name, or a call such as recent_applications(30)
    label: str
    unit: str
    choices: tuple[tuple[str, str], ...] = ()  # (value, Chinese label) for unit "choice"
    ops: tuple[str, ...] = ()  # empty: every operator of the unit

    @property
    def operators(self) -> tuple[str, ...]:
        return self.ops or (CHOICE_OPS if self.unit in ("choice", "text") else NUMBER_OPS)

    @property
    def is_bool(self) -> bool:
        return self.unit == "choice" and self.choices == YES_NO


@dataclass(frozen=True)
class FieldSet:
    fields: tuple[Field, ...]
    joins: tuple[str, ...] = ("and", "or")

    def get(self, key: str) -> Field | None:
        return next((f for f in self.fields if f.key == key), None)

    def for_browser(self) -> dict[str, Any]:
        """What the builder's script needs: each field's unit, operators and choices."""
        return {f.key: {"unit": f.unit, "suffix": UNIT_SUFFIX[f.unit], "ops": list(f.operators),
                        "choices": [list(c) for c in f.choices]} for f in self.fields}


@dataclass
class Row:
    field: str = ""
    op: str = ""
    value: str = ""  # as a person types it: yuan, days, a count, a percent, free text
    choices: list[str] = dc_field(default_factory=list)  # for a choice field: the chosen values

    @property
    def blank(self) -> bool:
        return not self.field and not self.value.strip() and not self.choices


@dataclass
class Built:
    join: str = "and"
    rows: list[Row] = dc_field(default_factory=list)


# --- the fields ------------------------------------------------------------------------------------


def _choices(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(labels.items())


def risk_fields() -> FieldSet:
    """The applicant facts of lending.risk.expressions.FACTS a person can pick, with units."""
    return FieldSet((
        Field("amount", "申请金额", "fen"),
        Field("income_monthly", "月收入", "fen"),
        Field("age", "年龄（周岁）", "count"),
        Field("term", "申请期限（月）", "count"),
        Field("credit_score", "征信评分", "count"),
        Field("overdue_count", "征信逾期次数", "count"),
        Field("debt_ratio", "负债率", "rate"),
        Field("social_insurance_months", "社保缴纳月数", "count"),
        Field("provident_fund_months", "公积金缴纳月数", "count"),
        Field("credit_overdue_count", "近两年逾期次数（资质）", "count"),
        Field("credit_queries_6m", "近半年征信查询次数（资质）", "count"),
        Field("recent_applications(30)", "近 30 天其他申请数", "count"),
        Field("recent_applications(90)", "近 90 天其他申请数", "count"),
        Field("customer_type", "客户类型", "choice", _choices(CUSTOMER_TYPE_LABELS)),
        Field("employment_type", "职业身份", "choice", _choices(EMPLOYMENT_LABELS)),
        Field("credit_level", "征信情况", "choice", _choices(CREDIT_LEVEL_LABELS)),
        Field("industry", "所属行业", "choice", tuple((name, name) for name in INDUSTRY_CHOICES)),
        Field("blacklisted", "是否黑名单", "choice", YES_NO, ("eq",)),
        Field("has_property", "是否有房产", "choice", YES_NO, ("eq",)),
        Field("has_car", "是否有车辆", "choice", YES_NO, ("eq",)),
        Field("region", "地区", "text"),
        Field("occupation", "职业", "text"),
    ))


def warning_fields() -> FieldSet:
    """Post-loan early-warning facts (贷后预警, postloan.rerating.FACTS; postloan imports lending, not the
    other way round, so the keys are repeated here and a test holds them equal)."""
    buckets = tuple((code, label) for code, label in BUCKET_LABELS.items() if code != "C")
    return FieldSet((
        Field("overdue_days", "逾期天数", "days"),
        Field("bucket", "账期", "choice", buckets),
        Field("overdue_amount", "逾期金额", "fen"),
        Field("outstanding_amount", "未还合计", "fen"),
        Field("broken_promises", "违约的承诺次数", "count"),
        Field("kept_promises", "兑现的承诺次数", "count"),
        Field("repaid_30d_amount", "近 30 天还款金额", "fen"),
        Field("days_since_repayment", "距上次还款天数", "days"),
        Field("external_overdue_count", "征信逾期记录数", "count"),
        Field("external_overdue_new", "新增征信逾期记录数", "count"),
    ))


def automation_fields(grades: Iterable[tuple[str, str]]) -> FieldSet:
    """Automation conditions (crm.automation): all must hold, each 等于 / 不等于 / 属于 a value."""
    ops = ("eq", "ne", "in")
    labels = AUTOMATION_FIELD_LABELS
    return FieldSet((
        Field("grade", labels["grade"], "choice", tuple(grades), ops),
        Field("stage", labels["stage"], "choice", _choices(STAGE_LABELS), ops),
        Field("customer_type", labels["customer_type"], "choice", _choices(CUSTOMER_TYPE_LABELS), ops),
        Field("source", labels["source"], "text", (), ops),  # free text: codes and typed labels (crm.sources)
        Field("region", labels["region"], "text", (), ops),
    ), joins=("and",))


# --- rows -> expression ----------------------------------------------------------------------------


def _fail(position: int, message: str) -> ValidationFailed:
    return ValidationFailed(f"第 {position} 个条件：{message}", field="conditions", position=position)


def _number(text: str, what: str, position: int, *, decimal: bool = False) -> Decimal:
    cleaned = text.strip().rstrip("%％天个次月岁").strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise _fail(position, f"{what}须是数字：{text.strip()[:20]}") from None
    if not value.is_finite() or value < 0 or value > _MAX_NUMBER:
        raise _fail(position, f"{what}须是不小于 0 的数字：{text.strip()[:20]}")
    if not decimal and value != value.to_integral_value():
        raise _fail(position, f"{what}须是整数：{text.strip()[:20]}")
    return value


def _literal(fld: Field, text: str, position: int) -> str:
    """One typed value as an expression literal, in the unit of the expression."""
    if fld.unit == "fen":
        fen = parse_yuan_text(text, label=f"第 {position} 个条件「{fld.label}」", field="conditions")
        if fen is None:
            raise _fail(position, f"请填写「{fld.label}」的金额（元）")
        return f"{fen // 100}_{fen % 100:02d}"
    if fld.unit == "rate":
        ratio = _number(text, fld.label, position, decimal=True) / 100
        return _plain(ratio) if "." in _plain(ratio) else f"{_plain(ratio)}.0"
    if fld.unit in ("days", "count"):
        return str(int(_number(text, fld.label, position)))
    return _quote(text.strip())


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _values(fld: Field, row: Row, position: int) -> list[str]:
    if fld.unit == "choice":
        allowed = dict(fld.choices)
        chosen = [c for c in row.choices if c]
        bad = [c for c in chosen if c not in allowed]
        if bad:
            raise _fail(position, f"「{fld.label}」没有这个选项：{'、'.join(bad)[:40]}")
        return chosen
    splitter = _SPLIT if fld.unit == "text" else _SPLIT_NUMBERS
    return [v.strip() for v in splitter.split(row.value) if v.strip()]


def render_row(fields: FieldSet, row: Row, position: int) -> str:
    fld = fields.get(row.field)
    if fld is None:
        raise _fail(position, "请选择字段")
    if row.op not in fld.operators:
        allowed = "、".join(OPERATORS[o][1] for o in fld.operators)
        raise _fail(position, f"「{fld.label}」可用的比较：{allowed}")
    values = _values(fld, row, position)
    if not values:
        raise _fail(position, f"请填写或选择「{fld.label}」的值")
    if row.op in LIST_OPS:
        items = ", ".join(_literal(fld, v, position) for v in values)
        return f"{fld.key} {OPERATORS[row.op][0]} [{items}]"
    if len(values) > 1:
        raise _fail(position, f"「{OPERATORS[row.op][1]}」只能填一个值；多个值请用「属于」")
    if fld.is_bool:
        return fld.key if (values[0] == TRUE) == (row.op == "eq") else f"not {fld.key}"
    return f"{fld.key} {OPERATORS[row.op][0]} {_literal(fld, values[0], position)}"


def render(fields: FieldSet, built: Built) -> str:
    """The expression the rows stand for; blank rows skipped; "" when there is none."""
    if built.join not in fields.joins:
        raise ValidationFailed("条件之间只能用" + "、".join(JOINS[j] for j in fields.joins), field="conditions")
    parts = [render_row(fields, row, position) for position, row in enumerate(built.rows, start=1) if not row.blank]
    return f" {built.join} ".join(parts)


# --- expression -> rows ----------------------------------------------------------------------------


def _key(node: ast.expr) -> str:
    return ast.unparse(node)


def _shown(fld: Field, node: ast.expr, source: str) -> str | None:
    """A literal as the builder shows it (fen as yuan, a ratio as %), None if not a literal of the unit."""
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
        return None
    value = node.value
    if fld.unit in ("choice", "text"):
        if not isinstance(value, str) or (fld.unit == "choice" and value not in dict(fld.choices)):
            return None
        if fld.unit == "text" and (not value.strip() or _SPLIT.search(value)):  # would not read back as one value
            return None
        return value
    if not isinstance(value, int | float):
        return None
    if fld.unit == "rate":
        return _plain(Decimal(ast.get_source_segment(source, node) or str(value)) * 100)
    if not isinstance(value, int) or value < 0:
        return None
    if fld.unit == "fen":
        return _plain(fen_to_yuan(value))
    return str(value)


def _parse_compare(fields: FieldSet, node: ast.expr, source: str) -> Row | None:  # noqa: PLR0911
    if isinstance(node, ast.Name | ast.UnaryOp):  # a yes/no fact: blacklisted / not blacklisted
        negated = isinstance(node, ast.UnaryOp)
        if negated and not isinstance(node.op, ast.Not):  # type: ignore[union-attr]
            return None
        target = node.operand if negated else node  # type: ignore[union-attr]
        fld = fields.get(_key(target)) if isinstance(target, ast.Name) else None
        if fld is None or not fld.is_bool:
            return None
        return Row(fld.key, "eq", "", [FALSE if negated else TRUE])
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        return None
    fld = fields.get(_key(node.left))
    op = _AST_OPS.get(type(node.ops[0]))
    if fld is None or op is None or op not in fld.operators:
        return None
    right = node.comparators[0]
    if op in LIST_OPS:
        if not isinstance(right, ast.List | ast.Tuple | ast.Set) or not right.elts:
            return None
        items = [_shown(fld, item, source) for item in right.elts]
    elif fld.is_bool:
        if not (isinstance(right, ast.Constant) and isinstance(right.value, bool)):
            return None
        return Row(fld.key, "eq", "", [TRUE if right.value == (op == "eq") else FALSE])
    else:
        items = [_shown(fld, right, source)]
    if any(item is None for item in items):
        return None
    shown = [item for item in items if item is not None]
    if fld.unit == "choice":
        return Row(fld.key, op, "", shown)
    return Row(fld.key, op, "、".join(shown))


def parse(fields: FieldSet, expression: str | None) -> Built | None:
    """The rows an expression stands for, or None when the builder cannot show it (keep it as typed)."""
    text = (expression or "").strip()
    if not text:
        return Built(fields.joins[0], [])
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    join, nodes = fields.joins[0], [tree]
    if isinstance(tree, ast.BoolOp):
        join, nodes = ("and" if isinstance(tree.op, ast.And) else "or"), tree.values
        if join not in fields.joins:
            return None
    rows = [_parse_compare(fields, node, text) for node in nodes]
    if any(row is None for row in rows):
        return None
    return Built(join, [row for row in rows if row is not None])


# --- automation conditions (crm.automation stores them as data, not text) -----------------------


def automation_conditions(fields: FieldSet, built: Built) -> list[dict[str, Any]]:
    """Rows as crm.automation conditions ({field, op, value}); render() first, for its checks and messages."""
    render(fields, built)
    out = []
    for position, row in enumerate((r for r in built.rows if not r.blank), start=1):
        fld = fields.get(row.field)
        assert fld is not None  # checked by render  # noqa: S101
        values = _values(fld, row, position)
        out.append({"field": row.field, "op": row.op, "value": values if row.op == "in" else values[0]})
    return out

