"""Duplicates: inside the file (the later row is the duplicate) and against the database.

Both work on blind indexes only. The in-file memory is one small entry per identifier seen
(bounded by the file, never by the database); the database is asked once per batch with one
``IN`` query per identifier kind, each served by its unique index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ARRAY, String, any_, bindparam, select
from sqlalchemy.orm import Session

from crm.models import Customer

LABELS = {"phone": "手机号", "id_number": "身份证号"}


class SeenInFile:
    """Identifiers already met in this file: index -> the row number that brought it first."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def first_row(self, indexes: tuple[tuple[str, str | None], ...]) -> tuple[int, str] | None:
        """(earlier row number, kind) when any identifier was met before, else None."""
        for kind, index in indexes:
            if index is not None:
                row = self._seen.get(index)
                if row is not None:
                    return row, kind
        return None

    def add(self, row_number: int, indexes: tuple[tuple[str, str | None], ...]) -> None:
        for _kind, index in indexes:
            if index is not None:
                self._seen.setdefault(index, row_number)


@dataclass(frozen=True, slots=True)
class Existing:
    id: int
    owner_id: int | None
    status: str
    name: str
    phone_masked: str | None


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def find_existing(session: Session, phone_indexes: list[str], id_indexes: list[str], *,
                  chunk: int = 2000) -> dict[str, Existing]:
    """index -> the customer holding it (batched IN queries, one per identifier kind)."""
    found: dict[str, Existing] = {}
    cols = (Customer.id, Customer.owner_id, Customer.status, Customer.name, Customer.phone_masked)
    postgres = session.get_bind().dialect.name == "postgresql"
    for column, values in ((Customer.phone_index, phone_indexes), (Customer.id_number_index, id_indexes)):
        for part in _chunks(values, chunk):
            # PostgreSQL: one array parameter (= ANY) instead of thousands of bound values to parse
            clause = column == any_(bindparam("keys", part, type_=ARRAY(String))) if postgres else column.in_(part)
            for row in session.execute(select(column, *cols).where(clause)):
                found[row[0]] = Existing(*row[1:])
    return found


def oldest_match(found: dict[str, Existing], indexes: tuple[tuple[str, str | None], ...]) -> Existing | None:
    """The oldest record matching any identifier (what crm.customers.find_existing picks)."""
    matches = [found[i] for _k, i in indexes if i is not None and i in found]
    return min(matches, key=lambda e: e.id) if matches else None
