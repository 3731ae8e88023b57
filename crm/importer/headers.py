"""The header row: Chinese column names and their common variants, mapped to fields.

Names are compared after folding (full-width to half-width, spaces, ``*`` required-markers and
brackets dropped, so ``手机号码*``, ``手机 号`` and ``金额（万元）`` all match). Amount columns
carry their unit in the name: a column whose name says 万元 (or 万) holds 万元 and every value is
multiplied by 10,000; any other amount column holds yuan.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from crm.importer.errors import ImportHeadersInvalid

# field -> (label shown to people, accepted names after folding)
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "name": ("姓名", ("姓名", "客户姓名", "名字", "客户名称", "客户", "联系人", "name")),
    "phone": ("手机号", ("手机号", "手机", "电话", "联系电话", "手机号码", "电话号码", "联系方式", "mobile", "phone")),
    "id_number": ("身份证号", ("身份证号", "身份证", "证件号码", "身份证号码", "证件号", "idnumber", "idcard")),
    "region": ("城市", ("城市", "地区", "所在城市", "所在地区", "区域", "city", "region")),
    "amount": ("贷款金额", ("贷款金额", "需求金额", "金额", "意向金额", "借款金额", "amount")),
    "source": ("来源", ("来源", "渠道", "线索来源", "客户来源", "source")),
    "customer_type": ("客户类型", ("客户类型", "贷款类型", "产品类型", "类型", "type")),
    "term": ("期限", ("期限", "贷款期限", "借款期限", "期数", "term")),
    "purpose": ("用途", ("用途", "贷款用途", "借款用途", "资金用途", "purpose")),
    "grade": ("等级", ("等级", "客户等级", "grade")),
    "note": ("备注", ("备注", "说明", "note", "remark")),
}
IDENTITY_FIELDS = ("phone", "id_number")
_WAN = ("万元", "万")
_LOOKUP: dict[str, str] = {alias: fname for fname, (_, names) in ALIASES.items() for alias in names}


def fold(name: object) -> str:
    text = unicodedata.normalize("NFKC", "" if name is None else str(name)).strip().lower()
    return re.sub(r"[\s*＊:：_\-]", "", text)


def _split_unit(folded: str) -> tuple[str, str | None]:
    """'贷款金额(万元)' -> ('贷款金额', '万元'); '金额万元' -> ('金额', '万元')."""
    match = re.fullmatch(r"(.+?)[(\[（【]([^)\]）】]*)[)\]）】]", folded)
    if match:
        return match.group(1), match.group(2)
    for unit in (*_WAN, "元"):
        if folded.endswith(unit) and folded[: -len(unit)] in _LOOKUP:
            return folded[: -len(unit)], unit
    return folded, None


@dataclass
class HeaderMap:
    """Which column holds which field, and what the file's header row said."""

    columns: dict[str, int]
    original: list[str]
    amount_in_wan: bool = False
    ignored: list[str] = field(default_factory=list)
    row_number: int = 1

    def label(self, fname: str) -> str:
        return ALIASES[fname][0]


def match_headers(cells: list[object], row_number: int = 1) -> HeaderMap:
    """Map a header row; unknown columns are kept (they go to the report) but not imported."""
    original = ["" if c is None else str(c).strip() for c in cells]
    columns: dict[str, int] = {}
    ignored: list[str] = []
    amount_in_wan = False
    for i, raw in enumerate(original):
        if not raw:
            continue
        base, unit = _split_unit(fold(raw))
        fname = _LOOKUP.get(base)
        if fname is None or fname in columns:
            ignored.append(raw)
            continue
        columns[fname] = i
        if fname == "amount":
            amount_in_wan = unit in _WAN
    return HeaderMap(columns, original, amount_in_wan, ignored, row_number)


def is_usable(header: HeaderMap) -> bool:
    return "name" in header.columns and any(f in header.columns for f in IDENTITY_FIELDS)


def find_header(rows: list[tuple[int, list[object]]]) -> HeaderMap:
    """The header is the first of the leading non-empty rows that names the required columns
    (a title row such as "客户导入模板" above it is skipped); otherwise say what is missing."""
    candidates = [(n, cells) for n, cells in rows if any(c not in (None, "") for c in cells)]
    if not candidates:
        raise ImportHeadersInvalid("文件中没有表头行（文件为空？）")
    for n, cells in candidates:
        header = match_headers(cells, n)
        if is_usable(header):
            return header
    n, cells = candidates[0]
    header = match_headers(cells, n)
    missing = []
    if "name" not in header.columns:
        missing.append(f"姓名（可用列名：{'、'.join(ALIASES['name'][1][:3])}）")
    if not any(f in header.columns for f in IDENTITY_FIELDS):
        missing.append(f"手机号或身份证号（可用列名：{'、'.join(ALIASES['phone'][1][:5])}；"
                       f"{'、'.join(ALIASES['id_number'][1][:3])}）")
    found = "、".join(h for h in header.original if h) or "（无）"
    raise ImportHeadersInvalid(f"表头缺少必需的列：{'；'.join(missing)}。文件中的列：{found}",
                               missing=missing, found=[h for h in header.original if h])
