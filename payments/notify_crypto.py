"""WeChat Pay v3 notification crypto: verify (signature, key id, timestamp window, body) and open
(AES-256-GCM resource), and the signing side the simulator and the tests use.

The primitives are ``wechatpayv3.utils`` (RSA-SHA256 PKCS#1 v1.5 over ``timestamp\\nnonce\\nbody\\n``,
AEAD_AES_256_GCM with the APIv3 key); the checks around them are ours and stricter than the library's
``callback()`` (which neither looks at the timestamp nor tells why it refused). Nonce replay is decided
by the database (:mod:`payments.inbox`, :mod:`core.callback_nonces`), like the WeCom callbacks: the
notification carries its body's digest so that a byte-identical re-delivery is told from a replay.

Every refusal raises :class:`~payments.exceptions.NotificationRejected` with its own code.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3.utils import aes_decrypt, rsa_sign, rsa_verify

from core.callback_nonces import body_digest
from payments.exceptions import NotificationRejected

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MAX_BODY_BYTES = 64 * 1024
_HEADERS = ("wechatpay-signature", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial")


@dataclass(frozen=True)
class Notification:
    """A verified, decrypted notification."""

    id: str
    event_type: str
    resource: dict[str, Any]
    nonce: str
    timestamp: str
    create_time: str = ""
    digest: str = ""  # sha256 of the request body (core.callback_nonces)


def _reject(code: str, message: str) -> NotificationRejected:
    return NotificationRejected(message, code=code)


def _aes_key(apiv3_key: str) -> bytes:
    key = apiv3_key.encode()
    if len(key) != 32:
        raise ValueError("the APIv3 key is 32 bytes")
    return key


def verify(headers: dict[str, str], body: bytes, *, public_key: RSAPublicKey, public_key_id: str, apiv3_key: str,
           window_seconds: int, now: float | None = None) -> Notification:
    """Check a notification and open its resource; ``headers`` with lower-case names."""
    if len(body) > MAX_BODY_BYTES:
        raise _reject("payment_notification_too_large", "支付通知内容过大")
    signature, timestamp, nonce, serial = (headers.get(h, "") for h in _HEADERS)
    if not (signature and timestamp and nonce and serial):
        raise _reject("payment_notification_unsigned", "支付通知缺少签名头")
    if headers.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
        raise _reject("payment_notification_signature_type", "不支持的签名算法")
    if serial != public_key_id:
        raise _reject("payment_notification_unknown_key", "支付通知的平台公钥编号不符")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise _reject("payment_notification_bad_timestamp", "支付通知时间戳不正确")
    if not 8 <= len(nonce) <= 64:
        raise _reject("payment_notification_bad_nonce", "支付通知随机串不正确")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > window_seconds:
        raise _reject("payment_notification_stale", "支付通知已过期（时间戳超出允许范围）")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _reject("payment_notification_malformed", "支付通知内容格式不正确") from None
    if not rsa_verify(timestamp, nonce, text, signature, public_key):
        raise _reject("payment_notification_bad_signature", "支付通知签名不正确")
    try:
        envelope = json.loads(text)
        resource = envelope["resource"]
        event_id, event_type = str(envelope["id"]), str(envelope["event_type"])
        if envelope.get("resource_type") != "encrypt-resource" or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise ValueError("resource type")
        ciphertext, res_nonce = resource["ciphertext"], resource["nonce"]
        associated = resource.get("associated_data") or ""
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _reject("payment_notification_malformed", "支付通知内容格式不正确") from None
    if not (1 <= len(event_id) <= 64 and 1 <= len(event_type) <= 40):
        raise _reject("payment_notification_malformed", "支付通知内容格式不正确")
    try:
        plain = aes_decrypt(nonce=res_nonce, ciphertext=ciphertext, associated_data=associated, apiv3_key=apiv3_key)
    except (ValueError, TypeError):  # a nonce of the wrong length, ciphertext that is not base64
        plain = None
    if plain is None:
        raise _reject("payment_notification_undecryptable", "支付通知资源解密失败")
    try:
        opened = json.loads(plain)
        if not isinstance(opened, dict):
            raise ValueError("resource is not an object")
    except ValueError:
        raise _reject("payment_notification_malformed", "支付通知资源格式不正确") from None
    return Notification(id=event_id, event_type=event_type, resource=opened, nonce=nonce, timestamp=timestamp,
                        create_time=str(envelope.get("create_time", "")), digest=body_digest(body))


# --- the provider's side (the simulator, the tests, the bench) ------------------------------------------

def encrypt_resource(apiv3_key: str, plaintext: str, nonce: str, associated_data: str) -> str:
    """AEAD_AES_256_GCM as WeChat Pay encrypts a notification resource: base64(ciphertext || tag)."""
    sealed = AESGCM(_aes_key(apiv3_key)).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return base64.b64encode(sealed).decode()


def sign(private_key: RSAPrivateKey, timestamp: str, nonce: str, body: str) -> str:
    """The ``Wechatpay-Signature`` of a notification or a response."""
    return rsa_sign(private_key, f"{timestamp}\n{nonce}\n{body}\n")


def build(private_key: RSAPrivateKey, public_key_id: str, apiv3_key: str, *, event_id: str, event_type: str,
          resource: dict[str, Any], timestamp: str, nonce: str, resource_nonce: str,
          summary: str = "支付成功", associated_data: str = "transaction") -> tuple[dict[str, str], bytes]:
    """A signed notification as WeChat Pay sends it: (headers, body)."""
    plain = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    envelope = {
        "id": event_id, "create_time": "", "resource_type": "encrypt-resource", "event_type": event_type,
        "summary": summary,
        "resource": {"original_type": associated_data, "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": encrypt_resource(apiv3_key, plain, resource_nonce, associated_data),
                     "associated_data": associated_data, "nonce": resource_nonce},
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    headers = {"Wechatpay-Signature": sign(private_key, timestamp, nonce, body), "Wechatpay-Timestamp": timestamp,
               "Wechatpay-Nonce": nonce, "Wechatpay-Serial": public_key_id,
               "Wechatpay-Signature-Type": SIGNATURE_TYPE, "Content-Type": "application/json"}
    return headers, body.encode()
