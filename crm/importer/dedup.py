"""Duplicates against the database (those inside the file are dropped while preparing,
:mod:`crm.importer.prepare`: the later row is the duplicate).

Both work on blind indexes only. The in-file memory is one small entry per identifier seen
(bounded by the file, never by the database); the database is asked once per batch with one
query per identifier kind, each served by its unique index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.orm import Session

from crm.models import Customer

LABELS = {"phone": "手机号", "id_number": "身份证号"}


@dataclass(frozen=True, slots=True)
class Existing:
    """A customer an imported row matched, with what a merge may fill in (blanks only)."""

    id: int
    owner_id: int | None
    status: str
    name: str
    phone_masked: str | None
    phone_index: str | None = None
    id_number_index: str | None = None
    region: str | None = None
    demand_amount: int | None = None
    demand_term_months: int | None = None
    demand_purpose: str | None = None


_COLUMNS = (Customer.id, Customer.owner_id, Customer.status, Customer.name, Customer.phone_masked,
            Customer.phone_index, Customer.id_number_index, Customer.region, Customer.demand_amount,
            Customer.demand_term_months, Customer.demand_purpose)


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def find_existing(session: Session, phone_indexes: list[str], id_indexes: list[str], *,
                  chunk: int = 2000) -> dict[str, Existing]:
    """index -> the customer holding it (batched queries, one per identifier kind and chunk, each
    served by the kind's unique index)."""
    found: dict[str, Existing] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    for column, values in ((Customer.phone_index, phone_indexes), (Customer.id_number_index, id_indexes)):
        for part in _chunks(values, chunk):
            # PostgreSQL: one text parameter split server-side (= ANY of a constant array once the
            # custom plan folds it) instead of thousands of bound values, or an array built value by
            # value on the client; blind indexes are hex, so a comma never occurs inside one.
            clause = column == any_(func.string_to_array(bindparam("keys", ",".join(part), type_=String), ",")) \
                if postgres else column.in_(part)
            for row in session.execute(select(column, *_COLUMNS).where(clause)):
                found[row[0]] = Existing(*row[1:])
    return found
