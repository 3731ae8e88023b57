"""One row of the file: parse, normalise and validate, with every problem said in Chinese.

Amounts are yuan (or 万元 when the column says so, or when the cell itself ends in 万) and
become integer fen through Decimal only: an Excel number arrives as int or float and is turned
into a Decimal from its shortest round-trip text (``repr``), never through float arithmetic.
More than two decimals of a yuan, a negative amount or one above 1 亿元 are refused.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from core import money, pii
from core.errors import ValidationFailed
from crm.customers import MAX_DEMAND_AMOUNT
from crm.importer.headers import HeaderMap
from crm.models import CustomerType

WAN = Decimal(10000)
CENT = Decimal("0.01")
MAX_YUAN = Decimal(MAX_DEMAND_AMOUNT) / 100
LIMITS = {"name": 64, "region": 40, "purpose": 120, "note": 1000, "source": 40}

TYPE_NAMES: dict[str, str] = {
    "未知": CustomerType.UNKNOWN, "信用贷": CustomerType.CREDIT, "信用贷款": CustomerType.CREDIT, "信贷": CustomerType.CREDIT,
    "房抵贷": CustomerType.MORTGAGE, "房产抵押": CustomerType.MORTGAGE, "房贷": CustomerType.MORTGAGE,
    "抵押贷": CustomerType.MORTGAGE, "房屋抵押贷": CustomerType.MORTGAGE,
    "车抵贷": CustomerType.CAR, "车贷": CustomerType.CAR, "汽车抵押": CustomerType.CAR,
    "经营贷": CustomerType.BUSINESS, "企业贷": CustomerType.BUSINESS, "经营性贷款": CustomerType.BUSINESS,
    "其他": CustomerType.OTHER, "其它": CustomerType.OTHER,
    **{t.value: t.value for t in CustomerType},
}
_FAST_PHONE = pii.MOBILE_PATTERN  # the library's mobile pattern (core.pii.normalize_phone)
_TERM = re.compile(r"(\d+)(个月|月|期|年)?")


@dataclass(slots=True)
class Lead:
    """A valid row, normalised: plaintext identifiers exist only in memory, until sealed."""

    row_number: int
    name: str
    phone: str | None
    id_number: str | None
    source: str
    region: str | None = None
    customer_type: str = CustomerType.UNKNOWN
    demand_amount: int | None = None
    demand_term_months: int | None = None
    demand_purpose: str | None = None
    grade: str | None = None
    note: str | None = None


def cell_text(value: object) -> str:
    """A spreadsheet cell as trimmed text (a whole float as an integer: 13800138000.0 -> 13800138000)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _identifier(value: object) -> str:
    """A phone or ID cell as text; Excel may have stored it as a number."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else repr(value)
    return "" if value is None else str(value).strip()


def parse_phone(value: object) -> str:
    text = _identifier(value)
    if len(text) == 11 and text.isascii() and _FAST_PHONE.fullmatch(text):
        return text
    return pii.normalize_phone(text)


def parse_id_number(value: object) -> str:
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool) and value >= 10 ** 15):
        # 18 digits do not fit a double: Excel already rounded it; the last digits are lost.
        raise ValidationFailed("身份证号被 Excel 存成了数字，末几位已丢失，请把该列设为“文本”格式后重新填写",
                               field="id_number")
    return pii.normalize_id_number(_identifier(value))


_FEN = {False: (100, 2), True: (1_000_000, 6)}  # fen per unit, decimals a value may carry (yuan | 万元)


def _plain_amount(text: str, in_wan: bool) -> int | None:
    """Fen of a plain ASCII amount (``5``, ``30.5``, digits only, within its unit's decimals and the
    limit), exactly as the Decimal path computes it; None: anything else goes the Decimal way."""
    whole, dot, frac = text.partition(".")
    per_unit, places = _FEN[in_wan]
    if not (whole.isascii() and whole.isdigit()) or (dot and not (frac.isascii() and frac.isdigit()
                                                                   and len(frac) <= places)):
        return None
    fen = int(whole) * per_unit + (int(frac) * 10 ** (places - len(frac)) if frac else 0)
    return fen if fen <= MAX_DEMAND_AMOUNT else None


def parse_amount(value: object, *, in_wan: bool) -> int | None:
    """Yuan (or 万元) to fen, Decimal only."""
    if value.__class__ is str:
        fen = _plain_amount(value, in_wan)  # type: ignore[arg-type]
        if fen is not None:
            return fen
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValidationFailed(f"贷款金额格式不正确：{value}", field="amount")
    wan = in_wan
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationFailed("贷款金额格式不正确", field="amount")
        amount = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationFailed("贷款金额格式不正确", field="amount")
        amount = Decimal(repr(value))
    else:  # text: the parser of every console money field ("20万", "1,200,000元")
        fen = money.parse_yuan_text(value, label="贷款金额", field="amount", in_wan=in_wan)
        if fen is not None and fen > MAX_DEMAND_AMOUNT:
            raise ValidationFailed("贷款金额超出范围（0–1 亿元）" + ("，注意该列单位是万元" if in_wan else ""),
                                   field="amount")
        return fen
    yuan = amount * WAN if wan else amount
    if yuan < 0:
        raise ValidationFailed("贷款金额不能为负数", field="amount")
    if yuan > MAX_YUAN:
        raise ValidationFailed("贷款金额超出范围（0–1 亿元）" + ("，注意该列单位是万元" if wan else ""), field="amount")
    if yuan != yuan.quantize(CENT):
        raise ValidationFailed("贷款金额最多保留两位小数（分）", field="amount")
    return int(yuan * 100)


_TERM_UNITS = (("个月", 1), ("月", 1), ("期", 1), ("年", 12))


def parse_term(value: object) -> int | None:
    if type(value) is str and not (value.isascii() and value.isdigit()):
        for unit, factor in _TERM_UNITS:  # "24个月", "3年": the common spellings, without normalising
            number = value[:-len(unit)]
            if value.endswith(unit) and number.isascii() and number.isdigit():
                months = int(number) * factor
                if 1 <= months <= 360:
                    return months
                break
    if type(value) is int or (type(value) is str and value.isascii() and value.isdigit()):
        months = int(value)
        if not 1 <= months <= 360:
            raise ValidationFailed("贷款期限必须在 1–360 个月之间", field="term")
        return months
    text = unicodedata.normalize("NFKC", cell_text(value)).replace(" ", "")
    if not text:
        return None
    match = _TERM.fullmatch(text)
    if not match:
        raise ValidationFailed(f"贷款期限格式不正确：{text[:20]}（填写月数，如 12 或 12个月、1年）", field="term")
    months = int(match.group(1)) * (12 if match.group(2) == "年" else 1)
    if not 1 <= months <= 360:
        raise ValidationFailed("贷款期限必须在 1–360 个月之间", field="term")
    return months


def parse_type(value: object) -> str:
    if type(value) is str and value in TYPE_NAMES:
        return TYPE_NAMES[value]
    text = unicodedata.normalize("NFKC", cell_text(value)).replace(" ", "")
    if not text:
        return CustomerType.UNKNOWN  # a blank type is not known to be 信用贷
    found = TYPE_NAMES.get(text) or TYPE_NAMES.get(text.lower())
    if found is None:
        raise ValidationFailed(f"未知的客户类型：{text[:20]}（可填：信用贷、房抵贷、车抵贷、经营贷、其他、未知）",
                               field="customer_type")
    return found


def _limited(value: object, fname: str, label: str, errors: list[str]) -> str | None:
    text = value.strip() if type(value) is str else cell_text(value)
    if len(text) > LIMITS[fname]:
        errors.append(f"{label}过长（最多 {LIMITS[fname]} 字）")
        return None
    return text or None


def parse_row(header: HeaderMap, row_number: int, cells: list[object], *, default_source: str,
              grades: frozenset[str] = frozenset()) -> Lead | list[str]:
    """A :class:`Lead`, or the row's error messages (all of them, not only the first)."""
    cols = header.columns
    width = len(cells)
    get = cols.get

    def cell(fname: str) -> object:
        i = get(fname)
        return cells[i] if i is not None and i < width else None

    errors: list[str] = []
    phone = id_number = None
    raw_phone, raw_id = cell("phone"), cell("id_number")
    if raw_phone is not None and raw_phone != "":
        if type(raw_phone) is str and len(raw_phone) == 11 and raw_phone.isascii() and _FAST_PHONE.fullmatch(raw_phone):
            phone = raw_phone
        else:
            try:
                phone = parse_phone(raw_phone)
            except ValidationFailed as exc:
                errors.append(exc.message)
    if raw_id is not None and raw_id != "":
        if type(raw_id) is str and len(raw_id) == 18 and raw_id.isascii() and pii.id_checksum_ok(raw_id.upper()):
            id_number = raw_id.upper()  # already what normalising would give
        else:
            try:
                id_number = parse_id_number(raw_id)
            except ValidationFailed as exc:
                errors.append(exc.message)
    if (raw_phone is None or raw_phone == "") and (raw_id is None or raw_id == ""):
        errors.append("缺少手机号和身份证号（至少填写一项）")
    raw_name = cell("name")
    name = raw_name.strip() if type(raw_name) is str else cell_text(raw_name)
    if len(name) > LIMITS["name"]:
        errors.append(f"姓名过长（最多 {LIMITS['name']} 字）")
    lead = Lead(row_number, name, phone, id_number, default_source)
    if "source" in cols:
        source = cell_text(cell("source"))
        lead.source = pii.mask_text(source)[: LIMITS["source"]] if source else default_source
    if "region" in cols:
        lead.region = _limited(cell("region"), "region", "城市", errors)
    if "purpose" in cols:
        lead.demand_purpose = _limited(cell("purpose"), "purpose", "用途", errors)
    if "note" in cols:
        lead.note = _limited(cell("note"), "note", "备注", errors)
    if "amount" in cols:
        try:
            lead.demand_amount = parse_amount(cell("amount"), in_wan=header.amount_in_wan)
        except ValidationFailed as exc:
            errors.append(exc.message)
    if "term" in cols:
        try:
            lead.demand_term_months = parse_term(cell("term"))
        except ValidationFailed as exc:
            errors.append(exc.message)
    if "customer_type" in cols:
        try:
            lead.customer_type = parse_type(cell("customer_type"))
        except ValidationFailed as exc:
            errors.append(exc.message)
    if "grade" in cols:
        grade = cell_text(cell("grade")).upper()
        if grade and grade not in grades:
            errors.append(f"未知的客户等级：{grade[:8]}")
        lead.grade = grade or None
    return errors or lead
