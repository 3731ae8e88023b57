"""What a spreadsheet may cost, checked before any reader opens it (decompression bombs).

A 400 KB .xlsx whose shared-strings part expands to 400 MiB, an 800-byte .ods whose one row is
"repeated" 100,000 times across 100 columns, a 6 KB .xls with one cell at A1 and one at IV65536: each
makes a reader allocate gigabytes (openpyxl loads the shared strings whole; calamine materialises
a sheet as a dense grid). So before a file is opened:

* .xlsx / .ods (zip): the archive's directory is read (not its contents): the number of parts,
  each part's uncompressed size, the total, and the compression ratio of every part of some size
  must stay within :data:`MAX_PARTS`, :data:`MAX_PART_BYTES` (:data:`MAX_SHARED_STRINGS_BYTES` for
  the shared strings, which openpyxl holds in memory), :data:`MAX_TOTAL_BYTES` and :data:`MAX_RATIO`.
  Python's zipfile never inflates a part past the size its directory declares (openpyxl reads
  through it), so the directory cannot lie to the .xlsx reader.
* .ods: calamine inflates ``content.xml`` itself, so it is first streamed through zipfile (bounded
  by the directory) and parsed event by event (``defusedxml``: no entities, no DTD): the first
  table's rows and its grid (rows x columns up to the last cell with a value, counting
  ``number-rows-repeated`` / ``number-columns-repeated``) are measured.
* .xls (OLE compound file, not compressed): the file size is capped (:data:`MAX_XLS_BYTES`) and the
  workbook stream's BIFF cell records are scanned for the grid each worksheet spans.
* every kind: the data rows of one import are capped (``SCRM_IMPORT_MAX_ROWS``, 200,000 by
  default; shown on the import page); a grid over :data:`MAX_GRID_CELLS` is refused; only the
  first :data:`MAX_COLUMNS` columns of a row are read (openpyxl pads rows to the sheet's stated
  width, a CSV line may hold millions of empty cells).

Each refusal is an :class:`ImportFileTooLarge` with a Chinese message saying what to do.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.settings import get_settings
from crm.importer.errors import ImportFileInvalid

MiB = 1024 * 1024
MAX_PARTS = 10_000
MAX_PART_BYTES = 256 * MiB
MAX_SHARED_STRINGS_BYTES = 64 * MiB
MAX_TOTAL_BYTES = 512 * MiB
MAX_RATIO = 100  # uncompressed / compressed, for parts of RATIO_FROM bytes or more (Apache POI's default)
RATIO_FROM = 1 * MiB
MAX_XLS_BYTES = 32 * MiB
MAX_GRID_CELLS = 4_000_000  # rows x columns a grid reader (calamine: .xls, .ods) may materialise
MAX_COLUMNS = 256  # columns of a row that are read (a lead list has a dozen or two)

SPLIT = "请拆分为多个文件后分批导入"


class ImportFileTooLarge(ImportFileInvalid):
    code = "import_file_too_large"
    message = "导入文件过大"


def max_rows() -> int:
    """Data rows one import may have (``SCRM_IMPORT_MAX_ROWS``)."""
    return get_settings().import_max_rows


def too_many_rows(rows: int) -> ImportFileTooLarge:
    return ImportFileTooLarge(f"文件约有 {rows:,} 行数据，超过单次导入上限 {max_rows():,} 行，{SPLIT}")


# --- zip packages (.xlsx, .ods) --------------------------------------------------------------------

def check_zip(path: Path) -> zipfile.ZipFile:
    """Refuse a zip package whose directory promises too much; returns it opened (caller closes)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ImportFileInvalid("文件不是有效的 Excel（.xlsx）或 OpenDocument（.ods）表格，可能已损坏") from None
    try:
        infos = zf.infolist()
        if len(infos) > MAX_PARTS:
            raise ImportFileTooLarge(f"文件内部结构异常（包含 {len(infos):,} 个部件），已拒绝导入")
        total = 0
        for info in infos:
            size = info.file_size
            total += size
            limit = MAX_SHARED_STRINGS_BYTES if info.filename.lower().endswith("sharedstrings.xml") else MAX_PART_BYTES
            if size > limit:
                raise ImportFileTooLarge(f"文件解压后过大（其中“{info.filename[:60]}”达 {size / MiB:,.0f} MB，"
                                         f"上限 {limit // MiB} MB），{SPLIT}")
            if size >= RATIO_FROM and size > MAX_RATIO * max(info.compress_size, 1):
                raise ImportFileTooLarge(f"文件压缩比异常（“{info.filename[:60]}”压缩了 "
                                         f"{size / max(info.compress_size, 1):,.0f} 倍），疑似压缩炸弹，已拒绝导入")
        if total > MAX_TOTAL_BYTES:
            raise ImportFileTooLarge(f"文件解压后共 {total / MiB:,.0f} MB，超过 {MAX_TOTAL_BYTES // MiB} MB 上限，{SPLIT}")
    except BaseException:
        zf.close()
        raise
    return zf


def is_ods(zf: zipfile.ZipFile) -> bool:
    try:
        return zf.read("mimetype")[:64].strip() == b"application/vnd.oasis.opendocument.spreadsheet"
    except KeyError:
        return False


@dataclass(frozen=True)
class Grid:
    rows: int  # rows holding at least one value
    height: int  # rows up to the last one holding a value
    width: int  # columns up to the last one holding a value

    @property
    def cells(self) -> int:
        return self.height * self.width


def check_grid(grid: Grid) -> None:
    if grid.rows - 1 > max_rows():  # the first row is the header (or a title)
        raise too_many_rows(grid.rows - 1)
    if grid.cells > MAX_GRID_CELLS:
        raise ImportFileTooLarge(f"表格范围过大（{grid.height:,} 行 × {grid.width:,} 列），超过 {MAX_GRID_CELLS:,} 个单元格上限；"
                                 "请删除远离数据的内容，或拆分为多个文件后分批导入")


_T = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_O = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"


def ods_grid(zf: zipfile.ZipFile) -> Grid:
    """Measure the first table of an .ods (streamed, constant memory), repeats counted."""
    from defusedxml.ElementTree import iterparse

    rows = height = width = 0
    row_index = 0  # rows seen so far (repeats counted)
    cells_in_row: list[tuple[int, bool]] = []
    try:
        with zf.open("content.xml") as fh:
            for event, elem in iterparse(fh, events=("start", "end")):
                tag = elem.tag
                if event == "start":
                    if tag == _T + "table-row":
                        cells_in_row = []
                    continue
                if tag in (_T + "table-cell", _T + "covered-table-cell"):
                    repeat = _repeat(elem.get(_T + "number-columns-repeated"))
                    filled = elem.get(_O + "value-type") is not None or len(elem) > 0
                    cells_in_row.append((repeat, filled))
                    elem.clear()
                elif tag == _T + "table-row":
                    repeat = _repeat(elem.get(_T + "number-rows-repeated"))
                    col = last = 0
                    for span, filled in cells_in_row:
                        col += span
                        if filled:
                            last = col
                    row_index += repeat
                    if last:
                        rows += repeat
                        height = row_index
                        width = max(width, last)
                        if rows > max_rows() + 1 or height * width > MAX_GRID_CELLS:
                            break  # enough to refuse; no need to read on
                    elem.clear()
                elif tag == _T + "table":
                    break  # the first table only (the one imported)
    except ImportFileInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - anything a hostile or broken content.xml raises
        raise ImportFileInvalid(f"OpenDocument（.ods）文件内容无法读取：{type(exc).__name__}") from None
    return Grid(rows, height, width)


def _repeat(value: str | None) -> int:
    if not value:
        return 1
    try:
        n = int(value)
    except ValueError:
        return 1
    return max(1, min(n, 1 << 31))


def precheck(path: Path) -> None:
    """The structural checks alone (no spreadsheet reader opened): for an upload, before it is queued."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04"):
        with check_zip(path) as zf:
            if is_ods(zf):
                check_grid(ods_grid(zf))
    elif head.startswith(_OLE_MAGIC[:4]):
        check_xls(path)


# --- legacy Excel (.xls, an OLE compound file) -----------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_END = 0xFFFFFFFE
_FREE = 0xFFFFFFFF
# BIFF8 cell records that carry a value (calamine skips BLANK / MULBLANK): row, column first
_CELLS = {0x0006, 0x0203, 0x0204, 0x0205, 0x00FD, 0x027E, 0x00D6}
_MULRK = 0x00BD
_BOF, _EOF = 0x0809, 0x000A


def check_xls(path: Path) -> Grid:
    """Refuse an .xls over :data:`MAX_XLS_BYTES` or whose worksheets span too large a grid."""
    size = path.stat().st_size
    if size > MAX_XLS_BYTES:
        raise ImportFileTooLarge(f"旧版 Excel（.xls）文件超过 {MAX_XLS_BYTES // MiB} MB 上限，{SPLIT}（或另存为 .xlsx / .csv）")
    try:
        stream = _workbook_stream(path.read_bytes())
        grid = _biff_grid(stream)
    except ImportFileInvalid:
        raise
    except (struct.error, IndexError, ValueError, KeyError):
        raise ImportFileInvalid("旧版 Excel（.xls）文件已损坏或格式不受支持，请在 Excel 中另存为 .xlsx 后再导入") from None
    check_grid(grid)
    return grid


def _workbook_stream(data: bytes) -> bytes:
    """The ``Workbook`` (BIFF8) or ``Book`` (BIFF5) stream of a compound file."""
    if not data.startswith(_OLE_MAGIC):
        raise ValueError("not OLE")
    shift, mini_shift = struct.unpack_from("<HH", data, 0x1E)
    if shift not in (9, 12) or mini_shift != 6:
        raise ValueError("sector size")
    sector = 1 << shift
    n_fat, first_dir = struct.unpack_from("<II", data, 0x2C)
    cutoff, first_minifat, n_minifat, first_difat, n_difat = struct.unpack_from("<IIIII", data, 0x38)

    def at(n: int) -> bytes:
        start = (n + 1) * sector
        if n >= _END - 16 or start + sector > len(data) + sector:  # a short last sector is tolerated
            raise ValueError("sector out of range")
        return data[start:start + sector]

    fat_sectors = [s for s in struct.unpack_from("<109I", data, 0x4C) if s != _FREE]
    difat, seen = first_difat, 0
    while difat not in (_END, _FREE) and seen < n_difat + 1:
        entries = struct.unpack(f"<{sector // 4}I", at(difat))
        fat_sectors += [s for s in entries[:-1] if s != _FREE]
        difat, seen = entries[-1], seen + 1
    fat: list[int] = []
    for s in fat_sectors[:n_fat]:
        fat.extend(struct.unpack(f"<{sector // 4}I", at(s)))
    limit = len(data) // sector + 2

    def chain(start: int, table: list[int], read) -> bytes:  # noqa: ANN001
        out, n, hops = [], start, 0
        while n not in (_END, _FREE):
            if n >= len(table) or hops > limit * 64:
                raise ValueError("broken chain")
            out.append(read(n))
            n, hops = table[n], hops + 1
        return b"".join(out)

    directory = chain(first_dir, fat, at)
    entries = {}
    root = None
    for off in range(0, len(directory) - 127, 128):
        name_len, kind = struct.unpack_from("<HB", directory, off + 0x40)
        name = directory[off:off + max(0, min(name_len, 64) - 2)].decode("utf-16-le", "replace")
        start, stream_size = struct.unpack_from("<II", directory, off + 0x74)
        if kind == 5:
            root = (start, stream_size)
        elif kind == 2:
            entries[name.lower()] = (start, stream_size)
    start, stream_size = entries.get("workbook") or entries["book"]
    if stream_size > MAX_XLS_BYTES:
        raise ValueError("stream size")
    if stream_size >= cutoff:
        return chain(start, fat, at)[:stream_size]
    if root is None:
        raise ValueError("no root")
    ministream = chain(root[0], fat, at)
    minifat: list[int] = []
    if n_minifat:
        raw = chain(first_minifat, fat, at)
        minifat = list(struct.unpack(f"<{len(raw) // 4}I", raw))
    mini = 1 << mini_shift
    return chain(start, minifat, lambda n: ministream[n * mini:(n + 1) * mini])[:stream_size]


def _biff_grid(stream: bytes) -> Grid:
    """The largest grid any worksheet of the stream spans, and its rows holding values."""
    pos, depth = 0, 0
    best = Grid(0, 0, 0)
    rows: set[int] = set()
    height = width = 0
    unpack = struct.unpack_from
    while pos + 4 <= len(stream):
        rtype, length = unpack("<HH", stream, pos)
        body = pos + 4
        pos = body + length
        if rtype == _BOF:
            depth += 1
            rows, height, width = set(), 0, 0
        elif rtype == _EOF:
            depth -= 1
            if len(rows) > best.rows or height * width > best.cells:
                best = Grid(max(best.rows, len(rows)), max(best.height, height), max(best.width, width))
        elif rtype in _CELLS and length >= 4:
            row, col = unpack("<HH", stream, body)
            rows.add(row)
            height, width = max(height, row + 1), max(width, col + 1)
        elif rtype == _MULRK and length >= 6:
            row, _first = unpack("<HH", stream, body)
            (last,) = unpack("<H", stream, body + length - 2)
            rows.add(row)
            height, width = max(height, row + 1), max(width, last + 1)
    return best
