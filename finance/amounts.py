"""Money in: integer fen, never negative, never a fraction of a fen, never a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationFailed
from core.money import parse_yuan_text
from finance.exceptions import AmountInvalid

MAX_AMOUNT = 10**13  # fen: 1000 亿元, far beyond any case


def fen(value: Any, label: str, field: str, *, allow_zero: bool = False) -> int:
    """An amount given in fen (an int): refused with the reason when negative, zero (unless allowed) or too large."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AmountInvalid(f"{label}必须是整数分", field=field)
    if value < 0:
        raise AmountInvalid(f"{label}不能为负数", field=field)
    if value == 0 and not allow_zero:
        raise AmountInvalid(f"{label}必须大于 0", field=field)
    if value > MAX_AMOUNT:
        raise AmountInvalid(f"{label}过大", field=field)
    return value


def yuan_text(text: str | None, label: str, field: str, *, allow_zero: bool = False,
              required: bool = True) -> int | None:
    """A yuan amount typed by a person ("1,234.56", "20万", "8,000元": core.money.parse_yuan_text, the parser of
    every console money field) in fen; a fraction of a fen is refused."""
    try:
        value = parse_yuan_text(text, label=label, field=field)
    except ValidationFailed as exc:
        raise AmountInvalid(exc.message, field=field) from None
    if value is None:
        if required:
            raise AmountInvalid(f"请填写{label}", field=field)
        return None
    return fen(value, label, field, allow_zero=allow_zero)


def rate_text(text: str | None, label: str, field: str) -> Decimal:
    """A percentage typed by a person ("3" or "3%" is 3%) as a Decimal fraction, 0 ≤ rate < 100%."""
    raw = (text or "").strip().rstrip("%")
    if not raw:
        return Decimal(0)
    try:
        value = Decimal(raw) / 100
    except InvalidOperation:
        raise AmountInvalid(f"{label}格式不正确：{text}", field=field) from None
    if not value.is_finite() or value < 0 or value >= 1:
        raise AmountInvalid(f"{label}须在 0 到 100% 之间：{text}", field=field)
    return value
