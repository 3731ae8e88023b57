"""Rule sets: one per product, saved as immutable versions after every expression is checked.

A rule is ``{"name", "expression", "outcome", "reason"}``; its order is its place in the list.
Outcomes: ``reject`` (拒绝), ``manual_review`` (转人工), ``warn`` (提示). The credit-limit formula
is an expression yielding fen (``min(income_monthly * 12, 200000_00)``). A rule that does not parse,
uses an unknown fact or a call outside the allow-list is refused with a Chinese message naming the
rule and the spot; nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from lending.models import Product, RuleSet, RuleSetVersion
from lending.product_exceptions import InvalidRule, InvalidRuleExpression, ProductNotFound, RuleSetNotFound
from lending.risk.expressions import BOOL, NUM, Expression, compile_expression

__all__ = [
    "OUTCOME_LABELS", "Outcome", "RuleInput", "compile_rules", "current_rule_version", "rule_set_of",
    "rule_versions", "save_rule_set",
]

MAX_RULES = 100


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    WARN = "warn"
    MANUAL_REVIEW = "manual_review"
    REJECT = "reject"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Outcome.PASS: 0, Outcome.WARN: 1, Outcome.MANUAL_REVIEW: 2, Outcome.REJECT: 3}
OUTCOME_LABELS = {"pass": "通过", "warn": "提示", "manual_review": "转人工审核", "reject": "拒绝"}
RULE_OUTCOMES = (Outcome.REJECT, Outcome.MANUAL_REVIEW, Outcome.WARN)


@dataclass(frozen=True)
class RuleInput:
    name: str
    expression: str
    outcome: str
    reason: str


@dataclass(frozen=True)
class CompiledRule:
    order: int
    name: str
    expression: Expression
    outcome: Outcome
    reason: str


def _rule(position: int, rule: RuleInput, seen: set[str]) -> CompiledRule:
    where = f"第 {position} 条规则"
    name = (rule.name or "").strip()
    if not name:
        raise InvalidRule(f"{where}：请填写规则名称", field="name", position=position)
    if len(name) > 40:
        raise InvalidRule(f"{where}：规则名称不能超过 40 个字", field="name", position=position)
    if name in seen:
        raise InvalidRule(f"{where}：规则名称「{name}」重复", field="name", position=position)
    seen.add(name)
    where = f"{where}「{name}」"
    try:
        outcome = Outcome(str(rule.outcome).strip())
    except ValueError:
        outcome = Outcome.PASS
    if outcome not in RULE_OUTCOMES:
        raise InvalidRule(f"{where}：处理结果须是 拒绝、转人工审核 或 提示", field="outcome", position=position)
    reason = (rule.reason or "").strip()
    if not reason:
        raise InvalidRule(f"{where}：请填写命中原因（给审核人员看）", field="reason", position=position)
    if len(reason) > 200:
        raise InvalidRule(f"{where}：命中原因不能超过 200 个字", field="reason", position=position)
    try:
        expression = compile_expression(rule.expression, expect=BOOL, label="条件")
    except InvalidRuleExpression as exc:
        raise InvalidRuleExpression(f"{where}：{exc.message}", field="expression", position=position,
                                    **exc.details) from None
    return CompiledRule(position, name, expression, outcome, reason)


def compile_rules(rules: Sequence[RuleInput | dict[str, Any]]) -> list[CompiledRule]:
    """Check every rule (in order); the first problem is raised with its position and name."""
    if len(rules) > MAX_RULES:
        raise InvalidRule(f"规则最多 {MAX_RULES} 条")
    seen: set[str] = set()
    compiled = []
    for position, rule in enumerate(rules, start=1):
        if isinstance(rule, dict):
            rule = RuleInput(**{k: rule.get(k, "") for k in ("name", "expression", "outcome", "reason")})
        compiled.append(_rule(position, rule, seen))
    return compiled


def compile_limit(source: str | None) -> Expression | None:
    if not source or not source.strip():
        return None
    return compile_expression(source, expect=NUM, label="授信额度公式")


def rule_set_of(session: Session, product_id: int) -> RuleSet | None:
    return session.scalar(select(RuleSet).where(RuleSet.product_id == product_id))


def current_rule_version(session: Session, product_id: int) -> RuleSetVersion | None:
    rule_set = rule_set_of(session, product_id)
    if rule_set is None or rule_set.current_version_id is None:
        return None
    return session.get(RuleSetVersion, rule_set.current_version_id)


def rule_versions(session: Session, rule_set_id: int) -> list[RuleSetVersion]:
    return list(session.scalars(select(RuleSetVersion).where(RuleSetVersion.rule_set_id == rule_set_id)
                                .order_by(RuleSetVersion.version.desc())))


def get_rule_version(session: Session, version_id: int) -> RuleSetVersion:
    version = session.get(RuleSetVersion, version_id)
    if version is None:
        raise RuleSetNotFound("规则集版本不存在")
    return version


def _lock_rule_set(session: Session, product: Product, name: str | None) -> RuleSet:
    query = select(RuleSet).where(RuleSet.product_id == product.id).with_for_update()
    rule_set = session.scalar(query)
    if rule_set is not None:
        return rule_set
    now = clock.now()
    try:
        with session.begin_nested():
            rule_set = RuleSet(product_id=product.id, name=name or f"{product.name}风控规则", created_at=now,
                               updated_at=now)
            session.add(rule_set)
            session.flush()
        return rule_set
    except IntegrityError:  # created by someone else at the same moment: use theirs
        return session.scalars(query).one()


def save_rule_set(session: Session, product_id: int, rules: Sequence[RuleInput | dict[str, Any]], *,
                  credit_limit_expression: str | None = None, name: str | None = None,
                  by_staff_id: int | None = None, note: str | None = None,
                  actor: audit.Actor | None = None) -> RuleSetVersion:
    """Save the product's rules as a new version (version 1 creates the rule set)."""
    product = session.get(Product, product_id)
    if product is None:
        raise ProductNotFound()
    compiled = compile_rules(rules)
    limit = compile_limit(credit_limit_expression)
    rule_set = _lock_rule_set(session, product, (name or "").strip() or None)
    if name and name.strip():
        rule_set.name = name.strip()[:80]
    last = session.scalar(select(func.max(RuleSetVersion.version)).where(RuleSetVersion.rule_set_id == rule_set.id))
    stored = [{"name": r.name, "expression": r.expression.source, "outcome": str(r.outcome), "reason": r.reason}
              for r in compiled]
    version = RuleSetVersion(
        rule_set_id=rule_set.id, version=(last or 0) + 1, rules=stored,
        credit_limit_expression=limit.source if limit else None, note=(note or "").strip()[:300] or None,
        created_by_staff_id=by_staff_id, created_at=clock.now(),
    )
    session.add(version)
    session.flush()
    rule_set.current_version_id = version.id
    rule_set.updated_at = version.created_at
    session.flush()
    audit.record(session, "lending.rules.new_version", entity_type="lending_rule_set", entity_id=rule_set.id,
                 after={"version_id": version.id, "version": version.version, "rules": len(stored),
                        "credit_limit_expression": version.credit_limit_expression}, actor=actor)
    return version


def rules_of(version: RuleSetVersion | None) -> list[RuleInput]:
    return [RuleInput(**r) for r in (version.rules if version else [])]


def rule_dicts(rules: Sequence[RuleInput]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rules]
