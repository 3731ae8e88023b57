"""A saved report (自定义报表) as an export kind. Its figures are a few hundred grouped rows at most, computed by
:func:`analytics.reports.run` for the requester (their data scope), so this kind answers the interface of
:class:`analytics.export_spec.Export` (title, query, header, count, batch) from the report's result instead of
from a SELECT read by key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from analytics import metrics, reports
from core.errors import ValidationFailed
from core.money import fen_to_yuan
from crm.scope import Viewer


def _cell(value: Any, unit: str) -> Any:
    if value is None:
        return None
    if unit == "fen":
        return fen_to_yuan(int(value))
    if unit == "rate":
        return metrics.display(value, unit)
    return int(value)


def header_of(result: reports.Result) -> list[str]:
    """A column per dimension (two for a cross-tab), then one per metric."""
    return [*result.dimension_labels, *(f"{m.label}(元)" if m.unit == "fen" else m.label for m in result.columns)]


def rows_of(result: reports.Result) -> list[list[Any]]:
    """The grouped rows, then the totals row (合计 in the first dimension column, the others blank)."""
    width = len(result.dimension_labels)
    rows = [*result.rows, *([result.totals] if result.totals else [])]
    return [[*row.labels, *[""] * (width - len(row.labels)),
             *(_cell(c.value, m.unit) for m, c in zip(result.columns, row.cells, strict=True))] for row in rows]


class ReportExport:
    title = "自定义报表"
    audit_action = None  # figures, not personal data

    def query(self, session: Session, viewer: Viewer, params: dict[str, Any]) -> reports.Report:
        """The report, if the requester may run it (else not found); checked when the export is requested."""
        try:
            report_id = int(params["report_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationFailed("缺少报表编号", field="report_id") from exc
        return reports.get_for_run(session, viewer, report_id)

    def _result(self, session: Session, viewer: Viewer, params: dict[str, Any]) -> reports.Result:
        return reports.run(session, viewer, self.query(session, viewer, params))

    def header(self, session: Session, viewer: Viewer, params: dict[str, Any]) -> list[str]:
        return header_of(self._result(session, viewer, params))

    def count(self, session: Session, viewer: Viewer, params: dict[str, Any]) -> int:
        return len(rows_of(self._result(session, viewer, params)))

    def batch(self, session: Session, viewer: Viewer, params: dict[str, Any], after: int,
              limit: int) -> list[tuple[int, Sequence[Any]]]:
        """Run once per batch (the rows are few), each row keyed by its position."""
        rows = enumerate(rows_of(self._result(session, viewer, params)), start=1)
        return [(key, cells) for key, cells in rows if key > after][:limit]
