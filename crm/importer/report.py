"""The problem-row report (.xlsx): every row that was not imported, with its row number, what was
wrong (in Chinese) and its original values, phone and ID numbers masked.

Rows are written as they occur through the product's one export writer (:class:`core.exports.XlsxWriter`,
streamed to disk: a file of 200,000 bad rows needs no more memory than one of ten; text cells are
text, never a formula); only the first :data:`SAMPLE` problems are kept in memory, for the console
and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import exports, pii
from crm.importer.headers import HeaderMap

SAMPLE = 20

KIND_LABELS = {"error": "错误", "duplicate_in_file": "文件内重复", "duplicate_existing": "已存在",
               "collision": "撞单"}


@dataclass(frozen=True)
class Problem:
    row_number: int
    kind: str
    message: str


def _mask_identifier(kind: str, value: object) -> str:
    if value is None or value == "":
        return ""
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    try:
        return pii.mask(kind, pii.normalize(kind, text))
    except Exception:  # noqa: BLE001 - anything unparsable is masked loosely
        return pii.mask_loose(text)


def _safe(value: object) -> object:
    """A value for a report cell, PII masked in text (the writer makes text cells text, never a formula)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return pii.mask_text(str(value))


class ProblemReport:
    def __init__(self, path: Path, header: HeaderMap | None = None) -> None:
        self.path = path
        self.header = header
        self.sample: list[Problem] = []
        self.count = 0
        self._book: exports.XlsxWriter | None = None
        self._ws: exports.Sheet | None = None
        self._masked_cols: dict[int, str] = {}

    def set_header(self, header: HeaderMap) -> None:
        self.header = header
        self._masked_cols = {i: f for f, i in header.columns.items() if f in ("phone", "id_number")}

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._book = exports.XlsxWriter(self.path.with_suffix(".tmp"))
        original = self.header.original if self.header else []
        self._ws = self._book.sheet("问题行", ["行号", "类型", "问题说明", *[_safe(h) for h in original]])

    def add(self, row_number: int, kind: str, message: str, cells: list[object]) -> None:
        self.count += 1
        if len(self.sample) < SAMPLE:
            self.sample.append(Problem(row_number, kind, message))
        if self._ws is None:
            self._open()
        assert self._ws is not None
        values = [_mask_identifier(self._masked_cols[i], v) if i in self._masked_cols else _safe(v)
                  for i, v in enumerate(cells)]
        self._ws.append([row_number, KIND_LABELS.get(kind, kind), message, *values])

    def close(self, summary: dict[str, object]) -> Path | None:
        """Write the file (only when there was a problem); returns its path."""
        if self._book is None:
            return None
        book, self._book, self._ws = self._book, None, None
        tmp = self.path.with_suffix(".tmp")
        try:
            book.sheet("汇总").extend([key, _safe(value)] for key, value in summary.items())
            book.close()
            tmp.replace(self.path)
        except BaseException:
            book.discard()
            tmp.unlink(missing_ok=True)
            raise
        return self.path
