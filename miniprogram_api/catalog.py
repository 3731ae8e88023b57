"""Products and the repayment calculator, through the lending schedule engine.

With a product: ``lending.products.quote`` on its current version (amount range, allowed terms, the
cost cap). Without: the engine directly with the request's rate and method (a what-if; the result says
whether it is above the comprehensive annualised cost cap). Amounts leave as yuan strings.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core import clock
from core.money import fen_to_yuan
from crm import customers
from lending import products
from lending.matching import Demand, Match, match_products, profile_of
from lending.schedule.apr import annualised_cost, percent
from lending.schedule.cap import apr_cap
from lending.schedule.engine import Schedule, build_schedule
from lending.schedule.terms import LoanTerms, RepaymentMethod
from miniprogram_api.exceptions import MpValidation


def yuan(fen: int) -> str:
    return str(fen_to_yuan(int(fen)))


METHOD_LABELS = {m.value: m.label for m in RepaymentMethod}


def product_list(session: Session) -> list[dict[str, Any]]:
    out = []
    for product, version in products.list_products(session, active_only=True):
        if version is None:
            continue
        out.append({
            "id": product.id, "code": product.code, "name": product.name, "funder": product.funder.name,
            "min_amount": yuan(version.min_amount), "max_amount": yuan(version.max_amount),
            "terms_months": list(version.terms_months), "repayment_method": version.repayment_method,
            "repayment_method_label": METHOD_LABELS.get(version.repayment_method, version.repayment_method),
            "annual_rate_percent": percent(Decimal(version.annual_rate)) + "%",
        })
    return out


def _schedule_dict(schedule: Schedule, apr: Decimal) -> dict[str, Any]:
    totals = schedule.totals
    first = next((r.total for r in schedule.periods if r.total), 0)
    return {
        "amount": yuan(schedule.terms.principal), "term_months": schedule.terms.periods,
        "repayment_method": schedule.terms.method.value,
        "repayment_method_label": METHOD_LABELS.get(schedule.terms.method.value, schedule.terms.method.value),
        "apr_percent": percent(apr) + "%", "first_payment": yuan(first), "received": yuan(schedule.received),
        "total_interest": yuan(totals.interest), "total_fee": yuan(totals.fee), "total_repayment": yuan(totals.total),
        "periods": [{"number": r.number, "due_date": r.due_date.isoformat(), "principal": yuan(r.principal),
                     "interest": yuan(r.interest), "fee": yuan(r.fee), "total": yuan(r.total),
                     "balance": yuan(r.balance)} for r in schedule.periods],
    }


def calculate(session: Session, *, amount: int, term_months: int, product_id: int | None = None,
              annual_rate: Decimal | None = None, method: str | None = None,
              start_date: date | None = None) -> dict[str, Any]:
    start = start_date or clock.today()
    if product_id is not None:
        version = products.current_version(session, product_id)
        q = products.quote(version, amount, term_months, start)
        out = _schedule_dict(q.schedule, q.apr)
        out.update(product_id=product_id, version_id=version.id, above_cap=False)
        return out
    if annual_rate is None or method is None:
        raise MpValidation("请选择产品，或填写年利率和还款方式", field="product_id")
    schedule = build_schedule(LoanTerms(principal=amount, annual_rate=annual_rate, periods=term_months,
                                        method=method, start_date=start))
    apr = annualised_cost(schedule)
    out = _schedule_dict(schedule, apr)
    out.update(product_id=None, version_id=None, above_cap=apr > apr_cap())
    return out


def match(session: Session, customer_id: int, *, amount: int, term_months: int,
          income_amount: int | None = None) -> dict[str, Any]:
    """Products that fit the customer's demand and profile, ranked; the others with their reasons."""
    customer = customers.get_customer(session, None, customer_id)
    result = match_products(session, Demand(amount, term_months, customer.customer_type),
                            profile_of(customer, income_monthly=income_amount))
    def shown(m: Match) -> dict[str, Any]:
        return {"product_id": m.product.id, "name": m.product.name, "funder": m.funder.name,
                "monthly_payment": yuan(m.monthly_payment), "apr_percent": m.quote.apr_percent + "%",
                "notes": list(m.notes), "missing": list(m.missing)}

    return {
        "matches": [shown(m) for m in result.matches], "needs_info": [shown(m) for m in result.needs_info],
        "excluded": [{"product_id": e.product.id, "name": e.product.name, "reasons": list(e.reasons),
                      "missing": list(e.missing)} for e in result.excluded],
    }
