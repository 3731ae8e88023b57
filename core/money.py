"""Money: integer fen (分) everywhere, Decimal for rates and interest, rounded once, explicitly.

Floats are refused: ``to_fen(0.1)`` raises. Amounts cross the API as yuan strings ("1234.56")
or integer fen, never as floats.
"""

from __future__ import annotations

import re
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


_YUAN_TEXT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９．", "0123456789.")


def yuan_text_to_fen(raw: str | int | Decimal | None, *, field: str = "amount", label: str = "金额") -> int | None:
    """A yuan amount typed by a person or sent by a program, as integer fen; empty means none.

    Accepts "120000", "120,000.5", "１２００００" (full-width); refuses floats, negatives, more than two
    decimals, exponents and anything else with a Chinese message naming the field.
    """
    if raw is None:
        return None
    if isinstance(raw, float | bool):
        raise ValidationFailed(f"{label}请填写以元为单位的数字文本（如 \"8000.00\"），不接受浮点数", field=field)
    text = re.sub(r"[\s,，]", "", str(raw)).translate(_FULL_WIDTH_DIGITS)
    if text == "":
        return None
    if text.startswith("-"):
        raise ValidationFailed(f"{label}不能为负数", field=field)
    if not _YUAN_TEXT.match(text):
        raise ValidationFailed(f"{label}格式不正确：请填写以元为单位的数字，最多两位小数", field=field)
    return yuan_to_fen(text)
