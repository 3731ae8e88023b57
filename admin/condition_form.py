"""The condition builder's form fields (template ``_condition_builder.html``, script ``condition_builder.js``).

A builder with prefix ``p`` posts ``p-mode`` (``builder`` or ``advanced``), ``p-join`` and, per row ``r``,
``p-r-field``, ``p-r-op``, ``p-r-value`` (typed text) and ``p-r-choice`` (chosen values, repeatable).
The meaning lives in :mod:`lending.risk.condition_builder`; this module only reads and prepares the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import ValidationFailed
from lending.risk.condition_builder import JOINS, OPERATORS, Built, FieldSet, Row, parse, render

ADVANCED_NOTE = "这个条件超出了条件构建器能表达的范围，已按原样保留，请在高级模式中直接编辑表达式。"


class FormLike(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def getlist(self, key: str) -> list[Any]: ...
    def keys(self) -> Any: ...


@dataclass
class BuilderView:
    """What the template shows: the rows (with blank ones to fill), the mode, the expression underneath."""
    prefix: str
    fields: FieldSet
    built: Built
    advanced: bool
    expression: str
    note: str | None = None

    @property
    def rows(self) -> list[Row]:
        """A new condition gets one row to fill in; more come from 添加条件."""
        return self.built.rows or [Row()]

    @property
    def operators(self) -> dict[str, str]:
        return {key: label for key, (_, label) in OPERATORS.items()}

    @property
    def joins(self) -> dict[str, str]:
        return {key: JOINS[key] for key in self.fields.joins}


def has_builder(form: FormLike, prefix: str) -> bool:
    return form.get(f"{prefix}-mode") is not None


def is_advanced(form: FormLike, prefix: str) -> bool:
    return str(form.get(f"{prefix}-mode") or "") == "advanced"


def built_from_form(form: FormLike, prefix: str) -> Built:
    pattern = re.compile(rf"{re.escape(prefix)}-(\d+)-field")
    indexes = sorted({int(m.group(1)) for key in form.keys() if (m := pattern.fullmatch(str(key)))})
    rows = []
    for i in indexes:
        row = Row(field=str(form.get(f"{prefix}-{i}-field") or "").strip(),
                  op=str(form.get(f"{prefix}-{i}-op") or "").strip(),
                  value=str(form.get(f"{prefix}-{i}-value") or "").strip(),
                  choices=[str(c) for c in form.getlist(f"{prefix}-{i}-choice") if str(c).strip()])
        if row.field or row.value or row.choices:
            rows.append(row)
    return Built(str(form.get(f"{prefix}-join") or "and"), rows)


def expression_from_form(form: FormLike, prefix: str, fields: FieldSet, typed: str) -> str:
    """The expression to save: the builder's rows rendered, or what was typed in advanced mode."""
    if not has_builder(form, prefix) or is_advanced(form, prefix):
        return typed.strip()
    return render(fields, built_from_form(form, prefix))


def view_of(prefix: str, fields: FieldSet, expression: str, *, form: FormLike | None = None) -> BuilderView:
    """The builder for a saved expression, or for what was posted (shown again after a refusal)."""
    if form is not None and has_builder(form, prefix):
        advanced = is_advanced(form, prefix)
        return BuilderView(prefix, fields, built_from_form(form, prefix), advanced, expression)
    built = parse(fields, expression)
    if built is None:
        return BuilderView(prefix, fields, Built(fields.joins[0], []), True, expression, ADVANCED_NOTE)
    return BuilderView(prefix, fields, built, False, expression)


def built_from_post(form: FormLike, prefix: str, fields: FieldSet, typed: str) -> Built:
    """The rows posted, or in advanced mode the typed expression read back into rows: for a store that keeps
    conditions as data (automation rules), an expression beyond the builder is refused, not kept."""
    if not is_advanced(form, prefix):
        return built_from_form(form, prefix)
    built = parse(fields, typed)
    if built is None:
        joins = "、".join(JOINS[j] for j in fields.joins)
        raise ValidationFailed(f"条件表达式无法识别：只能是「字段 比较 值」的条件，用{joins}连接，"
                               f"字段可用：{'、'.join(f.key for f in fields.fields)}", field="conditions")
    return built


def preview(form: FormLike, prefix: str, fields: FieldSet) -> dict[str, str | None]:
    """The expression the builder's rows stand for right now, or why they cannot be read (shown as typed)."""
    try:
        return {"expression": render(fields, built_from_form(form, prefix)), "error": None}
    except ValidationFailed as exc:
        return {"expression": "", "error": exc.message}
