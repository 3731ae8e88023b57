"""Every spreadsheet the product hands out, .xlsx and .csv, is written here and nowhere else.

A value a user typed (a lead's name, a referrer's payee name or bank) can begin with ``=``, ``+``,
``-`` or ``@``; a spreadsheet program that opened it as a formula would run it (``=HYPERLINK(...)``
sends the row's bank account to a stranger's server: CSV/formula injection). The writers here never
let that happen:

* .xlsx: text is written as a text cell (an inline string, ``t="inlineStr"``); a workbook written
  here has no formula (``<f>``) element at all. Numbers (``int``, ``Decimal``, ``float``) are number
  cells, ``bool`` a boolean cell, ``None`` and ``""`` an empty cell, anything else (a date, an enum)
  its ``str()`` as text.
* .csv: UTF-8 with a BOM (Excel on a Chinese Windows then reads it as UTF-8); text that begins
  with ``=`` ``+`` ``-`` ``@``, a tab or a carriage return gets a leading single quote, as OWASP's
  CSV-injection advice says, so Excel, WPS and LibreOffice show it as text. Numbers are written
  as numbers (a negative amount stays ``-12.50``): give amounts as ``Decimal`` (``core.money.fen_to_yuan``),
  never as preformatted strings.

Rows are streamed: a sheet is written to a temporary file row by row and zipped at the end, so
an export of a million rows needs no more memory than one of ten (give rows as an iterator, for
example ``session.execute(stmt).yield_per(1000)`` turned into lists).

Use::

    from core import exports

    # one sheet, small result: bytes for an HTTP response
    data = exports.xlsx_bytes("推荐人报表", ["推荐人", "金额(元)"], ([r.name, fen_to_yuan(r.amount)] for r in rows))
    data = exports.csv_bytes(["推荐人", "金额(元)"], rows)

    # several sheets, or a large export written straight to a file (or any binary file object)
    with exports.XlsxWriter(path) as book:
        sheet = book.sheet("问题行", header=["行号", "说明"])
        for row in rows:
            sheet.append(row)
        book.sheet("汇总").append(["合计", 3])

    with path.open("wb") as out:
        exports.write_csv(out, header, rows)

``XLSX_MEDIA_TYPE`` and ``CSV_MEDIA_TYPE`` are the content types to answer with. Never write a
spreadsheet with openpyxl, xlsxwriter or ``csv.writer`` directly. ``tests/test_exports_formula_injection.py``
checks the promise above for the writer and for every export (no ``<f>`` element in the xlsx, no
csv cell a spreadsheet would evaluate); a new export adds a test there with its own rows.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO
from xml.sax.saxutils import escape

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")


def neutralise(text: str) -> str:
    """Text a spreadsheet would read as a formula, made inert for a CSV cell (a leading ``'``)."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number_text(value: int | float | Decimal) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return format(value, "f")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    return str(value)


# --- CSV -------------------------------------------------------------------------------------------

def csv_cell(value: object) -> str:
    """One CSV cell: numbers as numbers, booleans as 是/否, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if _is_number(value):
        return _number_text(value)  # type: ignore[arg-type]
    return neutralise(str(value))


def write_csv(out: BinaryIO, header: Sequence[object] | None, rows: Iterable[Sequence[object]]) -> int:
    """Write a UTF-8 (with BOM) CSV to a binary file object, row by row; returns the data rows written."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        if header is not None:
            writer.writerow([csv_cell(v) for v in header])
        count = 0
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])
            count += 1
        text.flush()
        return count
    finally:
        text.detach()  # the caller's file stays open


def csv_bytes(header: Sequence[object] | None, rows: Iterable[Sequence[object]]) -> bytes:
    out = io.BytesIO()
    write_csv(out, header, rows)
    return out.getvalue()


# --- XLSX ------------------------------------------------------------------------------------------

def _col(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _xml_text(text: str) -> str:
    text = escape(_ILLEGAL_XML.sub("", text))
    return text.replace("\r", "&#13;") if "\r" in text else text  # a bare CR would be read back as LF


_COLS = [_col(i) for i in range(256)]


def xlsx_cell(ref: str, value: object) -> str:
    """One cell as SpreadsheetML: a number, a boolean or an inline string, never a formula."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if _is_number(value):
        return f'<c r="{ref}"><v>{_number_text(value)}</v></c>'  # type: ignore[arg-type]
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(str(value))}</t></is></c>'


class Sheet:
    """One worksheet being written: rows go to a temporary file as they come (see :class:`XlsxWriter`)."""

    def __init__(self, name: str, folder: Path, index: int) -> None:
        self.name = name
        self.rows = 0
        self.width = 1
        self._path = folder / f"sheet{index}.xml"
        self._fh: IO[str] | None = self._path.open("w", encoding="utf-8")

    def append(self, values: Sequence[object]) -> None:
        if self._fh is None:
            raise RuntimeError("the workbook is closed")
        self.rows += 1
        r = str(self.rows)
        if len(values) > self.width:
            self.width = len(values)
        cells = []
        for i, value in enumerate(values):  # the common types inline: a report may have 200,000 rows
            kind = type(value)
            if value is None or value == "":
                continue
            ref = (_COLS[i] if i < len(_COLS) else _col(i)) + r
            if kind is str:
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(value)}</t></is></c>')
            elif kind is int:
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                cells.append(xlsx_cell(ref, value))
        self._fh.write(f'<row r="{r}">{"".join(cells)}</row>')

    def extend(self, rows: Iterable[Sequence[object]]) -> None:
        for row in rows:
            self.append(row)

    def _finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _copy_into(self, out: BinaryIO) -> None:
        """The worksheet part: its dimension (known only now), then the streamed rows."""
        out.write(('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                   '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                   f'<dimension ref="A1:{_col(self.width - 1)}{max(1, self.rows)}"/><sheetData>').encode())
        with self._path.open("rb") as fh:
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


def sheet_name(name: str, taken: Iterable[str] = ()) -> str:
    """A legal, unique worksheet name (31 characters, none of ``[]:*?/\\``)."""
    base = _SHEET_NAME_BAD.sub("_", name).strip("'")[:31] or "Sheet"
    used = {t.lower() for t in taken}
    candidate, n = base, 1
    while candidate.lower() in used:
        n += 1
        suffix = f"({n})"
        candidate = base[: 31 - len(suffix)] + suffix
    return candidate


class XlsxWriter:
    """A streamed .xlsx workbook: ``sheet()`` adds a worksheet, ``close()`` (or leaving the ``with``
    block without an error) writes the package to ``target``, a path or a binary file object (which
    stays open). Sheets may be written in any interleaving; each one costs a temporary file, no memory."""

    def __init__(self, target: Path | str | BinaryIO) -> None:
        self.target = target
        self._tmp = tempfile.TemporaryDirectory(prefix="scrm-export-")
        self._sheets: list[Sheet] = []
        self._closed = False

    def sheet(self, name: str, header: Sequence[object] | None = None) -> Sheet:
        sheet = Sheet(sheet_name(name, (s.name for s in self._sheets)), Path(self._tmp.name), len(self._sheets) + 1)
        self._sheets.append(sheet)
        if header is not None:
            sheet.append(header)
        return sheet

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if not self._sheets:
                self.sheet("Sheet1")
            for sheet in self._sheets:
                sheet._finish()
            if isinstance(self.target, str | Path):
                with Path(self.target).open("wb") as out:
                    self._zip(out)
            else:
                self._zip(self.target)
        finally:
            self._tmp.cleanup()

    def discard(self) -> None:
        """Drop what was written (nothing reaches the target)."""
        self._closed = True
        for sheet in self._sheets:
            sheet._finish()
        self._tmp.cleanup()

    def __enter__(self) -> XlsxWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def _zip(self, out: BinaryIO) -> None:
        sheets = self._sheets
        names = "".join(f'<sheet name="{escape(s.name, {chr(34): "&quot;"})}" sheetId="{n}" r:id="rId{n}"/>'
                        for n, s in enumerate(sheets, start=1))
        workbook = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                    f'<sheets>{names}</sheets></workbook>')
        rels = "".join(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                       f'relationships/worksheet" Target="worksheets/sheet{n}.xml"/>'
                       for n in range(1, len(sheets) + 1))
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("[Content_Types].xml", _CONTENT_TYPES.format(
                sheets="".join(_SHEET_TYPE.format(n=n) for n in range(1, len(sheets) + 1))))
            zf.writestr("_rels/.rels", _ROOT_RELS)
            zf.writestr("xl/workbook.xml", workbook)
            zf.writestr("xl/_rels/workbook.xml.rels",
                        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                        f"{rels}</Relationships>")
            for n, sheet in enumerate(sheets, start=1):
                with zf.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as part:
                    sheet._copy_into(part)  # type: ignore[arg-type]


def write_xlsx(target: Path | str | BinaryIO, name: str, header: Sequence[object] | None,
               rows: Iterable[Sequence[object]]) -> None:
    """A one-sheet workbook written to a path or a binary file object."""
    with XlsxWriter(target) as book:
        book.sheet(name, header).extend(rows)


def xlsx_bytes(name: str, header: Sequence[object] | None, rows: Iterable[Sequence[object]]) -> bytes:
    """A one-sheet workbook as bytes (the rows are streamed; the compressed result is in memory)."""
    out = io.BytesIO()
    write_xlsx(out, name, header, rows)
    return out.getvalue()


__all__ = ["CSV_MEDIA_TYPE", "FORMULA_PREFIXES", "XLSX_MEDIA_TYPE", "Sheet", "XlsxWriter", "csv_bytes", "csv_cell",
           "neutralise", "sheet_name", "write_csv", "write_xlsx", "xlsx_bytes", "xlsx_cell"]
