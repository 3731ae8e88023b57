"""Risk rules (风控规则) in the console: the rule set of each product, its versions, the editor (a save
is a new version; expressions checked by lending.risk), a test evaluation on typed-in facts (nothing
stored), and the stored evaluations for the reviewer (inputs masked)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import nav
from admin.condition_form import built_from_form, expression_from_form, preview, view_of
from admin.console.lending_products import Form, FormLike, form_text, shown_yuan
from admin.deps import ConsoleUser, CsrfChecked, attempt, render, require_roles
from core.errors import AppError, ValidationFailed
from core.money import yuan_to_fen
from core.web import SessionDep
from crm.models import CREDIT_LEVEL_LABELS, CUSTOMER_TYPE_LABELS, EMPLOYMENT_LABELS, INDUSTRY_CHOICES
from lending import products
from lending.models import RuleSetVersion
from lending.risk import rules as rule_sets
from lending.risk.condition_builder import risk_fields
from lending.risk.evaluate import Result, dry_run, evaluations_of
from lending.risk.expressions import FACTS, FUNCTIONS

router = APIRouter(prefix="/console/lending/risk", include_in_schema=False)

RISK_STAFF = nav.LENDING_PRODUCT_STAFF
RiskUser = Annotated[ConsoleUser, Depends(require_roles(RISK_STAFF))]
BLANK_ROWS = 2
RISK_FIELDS = risk_fields()
NOTICES = {"saved": "规则已保存为新版本"}


def rules_from_form(form: FormLike) -> list[dict[str, str]]:
    """Rule rows in their order (the 顺序 column, then the row order); blank rows skipped. A rule edited with
    the condition builder (its ``rule_key`` names the builder) gets the expression its rows stand for; a
    builder value that cannot be read is refused (ValidationFailed naming the rule)."""
    names, expressions = form.getlist("rule_name"), form.getlist("rule_expression")
    outcomes, reasons, orders = form.getlist("rule_outcome"), form.getlist("rule_reason"), form.getlist("rule_order")
    keys = form.getlist("rule_key")
    rows = []
    for i, name in enumerate(names):
        key = str(_at(keys, i)).strip()
        row = {"name": str(name).strip(), "expression": str(_at(expressions, i)).strip(),
               "outcome": str(_at(outcomes, i)).strip(), "reason": str(_at(reasons, i)).strip(), "key": key}
        if key:
            try:
                row["expression"] = expression_from_form(form, _prefix(key), RISK_FIELDS, row["expression"])
            except ValidationFailed as exc:
                shown = f"「{row['name']}」" if row["name"] else ""
                raise ValidationFailed(f"规则{shown}：{exc.message}", field="expression") from None
        if not (row["name"] or row["expression"] or row["reason"]):
            continue
        order_text = str(_at(orders, i)).strip()
        order = int(order_text) if order_text.lstrip("-").isdigit() else 10_000 + i
        rows.append((order, i, row))
    return [row for _, _, row in sorted(rows, key=lambda item: (item[0], item[1]))]


def _prefix(key: str) -> str:
    return f"cb{key}"


def _at(values: list[Any], index: int) -> Any:
    return values[index] if index < len(values) else ""


def facts_from_form(form: FormLike) -> dict[str, Any]:
    """Typed-in facts for a test evaluation: money in yuan, ratios as decimals, blanks unknown."""
    facts: dict[str, Any] = {}
    for name in ("age", "credit_score", "overdue_count", "term", "recent_applications", "social_insurance_months",
                 "provident_fund_months", "credit_overdue_count", "credit_queries_6m"):
        text = form_text(form, f"fact_{name}")
        if text:
            if not text.lstrip("-").isdigit():
                raise ValidationFailed(f"{FACTS.get(name, (None, '近期申请数'))[1]}须是整数：{text}", field=name)
            facts[name] = int(text)
    for name in ("income_monthly", "amount"):
        text = form_text(form, f"fact_{name}")
        if text:
            try:
                facts[name] = yuan_to_fen(text)
            except (AppError, TypeError):
                raise ValidationFailed(f"{FACTS[name][1]}格式不正确：{text}", field=name) from None
    text = form_text(form, "fact_debt_ratio")
    if text:
        try:
            facts["debt_ratio"] = Decimal(text)
        except InvalidOperation:
            raise ValidationFailed(f"负债率格式不正确：{text}（如 0.45）", field="debt_ratio") from None
    for name in ("occupation", "region", "customer_type", "employment_type", "credit_level", "industry"):
        if form_text(form, f"fact_{name}"):
            facts[name] = form_text(form, f"fact_{name}")
    for name in ("blacklisted", "has_property", "has_car"):
        facts[name] = form_text(form, f"fact_{name}") == "1"
    return facts


@router.get("")
def rule_set_list(request: Request, session: SessionDep, user: RiskUser) -> Response:
    rows = []
    for product, _version in products.list_products(session):
        current = rule_sets.current_rule_version(session, product.id)
        rows.append({"product": product, "current": current})
    return render(request, "lending/risk_list.html", {"rows": rows})


def _page(request: Request, session: SessionDep, product_id: int, *, rows: list[dict[str, str]] | None = None,
          limit: str | None = None, error: AppError | None = None, result: Result | None = None,
          facts: dict[str, str] | None = None, form: FormLike | None = None, status_code: int = 200) -> Response:
    product = products.get_product(session, product_id)
    rule_set = rule_sets.rule_set_of(session, product.id)
    versions = rule_sets.rule_versions(session, rule_set.id) if rule_set else []
    current = next((v for v in versions if rule_set and v.id == rule_set.current_version_id), None)
    shown = rows if rows is not None else list(current.rules if current else [])
    shown = shown + [{"name": "", "expression": "", "outcome": "reject", "reason": ""}] * BLANK_ROWS
    keyed, used = [], {str(row.get("key")) for row in shown if row.get("key")}
    for i, row in enumerate(shown):
        key = str(row.get("key") or next(f"n{n}" for n in range(i, i + len(shown) + 1) if f"n{n}" not in used))
        used.add(key)
        keyed.append({**row, "key": key, "builder": view_of(_prefix(key), RISK_FIELDS, row["expression"],
                                                            form=form if row.get("key") else None)})
    return render(request, "lending/risk.html", {
        "product": product, "rule_set": rule_set, "versions": versions, "current": current,
        "rows": keyed,
        "limit": limit if limit is not None else (current.credit_limit_expression if current else "") or "",
        "facts_help": FACTS, "functions_help": FUNCTIONS, "outcome_labels": rule_sets.OUTCOME_LABELS,
        "customer_type_labels": CUSTOMER_TYPE_LABELS, "employment_labels": EMPLOYMENT_LABELS,
        "credit_level_labels": CREDIT_LEVEL_LABELS, "industries": INDUSTRY_CHOICES, "error": error, "result": result, "facts": facts or {},
        "evaluations": evaluations_of(session, product_id=product.id, limit=20), "yuan": shown_yuan,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("/condition-preview")
def condition_preview(request: Request, user: RiskUser, prefix: str = "") -> Response:
    """The builder's rows as the expression they write (htmx, while the form is filled in); nothing stored."""
    return render(request, "_condition_preview.html", preview(request.query_params, prefix, RISK_FIELDS))


@router.get("/{product_id}")
def rule_set_page(request: Request, session: SessionDep, user: RiskUser, product_id: int) -> Response:
    return _page(request, session, product_id)


@router.post("/{product_id}", dependencies=[CsrfChecked])
def save_rules(request: Request, session: SessionDep, user: RiskUser, product_id: int, form: Form) -> Response:
    limit = form_text(form, "credit_limit_expression")
    try:
        rows = rules_from_form(form)
    except ValidationFailed as exc:
        return _page(request, session, product_id, rows=_typed_rows(form), limit=limit, error=exc, form=form,
                     status_code=exc.status)

    def action() -> RuleSetVersion:
        return rule_sets.save_rule_set(session, product_id, rows, credit_limit_expression=limit or None,
                                       by_staff_id=user.viewer.staff_id, note=form_text(form, "note") or None)

    _, error = attempt(session, action)
    if error is not None:
        return _page(request, session, product_id, rows=rows, limit=limit, error=error, form=form,
                     status_code=error.status)
    return RedirectResponse(f"/console/lending/risk/{product_id}?done=saved", status_code=303)


@router.post("/{product_id}/test", dependencies=[CsrfChecked])
def test_rules(request: Request, session: SessionDep, user: RiskUser, product_id: int, form: Form) -> Response:
    """Run the rules on the form (saved or not) against typed-in facts; nothing is stored."""
    limit = form_text(form, "credit_limit_expression")
    typed = {k[5:]: str(v) for k, v in form.items() if k.startswith("fact_")}
    rows = _typed_rows(form)
    try:
        rows = rules_from_form(form)
        result = dry_run(None, facts_from_form(form), rules=rows, credit_limit_expression=limit or None)
    except AppError as exc:
        return _page(request, session, product_id, rows=rows, limit=limit, error=exc, facts=typed, form=form,
                     status_code=exc.status)
    return _page(request, session, product_id, rows=rows, limit=limit, result=result, facts=typed, form=form)


def _typed_rows(form: FormLike) -> list[dict[str, str]]:
    """The rules as posted (before the builder's rows are read), to show the form again after a refusal."""
    keys, expressions = form.getlist("rule_key"), form.getlist("rule_expression")
    outcomes, reasons = form.getlist("rule_outcome"), form.getlist("rule_reason")
    rows = []
    for i, name in enumerate(form.getlist("rule_name")):
        key = str(_at(keys, i)).strip()
        row = {"name": str(name).strip(), "expression": str(_at(expressions, i)).strip(),
               "outcome": str(_at(outcomes, i)).strip(), "reason": str(_at(reasons, i)).strip(), "key": key}
        if row["name"] or row["expression"] or row["reason"] or (key and built_from_form(form, _prefix(key)).rows):
            rows.append(row)
    return rows
