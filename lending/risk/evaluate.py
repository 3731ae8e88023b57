"""Risk evaluation: facts in, rules of the product's current rule-set version run in order, outcome out.

Outcome: the most severe hit — ``reject`` > ``manual_review`` > ``warn`` > ``pass``. Safety rules:

- the credit report is fetched through the configured :class:`CreditProvider`; a timeout, an error or
  a missing ID number adds a ``manual_review`` hit: such a case is NEVER passed automatically;
- a rule that needs a fact nobody knows (say income) cannot clear the case: a reject or
  manual-review rule becomes ``manual_review`` ("缺少资料"), a warn rule stays a warning;
- a rule that fails to evaluate (division by zero, …) becomes ``manual_review``, and so does a
  product with no rule set at all;
- the credit limit (fen, rounded down, never below 0) comes from the version's formula; when it
  cannot be computed, or the amount asked exceeds it, the case goes to manual review.

Every evaluation is stored (:class:`RiskEvaluation`) with the inputs masked: the ID number appears
only as its masked form; the plaintext is opened for the age and the provider call, then dropped.
:func:`dry_run` runs rules on facts typed into the console without storing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock, pii
from core.errors import ValidationFailed
from core.money import format_yuan
from crm.customers import record_event
from crm.models import INCOME_BAND_LABELS, Customer, CustomerStatus
from crm.qualification import income_band, qualification_of
from lending.models import ProductVersion, RiskEvaluation, RuleSetVersion
from lending.person import age_from_id_number
from lending.product_exceptions import ProductVersionNotFound
from lending.risk.credit import CreditFailed, CreditProvider, CreditReport, CreditTimeout, Person, get_credit_provider
from lending.risk.expressions import FACTS, EvaluationError, Expression, MissingFact, evaluate
from lending.risk.facts import FactsProvider, get_facts_provider
from lending.risk.rules import OUTCOME_LABELS, CompiledRule, Outcome, compile_limit, compile_rules, current_rule_version

__all__ = ["Applicant", "Hit", "Result", "dry_run", "evaluate_applicant", "evaluations_of", "run_rules"]


@dataclass(frozen=True)
class Applicant:
    """What the application knows beyond the CRM record (amount and term required)."""

    amount: int  # fen
    term: int  # months
    income_monthly: int | None = None  # fen
    occupation: str | None = None
    debt_ratio: Decimal | None = None


@dataclass(frozen=True)
class Hit:
    name: str
    outcome: str
    reason: str
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "outcome": self.outcome, "reason": self.reason, "detail": self.detail}


@dataclass
class Result:
    outcome: str = Outcome.PASS
    hits: list[Hit] = field(default_factory=list)
    credit_limit: int | None = None

    def add(self, hit: Hit) -> None:
        self.hits.append(hit)
        if Outcome(hit.outcome).severity > Outcome(self.outcome).severity:
            self.outcome = hit.outcome

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]


def _missing_label(name: str) -> str:
    return FACTS[name][1] if name in FACTS else name


def run_rules(rules: Sequence[CompiledRule], limit: Expression | None, facts: Mapping[str, Any],
              functions: Mapping[str, Callable[..., Any]] | None = None) -> Result:
    """Run compiled rules in order on the facts (pure: no database, no provider)."""
    result = Result()
    for rule in rules:
        try:
            fired = evaluate(rule.expression, facts, functions)
        except MissingFact as missing:
            outcome = Outcome.WARN if rule.outcome is Outcome.WARN else Outcome.MANUAL_REVIEW
            result.add(Hit(rule.name, outcome, rule.reason, f"缺少资料：{_missing_label(missing.name)}，无法判断"))
            continue
        except EvaluationError as exc:
            result.add(Hit(rule.name, Outcome.MANUAL_REVIEW, rule.reason, f"无法计算：{exc}"))
            continue
        if fired:
            result.add(Hit(rule.name, rule.outcome, rule.reason))
    if limit is not None:
        try:
            value = evaluate(limit, facts, functions)
            result.credit_limit = max(0, int(Decimal(value).to_integral_value(rounding=ROUND_FLOOR)))
        except MissingFact as missing:
            result.add(Hit("授信额度", Outcome.MANUAL_REVIEW, "无法计算授信额度",
                           f"缺少资料：{_missing_label(missing.name)}"))
        except (EvaluationError, ArithmeticError) as exc:
            result.add(Hit("授信额度", Outcome.MANUAL_REVIEW, "无法计算授信额度", str(exc)))
    amount = facts.get("amount")
    if result.credit_limit is not None and isinstance(amount, int) and amount > result.credit_limit:
        result.add(Hit("授信额度", Outcome.MANUAL_REVIEW, "申请金额超过授信额度",
                       f"申请 {format_yuan(amount)}，额度 {format_yuan(result.credit_limit)}"))
    return result


def dry_run(version: RuleSetVersion | None, facts: Mapping[str, Any], *,
            rules: Sequence[dict[str, Any]] | None = None, credit_limit_expression: str | None = None) -> Result:
    """The console's test evaluation: rules of a version (or unsaved rules) on typed-in facts; nothing stored.

    ``recent_applications(N)`` answers the fact ``recent_applications`` typed in, whatever N.
    """
    compiled = compile_rules(rules if rules is not None else (version.rules if version else []))
    limit = compile_limit(credit_limit_expression if rules is not None
                          else (version.credit_limit_expression if version else None))
    typed = facts.get("recent_applications")
    functions = {"recent_applications": lambda _days: typed if typed is not None else 0}
    return run_rules(compiled, limit, facts, functions)


def _fetch_credit(provider: CreditProvider, person: Person | None) -> tuple[CreditReport | None, str, str | None]:
    if person is None:
        return None, "skipped", "缺少身份证号，未查询征信"
    try:
        return provider.fetch(person), "ok", None
    except CreditTimeout:
        return None, "timeout", "征信查询超时"
    except CreditFailed as exc:
        return None, "error", f"征信查询失败：{str(exc)[:100]}"
    except Exception as exc:  # noqa: BLE001 - any provider fault means manual review, never approval
        return None, "error", f"征信查询异常：{type(exc).__name__}"


def _count_band(count: int) -> str:
    return "0 次" if count == 0 else "1–2 次" if count <= 2 else "3–5 次" if count <= 5 else "6 次及以上"


def _json_safe(facts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in facts.items()}


def evaluate_applicant(session: Session, *, product_version_id: int, customer_id: int, applicant: Applicant,
                       application_id: int | None = None, by_staff_id: int | None = None,
                       credit_provider: CreditProvider | None = None,
                       facts_provider: FactsProvider | None = None) -> RiskEvaluation:
    """Evaluate one customer's application under a product version's current rules; stored and returned.

    The caller has already checked that the acting staff member may see the customer (crm.scope).
    """
    version = session.get(ProductVersion, product_version_id)
    if version is None:
        raise ProductVersionNotFound()
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise ValidationFailed("客户不存在", field="customer_id")
    if applicant.debt_ratio is not None and not isinstance(applicant.debt_ratio, Decimal):
        raise ValidationFailed("负债率须是小数（如 0.45）", field="debt_ratio")
    rule_version = current_rule_version(session, version.product_id)
    compiled = compile_rules(rule_version.rules if rule_version else [])
    limit = compile_limit(rule_version.credit_limit_expression if rule_version else None)

    # The plaintext ID number lives in this block only: age and the provider call.
    person: Person | None = None
    age: int | None = None
    if customer.id_number_enc:
        plain = pii.open_sealed(pii.ID_NUMBER, customer.id_number_enc)
        age = age_from_id_number(plain, clock.today())
        person = Person(customer.name, plain)
        del plain
    provider = credit_provider or get_credit_provider()
    report, status, detail = _fetch_credit(provider, person)
    person = None

    # What the application does not say, the customer's qualification profile may (opened, read, dropped).
    profile = qualification_of(session, customer.id)
    holding = {"none": False, "full": True, "mortgage": True, "loan": True}
    facts: dict[str, Any] = {
        "age": age,
        "income_monthly": applicant.income_monthly if applicant.income_monthly is not None
        else profile.get("income_monthly_amount"),
        "occupation": applicant.occupation or profile.get("employer"),
        "debt_ratio": applicant.debt_ratio if applicant.debt_ratio is not None else profile.debt_ratio,
        "employment_type": profile.get("employment_type"),
        "social_insurance_months": profile.get("social_insurance_months"),
        "provident_fund_months": profile.get("provident_fund_months"),
        "has_property": holding.get(profile.get("property_status")),
        "has_car": holding.get(profile.get("car_status")),
        "credit_level": profile.get("credit_level"),
        "credit_overdue_count": profile.get("credit_overdue_count"),
        "credit_queries_6m": profile.get("credit_queries_6m"),
        "industry": profile.get("industry"),
        "credit_score": report.score if report else None,
        "overdue_count": report.overdue_count if report else None,
        "blacklisted": customer.status == CustomerStatus.BLACKLIST, "region": customer.region,
        "customer_type": customer.customer_type, "amount": applicant.amount, "term": applicant.term,
    }
    asked: dict[str, int] = {}
    facts_source = facts_provider or get_facts_provider()

    def recent_applications(days: int) -> int:
        if str(days) not in asked:
            asked[str(days)] = int(facts_source.recent_applications(
                session, customer.id, int(days), exclude_application_id=application_id))
        return asked[str(days)]

    result = run_rules(compiled, limit, facts, {"recent_applications": recent_applications})
    if rule_version is None:
        result.add(Hit("风控规则", Outcome.MANUAL_REVIEW, "产品尚未配置风控规则，转人工审核"))
    if status != "ok":
        result.add(Hit("征信查询", Outcome.MANUAL_REVIEW, "征信结果不可用，转人工审核", detail))

    inputs = _json_safe(facts) | {
        "customer_id": customer.id, "id_number_masked": customer.id_number_masked,
        "recent_applications": asked,
    }
    # The sealed figures of the profile are not copied in the clear into the stored inputs.
    if applicant.income_monthly is None and facts["income_monthly"] is not None:
        inputs["income_monthly"] = f"资质：{INCOME_BAND_LABELS.get(income_band(facts['income_monthly']) or '', '')}"
    if not applicant.occupation and facts["occupation"]:
        inputs["occupation"] = pii.mask_loose(facts["occupation"])
    for name in ("credit_overdue_count", "credit_queries_6m"):  # sealed in the profile: a band, not the figure
        if facts[name] is not None:
            inputs[name] = f"资质：{_count_band(facts[name])}"
    if report is not None:
        inputs["credit_report"] = {"max_overdue_days": report.max_overdue_days, "open_loans": report.open_loans,
                                   "queries_90d": report.queries_90d}
    row = RiskEvaluation(
        product_version_id=version.id, rule_set_version_id=rule_version.id if rule_version else None,
        customer_id=customer.id, application_id=application_id, inputs=inputs,
        hits=[h.as_dict() for h in result.hits], outcome=str(result.outcome), credit_limit_amount=result.credit_limit,
        provider=getattr(provider, "name", type(provider).__name__)[:40], provider_status=status,
        provider_detail=detail, at=clock.now(), by_staff_id=by_staff_id,
    )
    session.add(row)
    session.flush()
    audit.record(session, "lending.risk.evaluate", entity_type="lending_risk_evaluation", entity_id=row.id,
                 after={"customer_id": customer.id, "outcome": row.outcome, "provider_status": status,
                        "hits": len(result.hits)})
    record_event(session, customer.id, "risk.evaluation",
                 f"风控评估：{OUTCOME_LABELS[row.outcome]}（命中 {len(result.hits)} 条）",
                 actor_staff_id=by_staff_id, ref_type="lending_risk_evaluation", ref_id=row.id)
    return row


def evaluations_of(session: Session, *, customer_id: int | None = None, application_id: int | None = None,
                   product_id: int | None = None, limit: int = 50) -> list[RiskEvaluation]:
    """Stored evaluations, newest first, for a reviewer."""
    query = select(RiskEvaluation).order_by(RiskEvaluation.at.desc(), RiskEvaluation.id.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(RiskEvaluation.customer_id == customer_id)
    if application_id is not None:
        query = query.where(RiskEvaluation.application_id == application_id)
    if product_id is not None:
        query = query.join(ProductVersion, RiskEvaluation.product_version_id == ProductVersion.id).where(
            ProductVersion.product_id == product_id)
    return list(session.scalars(query))
