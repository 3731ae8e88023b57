"""PII vault: phone and ID numbers encrypted at rest, found by a keyed blind index, always masked.

* Ciphertext: AES-256-GCM with a random 96-bit nonce; the field kind ("phone", "id_number") is the
  associated data, so a ciphertext moved to another column does not decrypt. Stored as
  ``<key id>.<base64url(nonce || ciphertext)>``: the key id travels with the value, so keys rotate
  (``scrm pii rotate``) without a flag day.
* Blind index: HMAC-SHA256 over ``kind:normalised value`` with a separate key, hex. Equal values give
  equal indexes, which is all exact lookup and dedup need; the index reveals nothing else.
* Masking: :func:`mask_phone` (138****5678) and :func:`mask_id_number` (110101********1234) for every
  display; :class:`MaskingFilter` masks anything that looks like one in every log line.
* Revealing a plaintext to a person goes through ``core.audit.reveal`` so that it is audit-logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from operator import mul

import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from phonenumbers import NumberParseException, PhoneNumberType

from core.errors import AppError, ValidationFailed
from core.settings import get_settings

PHONE = "phone"
ID_NUMBER = "id_number"
PAYLOAD = "payload"  # free text that may carry either (e.g. a chat message typed by a salesperson)
QUALIFICATION = "qualification"  # a customer's sealed qualification figures (JSON: income, employer, debts …)
CUSTOM_FIELD = "custom_field"  # the value of a custom field a manager marked sensitive
KINDS = (PHONE, ID_NUMBER, PAYLOAD, QUALIFICATION, CUSTOM_FIELD)


class VaultError(AppError):
    code = "pii_vault_error"
    status = 500
    message = "敏感信息解密失败"


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    active_id: str
    index_key: bytes

    @classmethod
    def from_settings(cls) -> Keyring:
        s = get_settings()
        if not s.pii_keys or not s.blind_index_key:
            raise VaultError("未配置 SCRM_PII_KEYS / SCRM_BLIND_INDEX_KEY（运行 scrm init-secrets）",
                             code="pii_keys_missing")
        keys: dict[str, bytes] = {}
        for part in s.pii_keys.split(","):
            kid, _, b64 = part.strip().partition(":")
            key = base64.b64decode(b64)
            if not kid or len(key) != 32 or "." in kid:
                raise VaultError(f"SCRM_PII_KEYS 中的密钥 {kid!r} 不是 32 字节 AES-256 密钥",
                                 code="pii_key_invalid")
            keys[kid] = key
        active = s.pii_active_key_id or list(keys)[-1]
        if active not in keys:
            raise VaultError(f"SCRM_PII_ACTIVE_KEY_ID={active} 不在 SCRM_PII_KEYS 中", code="pii_key_invalid")
        index_key = base64.b64decode(s.blind_index_key)
        if len(index_key) < 32:
            raise VaultError("SCRM_BLIND_INDEX_KEY 至少需要 32 字节", code="pii_key_invalid")
        return cls(keys, active, index_key)


@lru_cache
def keyring() -> Keyring:
    return Keyring.from_settings()


def reset_keyring_cache() -> None:
    keyring.cache_clear()


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# --- normalisation ------------------------------------------------------------------------------

# The phonenumbers library's own pattern of a mainland mobile number (its metadata, not ours): an 11-digit
# ASCII number that matches it is what parsing would return, without the ~100 µs parse (lead imports).
MOBILE_PATTERN = re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_ZEROS = ord("0") * sum(_ID_WEIGHTS)


def _fold(text: str) -> str:
    """Full-width to half-width, drop spaces and common separators."""
    text = unicodedata.normalize("NFKC", str(text))
    return re.sub(r"[\s\-()（）]", "", text)


def normalize_phone(raw: str) -> str:
    """A mainland phone number in its national form: a mobile as its 11 digits (13812345678), a landline
    with its area code's trunk 0 (01012345678, 075512345678). Parsed and validated by the phonenumbers
    library: +86 / 0086 / 86 prefixes, full-width digits, spaces, dashes and brackets are accepted;
    numbers outside the mainland, unassigned ranges, service numbers (400/800) are refused."""
    if raw.__class__ is str and len(raw) == 11 and raw.isascii() and MOBILE_PATTERN.fullmatch(raw):
        return raw
    text = _fold(raw)
    try:
        number = phonenumbers.parse(text, "CN")
    except NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationFailed(f"手机号格式不正确：{mask_loose(raw)}（请填写 11 位手机号，或带区号的座机号）",
                               field="phone")
    if number.country_code != 86:
        raise ValidationFailed(f"只支持中国大陆的手机号或座机号：{mask_loose(raw)}", field="phone")
    national = str(number.national_number)
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.MOBILE or (kind == PhoneNumberType.FIXED_LINE_OR_MOBILE and len(national) == 11
                                          and national.startswith("1")):
        return national
    if kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return "0" + national
    raise ValidationFailed(f"手机号格式不正确：{mask_loose(raw)}（400、800 等服务号码不能作为客户电话）",
                           field="phone")


def id_checksum_ok(id_number: str) -> bool:
    """GB 11643 (ISO 7064 MOD 11-2) check digit of an 18-character resident ID number."""
    body = id_number[:17]
    if len(id_number) != 18 or not (body.isascii() and body.isdigit()):
        return False
    total = sum(map(mul, _ID_WEIGHTS, body.encode())) - _ID_ZEROS  # digits as their ASCII codes, less 48 each
    return _ID_CHECK[total % 11] == id_number[17]


def normalize_id_number(raw: str) -> str:
    text = _fold(raw).upper()
    if not id_checksum_ok(text):
        raise ValidationFailed(f"身份证号校验失败：{mask_loose(raw)}", field="id_number")
    return text


def normalize(kind: str, raw: str) -> str:
    if kind == PHONE:
        return normalize_phone(raw)
    if kind == ID_NUMBER:
        return normalize_id_number(raw)
    raise ValueError(f"unknown PII kind {kind}")


# --- encryption and blind index ---------------------------------------------------------------

def seal(kind: str, plaintext: str, ring: Keyring | None = None) -> str:
    ring = ring or keyring()
    nonce = os.urandom(12)
    ct = AESGCM(ring.keys[ring.active_id]).encrypt(nonce, plaintext.encode(), kind.encode())
    return f"{ring.active_id}.{base64.urlsafe_b64encode(nonce + ct).decode().rstrip('=')}"


def key_id_of(token: str) -> str:
    return token.partition(".")[0]


def open_sealed(kind: str, token: str, ring: Keyring | None = None) -> str:
    """Decrypt a sealed value. Callers showing it to a person use ``core.audit.reveal`` instead."""
    ring = ring or keyring()
    kid, _, body = token.partition(".")
    key = ring.keys.get(kid)
    if key is None:
        raise VaultError(f"密钥 {kid} 不存在，无法解密", code="pii_key_unknown")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], kind.encode()).decode()
    except InvalidTag as exc:
        raise VaultError(code="pii_tampered") from exc


def blind_index(kind: str, normalized: str, ring: Keyring | None = None) -> str:
    ring = ring or keyring()
    return hmac.new(ring.index_key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Sealed:
    """What a table stores for one PII field: ciphertext, blind index and the masked form."""

    ciphertext: str
    index: str
    masked: str


def protect(kind: str, raw: str, ring: Keyring | None = None) -> Sealed:
    """Normalise, validate, encrypt and index one value."""
    value = normalize(kind, raw)
    return Sealed(seal(kind, value, ring), blind_index(kind, value, ring), mask(kind, value))


def rotate_token(kind: str, token: str, ring: Keyring | None = None) -> str | None:
    """Re-encrypt a token under the active key; None when it already uses it."""
    ring = ring or keyring()
    if key_id_of(token) == ring.active_id:
        return None
    return seal(kind, open_sealed(kind, token, ring), ring)


# --- masking ----------------------------------------------------------------------------------

def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"


def mask_id_number(id_number: str) -> str:
    return f"{id_number[:6]}{'*' * (len(id_number) - 10)}{id_number[-4:]}" if len(id_number) > 10 else "****"


def mask(kind: str, value: str) -> str:
    return mask_phone(value) if kind == PHONE else mask_id_number(value)


def mask_loose(raw: object) -> str:
    """Mask something that failed validation, for an error message: keep its shape, hide its middle."""
    text = str(raw)
    if len(text) <= 4:
        return "*" * len(text)
    keep = max(1, len(text) // 4)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[-keep:]


_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
# Landlines: trunk 0, the area code (010 and 02x are two digits, the rest three), a 7–8 digit local number
# (010-12345678, 0755 1234567).
_LANDLINE_IN_TEXT = re.compile(r"(?<![\d.])(0(?:10|2\d)|0[3-9]\d\d)([\s-]?)\d{3,4}(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    """Mask every ID number, mobile and landline number found in free text (log lines, error messages)."""
    text = _ID_IN_TEXT.sub(lambda m: f"{m.group(1)}********{m.group(3)}", text)
    text = _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}****{m.group(3)}", text)


class MaskingFilter(logging.Filter):
    """Installed on every handler (root, uvicorn's, celery's): no log line carries a plaintext phone
    or ID number, neither in its message nor in the traceback or stack attached to it.

    A record whose formatter reads ``record.args`` itself (uvicorn's access log unpacks the
    request line from them) keeps its args, each masked; otherwise the masked message replaces
    ``msg`` and ``args``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            message = None
        if message is not None:
            masked = mask_text(message)
            if masked != message:
                args = record.args
                kept = False
                if isinstance(args, tuple) and args:
                    record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in args)
                    try:
                        kept = record.getMessage() == masked
                    except Exception:  # noqa: BLE001
                        kept = False
                if not kept:
                    record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
