"""WeChat Pay notification crypto against fixed vectors (a committed RSA test key pair and fixed
AES-256-GCM inputs): the signing and encryption are exactly reproducible, and every way a notification
can be wrong is refused with its own code."""

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from wechatpayv3.utils import aes_decrypt, rsa_verify

from payments import notify_crypto
from payments.exceptions import NotificationRejected

KEYS = Path(__file__).parent / "payments_vectors"
PRIVATE = load_pem_private_key((KEYS / "platform_private.pem").read_bytes(), None)
PUBLIC = load_pem_public_key((KEYS / "platform_public.pem").read_bytes())
KEY_ID = "PUB_KEY_ID_TEST_VECTORS"

APIV3_KEY = "0123456789abcdef0123456789abcdef"
AES_NONCE, AES_AD = "fixednonce12", "transaction"
AES_PLAIN = '{"out_trade_no":"P20261206TEST0001","trade_state":"SUCCESS","amount":{"total":12345,"payer_total":12345}}'
AES_CIPHER = ("YWMX+rP1hW5KKQGBzkSSBnQRp6jAigaLoma/ElMy1UemY005mhRUOHwfXxMMhZptW1TZ94jwrLq1M+gcaCZfchZDUx37FnkXzJl6"
              "RlOD39nZCUWLaP2qDCYrMntHt9Clpa/Kt/oDqzQJs25AIx/l91bPzu+hdpGMjA==")

SIG_TIMESTAMP, SIG_NONCE, SIG_BODY = "1765000000", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", '{"id":"EV-1"}'
SIGNATURE = ("bS+vh7Hj3uc60B16T+2ekg7krCxh+voipxkFBOMtIn/f/ug+cx0GnJ0IFvV4F8xy1tb0tP/NVwzE9dkKDbw41eTpZgYGj3sfGjZ+"
             "ejs5ybqZ3FsPYBP/qvGIiM0dZYLnuL+bLNSCC+WQvA45Dv++iYisVxbZ4GKI8pD39y47BlB8d54rqQqJUTGG6f0jYXp1AzOFX826"
             "/s4nFOyn0yqWE8/YgXG3+KQW+hQK/iDFHu27651NDRwvAXSZb1csAHAq9TqqUUxOKREWATQoes6wRQPHKG71vDHeUVPQsknFzqM3n"
             "S9ucNYlJJrnditWzidseEebS5UoGptFLzsXAgE5JA==")
NOW = 1765000000.0


def test_aes_gcm_encryption_matches_the_fixed_vector():
    assert notify_crypto.encrypt_resource(APIV3_KEY, AES_PLAIN, AES_NONCE, AES_AD) == AES_CIPHER


def test_the_sdk_decrypts_the_fixed_vector_and_refuses_a_wrong_key_or_associated_data():
    assert aes_decrypt(nonce=AES_NONCE, ciphertext=AES_CIPHER, associated_data=AES_AD, apiv3_key=APIV3_KEY) == AES_PLAIN
    assert aes_decrypt(nonce=AES_NONCE, ciphertext=AES_CIPHER, associated_data="refund", apiv3_key=APIV3_KEY) is None
    assert aes_decrypt(nonce=AES_NONCE, ciphertext=AES_CIPHER, associated_data=AES_AD,
                       apiv3_key="f" * 32) is None


def test_rsa_sha256_signature_matches_the_fixed_vector():
    assert notify_crypto.sign(PRIVATE, SIG_TIMESTAMP, SIG_NONCE, SIG_BODY) == SIGNATURE
    assert rsa_verify(SIG_TIMESTAMP, SIG_NONCE, SIG_BODY, SIGNATURE, PUBLIC)
    assert not rsa_verify(SIG_TIMESTAMP, SIG_NONCE, SIG_BODY + " ", SIGNATURE, PUBLIC)


def _notification(**overrides):
    resource = {"out_trade_no": "P20261206TEST0001", "trade_state": "SUCCESS", "transaction_id": "4200001",
                "amount": {"total": 12345, "payer_total": 12345}}
    headers, body = notify_crypto.build(PRIVATE, KEY_ID, APIV3_KEY, event_id="EV-0001",
                                        event_type="TRANSACTION.SUCCESS", resource=resource,
                                        timestamp=overrides.pop("timestamp", str(int(NOW))),
                                        nonce="nonce-0000000001", resource_nonce="resnonce0001")
    return {k.lower(): v for k, v in headers.items()}, body


def _verify(headers, body, **kw):
    return notify_crypto.verify(headers, body, public_key=PUBLIC, public_key_id=KEY_ID, apiv3_key=APIV3_KEY,
                                window_seconds=300, now=kw.get("now", NOW))


def test_a_good_notification_is_verified_and_its_resource_opened():
    headers, body = _notification()
    n = _verify(headers, body)
    assert (n.id, n.event_type, n.nonce) == ("EV-0001", "TRANSACTION.SUCCESS", "nonce-0000000001")
    assert n.resource["amount"]["payer_total"] == 12345


@pytest.mark.parametrize("change, code", [
    (lambda h, b: ({**h, "wechatpay-signature": h["wechatpay-signature"][:-8] + "AAAAAAA="}, b),
     "payment_notification_bad_signature"),
    (lambda h, b: (h, b.replace(b"EV-0001", b"EV-0002")), "payment_notification_bad_signature"),
    (lambda h, b: ({**h, "wechatpay-serial": "PUB_KEY_ID_OTHER"}, b), "payment_notification_unknown_key"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "wechatpay-signature"}, b), "payment_notification_unsigned"),
    (lambda h, b: ({**h, "wechatpay-signature-type": "WECHATPAY2-SM2-WITH-SM3"}, b),
     "payment_notification_signature_type"),
    (lambda h, b: ({**h, "wechatpay-timestamp": "12ab"}, b), "payment_notification_bad_timestamp"),
])
def test_forged_or_broken_notifications_are_refused(change, code):
    headers, body = change(*_notification())
    with pytest.raises(NotificationRejected) as caught:
        _verify(headers, body)
    assert caught.value.code == code


def test_a_stale_or_future_timestamp_is_refused():
    headers, body = _notification(timestamp=str(int(NOW) - 301))
    with pytest.raises(NotificationRejected, match="过期"):
        _verify(headers, body)
    headers, body = _notification(timestamp=str(int(NOW) + 301))
    with pytest.raises(NotificationRejected) as caught:
        _verify(headers, body)
    assert caught.value.code == "payment_notification_stale"


def _resign(headers, text):
    return {**headers, "wechatpay-signature": notify_crypto.sign(PRIVATE, headers["wechatpay-timestamp"],
                                                                 headers["wechatpay-nonce"], text)}, text.encode()


def test_a_signed_notification_whose_resource_does_not_decrypt_is_refused():
    headers, body = _notification()
    envelope = json.loads(body)
    envelope["resource"]["ciphertext"] = envelope["resource"]["ciphertext"][:-6] + "AAAAAA"
    with pytest.raises(NotificationRejected) as caught:
        _verify(*_resign(headers, json.dumps(envelope)))
    assert caught.value.code == "payment_notification_undecryptable"


@pytest.mark.parametrize("text", ["not json", "[]", '{"id": "x"}', '{"id":"x","event_type":"T","resource_type":"plain",'
                                  '"resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"","nonce":""}}'])
def test_a_signed_but_malformed_body_is_refused(text):
    headers, _ = _notification()
    with pytest.raises(NotificationRejected) as caught:
        _verify(*_resign(headers, text))
    assert caught.value.code == "payment_notification_malformed"
