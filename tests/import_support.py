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
