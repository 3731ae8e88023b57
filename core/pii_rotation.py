"""Re-encrypt every sealed PII column under the active key (``scrm pii rotate``).

Domains register their sealed columns at import time with :func:`register`. Rotation walks each
table in id order, in batches, each batch its own transaction, so it can run on a live database
and be resumed: rows already under the active key are skipped by the query itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
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
        pk = table.c.id
        label = f"{table.name}.{col.key}"
        counts[label] = 0
        last_id = 0
        while True:
            with unit_of_work() as session:
                rows = session.execute(
                    select(pk, table.c[col.key])
                    .where(pk > last_id, table.c[col.key].is_not(None), ~table.c[col.key].startswith(prefix))
                    .order_by(pk).limit(batch_size)
                ).all()
                for row_id, token in rows:
                    session.execute(update(table).where(pk == row_id)
                                    .values({col.key: pii.rotate_token(sealed.kind, token, ring)}))
                if rows:
                    last_id = rows[-1][0]
                    counts[label] += len(rows)
            if len(rows) < batch_size:
                break
    return counts
