"""Re-encrypt every sealed PII column under the active key (``scrm pii rotate``).

Domains register their sealed columns at import time with :func:`register`. Rotation walks each
table in id order, in batches, each batch its own transaction, so it can run on a live database
and be resumed: rows already under the active key are skipped by the query itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute

from core import pii
from core.db import unit_of_work


@dataclass(frozen=True)
class SealedColumn:
    column: InstrumentedAttribute[str | None]
    kind: str


REGISTRY: list[SealedColumn] = []


def register(column: InstrumentedAttribute[str | None], kind: str) -> None:
    if kind not in pii.KINDS:
        raise ValueError(kind)
    REGISTRY.append(SealedColumn(column, kind))


def rotate_all(batch_size: int = 1000) -> dict[str, int]:
    """Return the number of values re-encrypted per ``table.column``."""
    ring = pii.keyring()
    prefix = f"{ring.active_id}."
    counts: dict[str, int] = {}
    for sealed in REGISTRY:
        col = sealed.column
        table = col.class_.__table__
        # keyset paging over the primary key, one column (id) or several (customer_id, field_id)
        pk_cols = list(table.primary_key.columns)
        pk = pk_cols[0] if len(pk_cols) == 1 else tuple_(*pk_cols)
        label = f"{table.name}.{col.key}"
        counts[label] = 0
        last: tuple[object, ...] | None = None
        while True:
            with unit_of_work() as session:
                stmt = (select(*pk_cols, table.c[col.key])
                        .where(table.c[col.key].is_not(None), ~table.c[col.key].startswith(prefix))
                        .order_by(*pk_cols).limit(batch_size))
                if last is not None:
                    stmt = stmt.where(pk > (last[0] if len(pk_cols) == 1 else tuple_(*last)))
                rows = session.execute(stmt).all()
                for row in rows:
                    key, token = tuple(row[:-1]), row[-1]
                    session.execute(update(table).where(*(c == v for c, v in zip(pk_cols, key, strict=True)))
                                    .values({col.key: pii.rotate_token(sealed.kind, token, ring)}))
                if rows:
                    last = tuple(rows[-1][:-1])
                    counts[label] += len(rows)
            if len(rows) < batch_size:
                break
    return counts
