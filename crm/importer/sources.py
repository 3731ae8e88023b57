"""Open an uploaded file as what it really is (by content, not by name) and stream its rows.

* .xlsx: openpyxl in read-only mode, first worksheet, values only (formulas as last computed).
* .csv: UTF-8 with or without BOM; otherwise GB18030 (what Excel on a Chinese Windows writes).
  The encoding is decided by one streaming pass over the whole file (which also gives the SHA-256
  and an estimate of the row count), so a file whose first megabyte is ASCII is not misjudged.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crm.importer.errors import ImportFileEmpty, ImportFileInvalid

CHUNK = 1 << 20
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0"  # legacy .xls
csv.field_size_limit(1 << 20)


@dataclass(frozen=True)
class FileInfo:
    kind: str  # xlsx | csv
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
        return FileInfo("xlsx", digest.hexdigest(), size, None, None)
    if head.startswith(_OLE):
        raise ImportFileInvalid("不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 .csv 后再导入")
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
    return FileInfo("csv", digest.hexdigest(), size, encoding, newlines + 1)


def iter_rows(path: Path, info: FileInfo) -> Iterator[tuple[int, list[object]]]:
    """Yield (spreadsheet row number, cells), 1-based as Excel numbers rows, blank rows skipped."""
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
        for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
            if any(c is not None and str(c).strip() for c in row):
                yield n, list(row)
    finally:
        wb.close()


def estimated_rows(path: Path, info: FileInfo) -> int | None:
    if info.estimated_rows is not None:
        return info.estimated_rows
    try:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True)
        try:
            return wb.worksheets[0].max_row if wb.worksheets else None
        finally:
            wb.close()
    except Exception:  # noqa: BLE001 - only an estimate for the progress bar
        return None
