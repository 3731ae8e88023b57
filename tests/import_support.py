"""Helpers of the lead-import tests: small spreadsheets built with openpyxl / csv (no tests here)."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

HEADER = ["姓名", "手机号", "身份证号", "城市", "贷款金额", "期限", "客户类型", "备注"]
_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_id(n: int) -> str:
    body = f"110105{1970 + n % 30}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _W, strict=True)) % 11]


def xlsx(path: Path, rows: list[list[object]], header: list[object] | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(header if header is not None else HEADER)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def csv_file(path: Path, rows: list[list[object]], header: list[object] | None = None,
             encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header if header is not None else HEADER)
        w.writerows(rows)
    return path


def xls(path: Path, rows: list[list[object]], header: list[object] | None = None) -> Path:
    """A legacy Excel (.xls, BIFF8) file, written with xlwt."""
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Sheet1")
    for r, row in enumerate([header if header is not None else HEADER, *rows]):
        for c, value in enumerate(row):
            if value is not None:
                ws.write(r, c, value)
    wb.save(str(path))
    return path


_ODS_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')


def ods_cell(value: object, repeat: int = 1) -> str:
    rep = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    if value is None:
        return f"<table:table-cell{rep}/>"
    if isinstance(value, int | float):
        return (f'<table:table-cell{rep} office:value-type="float" office:value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>")
    from xml.sax.saxutils import escape

    return f'<table:table-cell{rep} office:value-type="string"><text:p>{escape(str(value))}</text:p></table:table-cell>'


def ods(path: Path, rows: list[list[object]], header: list[object] | None = None, *, raw_rows: str = "") -> Path:
    """An OpenDocument spreadsheet (.ods) written by hand: the zip, its mimetype, manifest and content;
    ``raw_rows`` is appended to the table as given (repeated rows and cells)."""
    import zipfile

    body = "".join("<table:table-row>" + "".join(ods_cell(v) for v in row) + "</table:table-row>"
                   for row in [header if header is not None else HEADER, *rows])
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODS_NS} office:version="1.2">'
               f'<office:body><office:spreadsheet><table:table table:name="Sheet1">{body}{raw_rows}'
               "</table:table></office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", content)
        zf.writestr("META-INF/manifest.xml", manifest)
    return path


def xlsx_bomb(path: Path, expanded_mib: int = 128) -> Path:
    """A small .xlsx (a few hundred KB) whose shared-strings part expands to ``expanded_mib`` MiB."""
    import zipfile

    xlsx(path, [["张三", "13800138000"]], header=["姓名", "手机号"])
    with zipfile.ZipFile(path) as src:
        parts = {name: src.read(name) for name in src.namelist() if name != "xl/sharedStrings.xml"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
            out.write(b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
                      b'spreadsheetml/2006/main"><si><t>\xe5\xa7\x93\xe5\x90\x8d</t></si>'
                      b"<si><t>\xe6\x89\x8b\xe6\x9c\xba\xe5\x8f\xb7</t></si><si><t>13800138000</t></si>")
            block = b"<si><t>AAAAAAAAAAAAAAAAAAAA</t></si>" * (1 << 15)
            for _ in range(expanded_mib * (1 << 20) // len(block)):
                out.write(block)
            out.write(b"</sst>")
    return path
