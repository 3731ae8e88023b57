"""The problem-row report (.xlsx): every row that was not imported, with its row number, what was
wrong (in Chinese) and its original values, phone and ID numbers masked.

Rows are written as they occur, streamed to disk as SpreadsheetML (a small writer here: openpyxl's
write-only mode costs ~80 µs a cell without lxml), so a file of 200,000 bad rows needs no more
memory than one of ten; only the first :data:`SAMPLE` problems are kept in
memory, for the console and the CLI.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

from core import pii
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
    """A value for a report cell, PII masked in text (cells are inline strings: never a formula)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return pii.mask_text(str(value))


_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _col(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


class _SheetWriter:
    """One worksheet streamed to a temporary file as SpreadsheetML (inline strings), so writing a row
    costs microseconds and no memory; :meth:`ProblemReport.close` zips the parts into the .xlsx."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.width = 1
        self._fh = path.open("w", encoding="utf-8")

    def append(self, values: list[object]) -> None:
        self.rows += 1
        r = self.rows
        self.width = max(self.width, len(values))
        cells = []
        for i, value in enumerate(values):
            if value is None or value == "":
                continue
            ref = f"{_col(i)}{r}"
            if isinstance(value, bool):
                cells.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, int | float):
                cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
            else:
                text = escape(_ILLEGAL_XML.sub("", str(value)))
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
        self._fh.write(f'<row r="{r}">{"".join(cells)}</row>')

    def finish(self) -> None:
        self._fh.close()

    def copy_into(self, out: BinaryIO) -> None:
        """The worksheet part: its dimension (known only now), then the streamed rows."""
        out.write(('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                   '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                   f'<dimension ref="A1:{_col(self.width - 1)}{max(1, self.rows)}"/><sheetData>').encode())
        with self.path.open("rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)
        out.write(b"</sheetData></worksheet>")


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '{sheets}</Types>')
_SHEET_TYPE = ('<Override PartName="/xl/worksheets/sheet{n}.xml" '
               'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>')


def _zip_workbook(path: Path, sheets: list[tuple[str, _SheetWriter]]) -> None:
    names = "".join(f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>'
                    for n, (name, _) in enumerate(sheets, start=1))
    workbook = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                f'<sheets>{names}</sheets></workbook>')
    rels = "".join(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                   f'relationships/worksheet" Target="worksheets/sheet{n}.xml"/>' for n in range(1, len(sheets) + 1))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES.format(
            sheets="".join(_SHEET_TYPE.format(n=n) for n in range(1, len(sheets) + 1))))
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr("xl/_rels/workbook.xml.rels",
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                    f"{rels}</Relationships>")
        for n, (_, sheet) in enumerate(sheets, start=1):
            with zf.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as out:
                sheet.copy_into(out)


class ProblemReport:
    def __init__(self, path: Path, header: HeaderMap | None = None) -> None:
        self.path = path
        self.header = header
        self.sample: list[Problem] = []
        self.count = 0
        self._ws: _SheetWriter | None = None
        self._masked_cols: dict[int, str] = {}

    def set_header(self, header: HeaderMap) -> None:
        self.header = header
        self._masked_cols = {i: f for f, i in header.columns.items() if f in ("phone", "id_number")}

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ws = _SheetWriter(self.path.with_suffix(".rows.xml"))
        original = self.header.original if self.header else []
        self._ws.append(["行号", "类型", "问题说明", *[_safe(h) for h in original]])

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
        if self._ws is None:
            return None
        self._ws.finish()
        totals = _SheetWriter(self.path.with_suffix(".summary.xml"))
        for key, value in summary.items():
            totals.append([key, _safe(value)])
        totals.finish()
        tmp = self.path.with_suffix(".tmp")
        try:
            _zip_workbook(tmp, [("问题行", self._ws), ("汇总", totals)])
            tmp.replace(self.path)
        finally:
            self._ws.path.unlink(missing_ok=True)
            totals.path.unlink(missing_ok=True)
        self._ws = None
        return self.path
