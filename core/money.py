"""Money: integer fen (分) everywhere, Decimal for rates and interest, rounded once, explicitly.

Floats are refused: ``to_fen(0.1)`` raises. Amounts cross the API as yuan strings ("1234.56")
or integer fen, never as floats.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

from core.errors import ValidationFailed

FEN_PER_YUAN = 100
CENT = Decimal("0.01")


class Rounding(StrEnum):
    HALF_UP = "half_up"
    HALF_EVEN = "half_even"

    @property
    def decimal_mode(self) -> str:
        return ROUND_HALF_UP if self is Rounding.HALF_UP else ROUND_HALF_EVEN


def quantize(value: Decimal, rounding: Rounding = Rounding.HALF_UP, digits: int = 2) -> Decimal:
    """Round a Decimal to ``digits`` places with the given mode."""
    if not isinstance(value, Decimal):
        raise TypeError(f"quantize() needs a Decimal, got {type(value).__name__}")
    return value.quantize(Decimal(1).scaleb(-digits), rounding=rounding.decimal_mode)


def yuan_to_fen(yuan: Decimal | str | int, rounding: Rounding = Rounding.HALF_UP) -> int:
    """Convert yuan (Decimal, decimal string or int) to integer fen, rounding once."""
    if isinstance(yuan, float) or isinstance(yuan, bool):
        raise TypeError("money must not be a float")
    try:
        value = Decimal(str(yuan).strip().replace(",", "")) if not isinstance(yuan, Decimal) else yuan
    except InvalidOperation as exc:
        raise ValidationFailed(f"金额格式不正确：{yuan}", field="amount") from exc
    if not value.is_finite():
        raise ValidationFailed(f"金额格式不正确：{yuan}", field="amount")
    return int((value * FEN_PER_YUAN).quantize(Decimal(1), rounding=rounding.decimal_mode))


def fen_to_yuan(fen: int) -> Decimal:
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError("fen must be an int")
    return (Decimal(fen) / FEN_PER_YUAN).quantize(CENT)


def format_yuan(fen: int, *, symbol: bool = True, grouping: bool = True) -> str:
    """The one yuan formatter: 123456 -> '¥1,234.56'; negative amounts keep their sign."""
    value = fen_to_yuan(fen)
    text = f"{abs(value):,.2f}" if grouping else f"{abs(value):.2f}"
    sign = "-" if value < 0 else ""
    return f"{sign}{'¥' if symbol else ''}{text}"


def parse_rate(rate: Decimal | str | int) -> Decimal:
    """A rate as a Decimal fraction ("0.12" is 12%). Percent strings like "12%" are accepted."""
    if isinstance(rate, float) or isinstance(rate, bool):
        raise TypeError("rates must not be floats")
    text = str(rate).strip()
    try:
        if text.endswith("%"):
            return Decimal(text[:-1]) / 100
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValidationFailed(f"利率格式不正确：{rate}", field="rate") from exc


WAN = Decimal(10000)
MAX_TYPED_FEN = 10**13  # 1000 亿元: beyond any case, and far inside BIGINT
_AMOUNT_TEXT = re.compile(r"\d+(\.\d+)?")
_AMOUNT_NOISE = re.compile(r"[\s,¥]")


def parse_yuan_text(raw: object, *, label: str = "金额", field: str = "amount", in_wan: bool = False,
                    max_fen: int = MAX_TYPED_FEN) -> int | None:
    """An amount as people and spreadsheets write it, as integer fen; empty is None. The one parser behind
    every console money field and the lead importer: "120000", "1,200,000元", "20万", "3.5万元", "¥8,000",
    full-width "１２００００". ``in_wan``: a bare number is 万元 (an importer column headed so). Refused with a
    Chinese message naming the field (``label``): not a number, negative, a fraction of a fen, above ``max_fen``.
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or isinstance(raw, float):
        raise ValidationFailed(f"{label}格式不正确：请填写以元为单位的数字文本（如 \"8000.00\"），不接受浮点数",
                               field=field)
    shown = str(raw).strip()[:20]
    text = _AMOUNT_NOISE.sub("", unicodedata.normalize("NFKC", str(raw)))
    if not text:
        return None
    wan = in_wan
    if text.endswith("万元") or text.endswith("万"):
        text, wan = text.removesuffix("元").removesuffix("万"), True
    elif text.endswith("元"):
        text = text[:-1]
    if text.startswith("-") and _AMOUNT_TEXT.fullmatch(text[1:]):
        raise ValidationFailed(f"{label}不能为负数", field=field)
    if not _AMOUNT_TEXT.fullmatch(text):
        raise ValidationFailed(f"{label}格式不正确：{shown}（可写 120000、1,200,000元 或 20万）", field=field)
    yuan = Decimal(text) * WAN if wan else Decimal(text)
    if yuan != yuan.quantize(CENT):
        raise ValidationFailed(f"{label}最多保留两位小数，不能有不足一分的零头：{shown}", field=field)
    fen = int(yuan * FEN_PER_YUAN)
    if fen > max_fen:
        raise ValidationFailed(f"{label}超出范围（最多 {format_yuan(max_fen)}）", field=field)
    return fen
