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
