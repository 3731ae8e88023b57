"""Open an uploaded file as what it really is (by content, not by name) and stream its rows.

* .xlsx: openpyxl in read-only mode, first worksheet, values only (formulas as last computed).
* .xls (legacy Excel) and .ods (OpenDocument): python-calamine (Rust's calamine), first sheet;
  its cells come out as openpyxl's do (numbers, text, dates; an empty cell is None), so headers and
  rows are read and normalised the same way.
* .csv: UTF-8 with or without BOM; otherwise GB18030 (what Excel on a Chinese Windows writes).
  The encoding is decided by one streaming pass over the whole file (which also gives the SHA-256
  and an estimate of the row count), so a file whose first megabyte is ASCII is not misjudged.

Before any reader opens a file, :mod:`crm.importer.limits` checks what it would cost (archive
directory, grid size, rows); the rows of one import are capped (``SCRM_IMPORT_MAX_ROWS``), up front
where the file says how many it has and, whatever it says, while it is read.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from defusedxml.ElementTree import iterparse

from crm.importer import limits
from crm.importer.errors import ImportFileEmpty, ImportFileInvalid

CHUNK = 1 << 20
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0"  # legacy .xls
csv.field_size_limit(1 << 20)


@dataclass(frozen=True)
class FileInfo:
    kind: str  # xlsx | xls | ods | csv
    sha256: str
    size: int
    encoding: str | None
    estimated_rows: int | None  # including the header row


def inspect(path: Path) -> FileInfo:
    """Hash the file, decide what it is and (for CSV) its encoding; refuse what is no spreadsheet."""
    if not path.is_file():
        raise ImportFileInvalid(f"文件不存在：{path.name}")
    digest = hashlib.sha256()
    size = newlines = 0
    head = b""
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = True
    has_nul = False
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            if not head:
                head = chunk[:8]
            digest.update(chunk)
            size += len(chunk)
            newlines += chunk.count(b"\n")
            has_nul = has_nul or b"\x00" in chunk
            if utf8_ok:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
    if utf8_ok:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    if size == 0:
        raise ImportFileEmpty("导入文件是空的（0 字节）")
    if head.startswith(_ZIP):
        with limits.check_zip(path) as zf:
            if limits.is_ods(zf):
                grid = limits.ods_grid(zf)
                limits.check_grid(grid)
                return FileInfo("ods", digest.hexdigest(), size, None, grid.rows)
        estimate = _xlsx_rows(path)
        if estimate is not None and estimate - 1 > limits.max_rows():
            raise limits.too_many_rows(estimate - 1)
        return FileInfo("xlsx", digest.hexdigest(), size, None, estimate)
    if head.startswith(_OLE):
        grid = limits.check_xls(path)
        return FileInfo("xls", digest.hexdigest(), size, None, grid.rows)
    if has_nul:
        raise ImportFileInvalid("文件不是表格（既不是 .xlsx 也不是 .csv 文本），请检查是否选错了文件")
    encoding = "utf-8-sig" if utf8_ok else "gb18030"
    if not utf8_ok:
        with path.open("rb") as fh:
            decoder = codecs.getincrementaldecoder("gb18030")()
            try:
                while chunk := fh.read(CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise ImportFileInvalid("无法识别文件的文字编码（支持 UTF-8 与 GB18030/GBK），"
                                        "请在 Excel 中另存为“CSV UTF-8”或 .xlsx") from None
    info = FileInfo("csv", digest.hexdigest(), size, encoding, newlines + 1)
    if newlines > limits.max_rows():  # lines: an upper bound (quoted cells may span lines); count exactly
        rows = sum(1 for _ in iter_rows(path, info, capped=False))
        if rows - 1 > limits.max_rows():
            raise limits.too_many_rows(rows - 1)
    return info


def iter_rows(path: Path, info: FileInfo, *, capped: bool = True) -> Iterator[tuple[int, list[object]]]:
    """Yield (spreadsheet row number, cells), 1-based as Excel numbers rows, blank rows skipped.
    More non-blank rows than the import's cap (and a few header or title rows) stop the read."""
    rows = _iter_rows(path, info)
    if not capped:
        yield from rows
        return
    allowed = limits.max_rows() + HEADER_ROOM
    columns = limits.MAX_COLUMNS
    for n, item in enumerate(rows, start=1):
        if n > allowed:
            raise limits.too_many_rows(n - 1)
        if len(item[1]) > columns:  # a batch holds its rows: none may be arbitrarily wide
            item = (item[0], item[1][:columns])
        yield item


HEADER_ROOM = 10  # non-blank rows above the data (the header, title rows) not counted against the cap


def _iter_rows(path: Path, info: FileInfo) -> Iterator[tuple[int, list[object]]]:
    if info.kind in ("xls", "ods"):
        yield from _iter_calamine(path, info.kind)
        return
    if info.kind == "csv":
        with path.open("r", encoding=info.encoding, newline="") as fh:
            try:
                for n, row in enumerate(csv.reader(fh), start=1):
                    if "".join(row).strip():  # some cell is not blank
                        yield n, row
            except csv.Error as exc:
                raise ImportFileInvalid(f"CSV 文件格式错误：{exc}") from None
        return
    yield from _iter_xlsx(path)


def _iter_xlsx(path: Path) -> Iterator[tuple[int, list[object]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ImportFileInvalid(f"文件不是有效的 Excel（.xlsx）文件：{type(exc).__name__}") from None
    try:
        if not wb.worksheets:
            raise ImportFileEmpty("Excel 文件中没有工作表")
        ws = wb.worksheets[0]
        # openpyxl pads every row to the sheet's stated width: a dimension reaching column XFD would
        # make each row 16,384 cells; columns past MAX_COLUMNS are not read
        width = min(ws.max_column or limits.MAX_COLUMNS, limits.MAX_COLUMNS)
        for n, row in enumerate(ws.iter_rows(values_only=True, max_col=width), start=1):
            if any(c is not None and str(c).strip() for c in row):
                yield n, list(row)
    finally:
        wb.close()


def _iter_calamine(path: Path, kind: str) -> Iterator[tuple[int, list[object]]]:
    """The first sheet of an .xls or .ods (checked by :mod:`limits` before: its grid is bounded)."""
    from python_calamine import CalamineWorkbook

    label = "旧版 Excel（.xls）" if kind == "xls" else "OpenDocument（.ods）"
    try:
        wb = CalamineWorkbook.from_path(str(path))
        if not wb.sheet_names:
            raise ImportFileEmpty(f"{label}文件中没有工作表")
        sheet = wb.get_sheet_by_index(0)
    except ImportFileInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - calamine's errors are of its own kinds
        raise ImportFileInvalid(f"文件不是有效的{label}文件，可能已损坏：{type(exc).__name__}") from None
    first = sheet.start[0] + 1 if sheet.start else 1
    try:
        for n, row in enumerate(sheet.iter_rows(), start=first):
            cells = [None if c == "" else c for c in row[:limits.MAX_COLUMNS]]
            if any(c is not None and str(c).strip() for c in cells):
                yield n, cells
    finally:
        wb.close()


def _xlsx_rows(path: Path) -> int | None:
    """The first worksheet's row count as its ``<dimension>`` states it (None when it does not).

    Read from the worksheet's XML head, not through openpyxl: ``load_workbook`` reads the whole shared
    strings table into memory first (hundreds of MB for a large file within the limits), only to
    give a number the import will get again when it reads the rows."""
    try:
        with zipfile.ZipFile(path) as zf:
            sheet = _first_sheet_part(zf)
            if sheet is None:
                return None
            with zf.open(sheet) as fh:
                for _event, elem in iterparse(fh, events=("start",)):
                    tag = elem.tag.rsplit("}", 1)[-1]
                    if tag == "dimension":
                        return _last_row(elem.get("ref") or "")
                    if tag == "sheetData":  # the dimension comes before the rows, or not at all
                        return None
    except Exception:  # noqa: BLE001 - only an estimate; the read itself says what is wrong
        return None
    return None


def _first_sheet_part(zf: zipfile.ZipFile) -> str | None:
    """The archive path of the workbook's first sheet (by workbook.xml and its relationships)."""
    rid = None
    with zf.open("xl/workbook.xml") as fh:
        for _event, elem in iterparse(fh, events=("start",)):
            if elem.tag.rsplit("}", 1)[-1] == "sheet":
                rid = next((v for k, v in elem.attrib.items() if k.rsplit("}", 1)[-1] == "id"), None)
                break
    if rid is None:
        return None
    with zf.open("xl/_rels/workbook.xml.rels") as fh:
        for _event, elem in iterparse(fh, events=("start",)):
            if elem.tag.rsplit("}", 1)[-1] == "Relationship" and elem.get("Id") == rid:
                target = (elem.get("Target") or "").lstrip("/")
                return target if target.startswith("xl/") else f"xl/{target}"
    return None


def _last_row(ref: str) -> int | None:
    """``A1:Q20001`` → 20001; ``A1`` → 1."""
    digits = "".join(ch for ch in ref.rsplit(":", 1)[-1] if ch.isdigit())
    return int(digits) if digits else None


def estimated_rows(path: Path, info: FileInfo) -> int | None:
    if info.estimated_rows is not None:
        return info.estimated_rows
    return _xlsx_rows(path)
