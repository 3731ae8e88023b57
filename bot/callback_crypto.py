"""WeCom callback protocol (WXBizMsgCrypt): SHA1 signature, AES-256-CBC, corp id check.

wechatpy does the AES part; what it does not do we add here: the signature is compared in constant
time, the timestamp must be inside a window, and the body is parsed with defusedxml, so a DOCTYPE or
entity declaration is refused instead of expanded.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError  # noqa: S405 - only the exception type; parsing is defusedxml's

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.exceptions import InvalidSignatureException

from core.errors import AppError

MAX_BODY_BYTES = 64 * 1024  # WeCom events are a few hundred bytes; anything near this is not WeCom


class CallbackRejected(AppError):
    code = "wecom_callback_rejected"
    status = 400
    message = "回调请求无效"


class BadSignature(CallbackRejected):
    code = "wecom_bad_signature"
    status = 403
    message = "回调签名错误"


class StaleTimestamp(CallbackRejected):
    code = "wecom_stale_timestamp"
    status = 403
    message = "回调时间戳超出允许范围"


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


def parse_xml(body: bytes | str) -> dict[str, str]:
    """A flat <xml> document as a dict of its children's text; entity-laden or malformed bodies refused."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise CallbackRejected("回调内容过大", code="wecom_body_too_large")
    try:
        root = ElementTree.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise CallbackRejected("回调内容不是有效的 XML", code="wecom_bad_xml") from exc
    out: dict[str, str] = {}
    for child in root:
        if len(child):  # nested elements (e.g. MemChangeList) keep their children's text joined
            out[child.tag] = ",".join((c.text or "").strip() for c in child)
        else:
            out[child.tag] = (child.text or "").strip()
    return out


@dataclass
class CallbackCrypto:
    token: str
    aes_key: str  # EncodingAESKey, 43 characters
    corp_id: str
    window_seconds: int = 300

    def __post_init__(self) -> None:
        import base64

        self._key = base64.b64decode(self.aes_key + "=")
        if len(self._key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str, *, now: float | None = None) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), (msg_signature or "").lower().encode()):
            raise BadSignature()
        if self.window_seconds:
            try:
                ts = int(timestamp)
            except ValueError as exc:
                raise StaleTimestamp() from exc
            if abs((now if now is not None else time.time()) - ts) > self.window_seconds:
                raise StaleTimestamp()

    def decrypt(self, encrypt: str) -> str:
        try:
            plain = PrpCrypto(self._key).decrypt(encrypt, self.corp_id)
            return plain.decode() if isinstance(plain, bytes) else plain
        except (InvalidSignatureException, ValueError, Exception) as exc:  # noqa: BLE001 - wrong corp id, padding, base64
            raise CallbackRejected("回调解密失败", code="wecom_decrypt_failed") from exc

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET URL verification: the decrypted echo string, which the endpoint returns as the body."""
        self.verify(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def open_message(self, msg_signature: str, timestamp: str, nonce: str, body: bytes) -> tuple[str, dict[str, str]]:
        """POST: verify and decrypt; returns the decrypted XML and its fields."""
        envelope = parse_xml(body)
        encrypt = envelope.get("Encrypt")
        if not encrypt:
            raise CallbackRejected("回调缺少 Encrypt 字段", code="wecom_no_encrypt")
        self.verify(msg_signature, timestamp, nonce, encrypt)
        plain = self.decrypt(encrypt)
        return plain, parse_xml(plain)

    def seal(self, plain_xml: str, nonce: str, timestamp: str) -> tuple[str, str]:
        """Encrypt and sign a message as WeCom does (the simulator's driver uses this): (body, msg_signature)."""
        encrypt = PrpCrypto(self._key).encrypt(plain_xml, self.corp_id)
        encrypt = encrypt.decode() if isinstance(encrypt, bytes) else encrypt
        sig = signature(self.token, timestamp, nonce, encrypt)
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>")
        return body, sig
