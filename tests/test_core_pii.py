import base64
import logging

import pytest

from core import pii
from core.errors import ValidationFailed

VALID_ID = "11010519491231002X"


@pytest.mark.parametrize("raw", ["13812345678", "+86 138 1234 5678", "８６１３８１２３４５６７８", "0086-138-1234-5678",
                                 "１３８１２３４５６７８"])
def test_phone_variants_normalise_to_eleven_digits(raw):
    assert pii.normalize_phone(raw) == "13812345678"


@pytest.mark.parametrize("raw", ["1381234567", "23812345678", "138123456789", "abc", ""])
def test_bad_phones_are_refused_without_echoing_them(raw):
    with pytest.raises(ValidationFailed) as info:
        pii.normalize_phone(raw)
    assert "13812345678" not in info.value.message


@pytest.mark.parametrize(("raw", "expected"), [
    ("010-12345678", "01012345678"),  # Beijing landline
    ("(0755) 1234 5678", "075512345678"),  # Shenzhen, brackets and spaces
    ("+86 10 1234 5678", "01012345678"),
    ("0086 21 1234 5678", "02112345678"),
    ("０２０－１２３４５６７８", "02012345678"),  # full-width digits and dash
    ("+86 166 1234 5678", "16612345678"),
    ("008619912345678", "19912345678"),
])
def test_mainland_landlines_and_mobiles_normalise_to_their_national_form(raw, expected):
    assert pii.normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", [
    "14012345678",  # 140 is no mobile range
    "15412345678",
    "010-1234567",  # Beijing numbers have 8 digits
    "+1 415 555 2671",  # not mainland
    "+852 2123 4567",  # Hong Kong
    "400-812-3123",  # a service number is not a customer's phone
    "12345678",  # a landline without its area code
])
def test_numbers_the_library_finds_invalid_or_not_mainland_are_refused(raw):
    with pytest.raises(ValidationFailed) as info:
        pii.normalize_phone(raw)
    assert info.value.details == {"field": "phone"}


def test_the_fast_path_agrees_with_parsing_on_eleven_digit_numbers():
    import random

    rng = random.Random(17)
    for _ in range(3000):
        raw = "1" + "".join(rng.choice("0123456789") for _ in range(10))
        fast = bool(pii.MOBILE_PATTERN.fullmatch(raw))
        try:
            slow = pii.normalize_phone(" " + raw)  # the space sends it through the library's parser
        except ValidationFailed:
            slow = None
        assert (raw if fast else None) == slow, raw


def test_id_checksum_gb11643():
    assert pii.id_checksum_ok(VALID_ID)
    assert not pii.id_checksum_ok("110105194912310021")
    assert pii.normalize_id_number("11010519491231002x") == VALID_ID
    with pytest.raises(ValidationFailed):
        pii.normalize_id_number("110105194912310021")


def test_seal_round_trip_and_kind_binding():
    token = pii.seal(pii.PHONE, "13812345678")
    assert "13812345678" not in token
    assert pii.open_sealed(pii.PHONE, token) == "13812345678"
    with pytest.raises(pii.VaultError):  # the kind is associated data: moved ciphertexts fail
        pii.open_sealed(pii.ID_NUMBER, token)


def test_tampered_ciphertext_is_refused():
    token = pii.seal(pii.PHONE, "13812345678")
    kid, _, body = token.partition(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(pii.VaultError):
        pii.open_sealed(pii.PHONE, f"{kid}.{flipped}")


def test_same_value_gives_same_blind_index_and_different_ciphertext():
    a, b = pii.protect(pii.PHONE, "13812345678"), pii.protect(pii.PHONE, "+86 13812345678")
    assert a.index == b.index
    assert a.ciphertext != b.ciphertext
    assert a.index != pii.protect(pii.PHONE, "13812345679").index


def test_blind_index_separates_kinds():
    assert pii.blind_index(pii.PHONE, "1") != pii.blind_index(pii.ID_NUMBER, "1")


def test_masks():
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_id_number(VALID_ID) == "110105********002X"
    assert pii.mask_text("call 13812345678 or id 11010519491231002X") == "call 138****5678 or id 110105********002X"


@pytest.mark.parametrize(("text", "masked"), [
    ("座机 010-12345678", "座机 010-****5678"),
    ("tel 0755 1234567.", "tel 0755 ****4567."),
    ("02112345678", "021****5678"),
    ("+86 138 1234 5678", "138****5678"),
    ("138-1234-5678", "138****5678"),
    # not phone numbers: a date, a decimal, a short reference, a long order number
    ("2026-12-06 0.0123456789 ref 0000012 order 20261206123456789",
     "2026-12-06 0.0123456789 ref 0000012 order 20261206123456789"),
])
def test_landlines_and_spaced_mobiles_are_masked_in_text(text, masked):
    assert pii.mask_text(text) == masked


def test_log_lines_are_masked(caplog):
    logger = logging.getLogger("scrm.test")
    logger.addFilter(pii.MaskingFilter())
    with caplog.at_level(logging.INFO, logger="scrm.test"):
        logger.info("customer %s id %s", "13812345678", VALID_ID)
    assert "13812345678" not in caplog.text and VALID_ID not in caplog.text
    assert "138****5678" in caplog.text


def test_rotation_re_encrypts_under_the_active_key():
    old = pii.Keyring({"k1": b"\x03" * 32}, "k1", b"\x04" * 32)
    new = pii.Keyring({"k1": b"\x03" * 32, "k2": b"\x05" * 32}, "k2", b"\x04" * 32)
    token = pii.seal(pii.PHONE, "13812345678", old)
    rotated = pii.rotate_token(pii.PHONE, token, new)
    assert rotated is not None and pii.key_id_of(rotated) == "k2"
    assert pii.open_sealed(pii.PHONE, rotated, new) == "13812345678"
    assert pii.rotate_token(pii.PHONE, rotated, new) is None


def test_short_keys_are_refused(monkeypatch):
    from core.settings import reset_settings_cache

    monkeypatch.setenv("SCRM_PII_KEYS", "k1:" + base64.b64encode(b"short").decode())
    reset_settings_cache()
    try:
        with pytest.raises(pii.VaultError):
            pii.Keyring.from_settings()
    finally:
        monkeypatch.undo()
        reset_settings_cache()
