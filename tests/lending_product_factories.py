"""Small factories for lending products: make_funder(session, …), make_product(session, …)."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from lending import products
from lending.models import Funder, Product

_seq = itertools.count(1)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(born: date, area: str = "440305", seq: str = "123") -> str:
    """A valid 18-character resident ID number (GB 11643 check digit) for a birth date."""
    body = f"{area}{born:%Y%m%d}{seq}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def make_funder(session: Session, name: str | None = None, funder_type: str = "bank") -> Funder:
    return products.create_funder(session, name=name or f"资方{next(_seq)}", funder_type=funder_type)


def terms(**changes: Any) -> products.ProductTerms:
    """10,000–100,000 yuan, 12 or 24 months, 等额本息 at 12% a year, no fees, no restrictions."""
    base: dict[str, Any] = {
        "min_amount": 1_000_000, "max_amount": 10_000_000, "terms_months": [12, 24],
        "repayment_method": "equal_installment", "annual_rate": Decimal("0.12"),
    }
    base.update(changes)
    return products.ProductTerms(**base)


def make_product(session: Session, *, funder: Funder | None = None, code: str | None = None,
                 name: str | None = None, **changes: Any) -> Product:
    n = next(_seq)
    return products.create_product(session, code=code or f"P{n:04d}", name=name or f"产品{n}",
                                   funder_id=(funder or make_funder(session)).id, terms=terms(**changes))
