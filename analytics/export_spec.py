"""What an exportable list is (导出任务): its own SELECT and its columns (:class:`Export`), and how a job stores a
list's filter dataclass (:func:`dataclass_params`, :func:`dataclass_filter`). The lists themselves are in
``analytics.export_kinds``; the job that writes them in ``analytics.export_jobs``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from crm.scope import Viewer

__all__ = ["KEY", "Column", "Export", "dataclass_filter", "dataclass_params"]

F = TypeVar("F")
KEY = "export_key"  # the label of the list's id, added to its SELECT to read it batch by batch


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Row[Any]], Any]  # the cell, from one row of the list's SELECT


@dataclass(frozen=True)
class Export:
    """One exportable list: its own SELECT (scope and filters rebuilt from the job's stored parameters) and its
    columns. Rows are read in batches by ``key`` (the list's id), so any list of any size is written with flat
    memory; the count and the batches are derived from the one SELECT, never written twice."""

    title: str  # the sheet's and the file's name
    key: InstrumentedAttribute[int]
    query: Callable[[Session, Viewer, dict[str, Any]], Select[Any]]
    columns: Sequence[Column] = ()
    # a list whose columns are known only at run time (the customer list's custom fields) gives these instead
    header_of: Callable[[Session], list[str]] | None = None
    cells_of: Callable[[Session, list[Row[Any]]], Iterable[Sequence[Any]]] | None = None
    audit_action: str | None = None  # personal data leaves the system: the request is access-logged under this

    def header(self, session: Session, viewer: Viewer, params: dict[str, Any]) -> list[str]:  # noqa: ARG002
        return self.header_of(session) if self.header_of else [c.header for c in self.columns]

    def count(self, session: Session, viewer: Viewer, params: dict[str, Any]) -> int:
        stmt = self.query(session, viewer, params).with_only_columns(self.key).order_by(None)
        return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)

    def batch(self, session: Session, viewer: Viewer, params: dict[str, Any], after: int,
              limit: int) -> list[tuple[int, Sequence[Any]]]:
        """One batch after the key ``after`` (keyset pagination, key order): [(key, cells), …]."""
        stmt = (self.query(session, viewer, params).add_columns(self.key.label(KEY)).where(self.key > after)
                .order_by(None).order_by(self.key).limit(limit))
        rows = list(session.execute(stmt))
        cells = (self.cells_of(session, rows) if self.cells_of
                 else ([c.value(r) for c in self.columns] for r in rows))
        return [(getattr(r, KEY), c) for r, c in zip(rows, cells, strict=True)]


# --- stored parameters: a list's filter dataclass as JSON ------------------------------------------------


def dataclass_params(flt: Any) -> dict[str, Any]:
    """What a job stores of a list's filter dataclass (JSON: dates as ISO text, empty values left out)."""
    out = {}
    for f in fields(flt):
        value = getattr(flt, f.name)
        if value not in (None, "", False):
            out[f.name] = value.isoformat() if isinstance(value, date) else value
    return out


def dataclass_filter(cls: type[F], params: dict[str, Any]) -> F:
    """The filter dataclass back from what :func:`dataclass_params` stored."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in params and params[f.name] not in (None, ""):
            value = params[f.name]
            values[f.name] = date.fromisoformat(value) if "date" in str(f.type) and isinstance(value, str) else value
    return cls(**values)
