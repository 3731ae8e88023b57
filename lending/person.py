"""Facts about a person read from the resident ID number (GB 11643): birth date and age.

The plaintext ID number exists only inside these functions: it is opened from the customer's sealed
token (``core.pii.open_sealed``), read, and dropped. Nothing here stores or logs it.
"""

from __future__ import annotations

from datetime import date

from core import clock, pii
from core.errors import ValidationFailed


def birth_date(id_number: str) -> date:
    """The birth date in an 18-character ID number (characters 7–14, YYYYMMDD), checksum verified."""
    number = pii.normalize_id_number(id_number)
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationFailed(f"身份证号中的出生日期不正确：{pii.mask_id_number(number)}",
                               field="id_number") from None


def age_on(born: date, day: date) -> int:
    """Whole years of age on ``day`` (a 29 February birthday turns over on 1 March in common years)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def age_from_id_number(id_number: str, day: date | None = None) -> int:
    return age_on(birth_date(id_number), day or clock.today())


def age_from_sealed(token: str | None, day: date | None = None) -> int | None:
    """Age from a sealed ID number (``Customer.id_number_enc``); None when there is none."""
    if not token:
        return None
    return age_from_id_number(pii.open_sealed(pii.ID_NUMBER, token), day)
