"""Product matching as the console shows it, shared by the new-application form and the Customer 360's
产品匹配 panel: the typed (or the customer's recorded) amount and term matched against every product
(lending.matching): eligible products cheapest first, 需补充资料 with the facts to supply, the others
with their reasons. With no amount or term known, the products on offer to choose an amount from."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from admin.deps import parse_int
from admin.schemas_customers import yuan_text_to_fen
from core.errors import ValidationFailed
from crm.models import Customer
from lending import matching, products


def context(session: Session, customer: Customer, amount: str = "", term: str = "") -> dict[str, Any]:
    """``{"match": MatchResult | None, "match_note": why none, "offers": [(product, version)]}``."""
    try:
        fen = yuan_text_to_fen(amount, "amount", "申请金额") if amount.strip() else None
        months = parse_int(term) if term.strip() else None
        demand = matching.demand_of(customer, amount=fen, term_months=months)
        result = matching.match_products(session, demand, matching.profile_of(customer))
    except ValidationFailed as exc:  # no amount or term yet: the products on offer, to choose an amount from
        offers = [(p, v) for p, v in products.list_products(session, active_only=True) if v is not None]
        return {"match": None, "match_note": exc.message, "offers": offers}
    return {"match": result, "match_note": None, "offers": []}
