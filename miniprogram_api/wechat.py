"""A tiny WeChat client for the mini-program (httpx, 5 s timeouts) and the encrypted-data decryption.

- ``sns/jscode2session`` is called directly: it needs no access token.
- ``wxa/business/getuserphonenumber`` and ``wxa/getwxacodeunlimit`` need the mini-program's access
  token, taken from ``cgi-bin/stable_token`` (unlike ``cgi-bin/token`` it does not invalidate the token
  other processes hold) and cached in this process until 5 minutes before it expires; a token WeChat
  refuses (40001 / 40014 / 42001) is fetched again once.
- With no ``SCRM_WECHAT_MP_SECRET`` the base URL is the built-in simulator (``{base_url}/_wecom_sim``)
  and the appid the simulator's demo app, unless ``SCRM_WECHAT_MP_APPID`` names one.

:func:`decrypt_user_data` opens the older ``encryptedData`` (AES-128-CBC with the session key, PKCS#7)
and checks that the watermark's appid is ours.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from core.errors import RateLimited
from core.settings import get_settings
from miniprogram_api.errors import MpErrorCode
from miniprogram_api.exceptions import LoginCodeInvalid, LoginCodeUsed, PhoneDecryptFailed, WechatApiError

SIMULATOR_APPID = "wxsimulatormp0001"
SIMULATOR_PREFIX = "/_wecom_sim"  # where bot mounts the simulator (the channel may not import bot)
WECHAT_API_BASE = "https://api.weixin.qq.com"
TIMEOUT = 5.0
REFRESH_AHEAD = 300
TOKEN_ERRORS = {40001, 40014, 42001}


@dataclass(frozen=True)
class MpConfig:
    appid: str
    secret: str
    base: str
    simulated: bool


def config() -> MpConfig:
    s = get_settings()
    simulated = not s.wechat_mp_secret
    base = s.wechat_api_base.rstrip("/") or (s.base_url.rstrip("/") + SIMULATOR_PREFIX if simulated
                                             else WECHAT_API_BASE)
    return MpConfig(appid=s.wechat_mp_appid or (SIMULATOR_APPID if simulated else ""),
                    secret=s.wechat_mp_secret or ("simulator-secret" if simulated else ""), base=base,
                    simulated=simulated)


@dataclass(frozen=True)
class CodeSession:
    openid: str
    unionid: str | None
    session_key: str


_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_token_lock = threading.Lock()


def reset_token_cache() -> None:
    with _token_lock:
        _tokens.clear()


class WechatClient:
    def __init__(self, cfg: MpConfig | None = None, http: httpx.Client | None = None) -> None:
        self.cfg = cfg or config()
        self.http = http or httpx.Client(timeout=TIMEOUT)

    # --- transport ----------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, f"{self.cfg.base}/{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise WechatApiError(detail=type(exc).__name__) from exc
        if response.status_code >= 500:
            raise WechatApiError(http_status=response.status_code)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise WechatApiError(detail="not json") from exc
        if not isinstance(data, dict):
            raise WechatApiError(detail="not an object")
        return data

    @staticmethod
    def _raise(data: dict[str, Any]) -> None:
        errcode = int(data.get("errcode") or 0)
        if errcode == 0:
            return
        if errcode == 45011:
            raise RateLimited("微信接口调用过于频繁，请稍后再试")
        raise WechatApiError(errcode=errcode)

    # --- access token -------------------------------------------------------------------------------
    def access_token(self, *, force: bool = False) -> str:
        key = (self.cfg.base, self.cfg.appid)
        with _token_lock:
            cached = _tokens.get(key)
            if cached and not force and cached[1] - REFRESH_AHEAD > time.time():
                return cached[0]
            data = self._json(self._request("POST", "cgi-bin/stable_token", json={
                "grant_type": "client_credential", "appid": self.cfg.appid, "secret": self.cfg.secret,
                "force_refresh": force}))
            self._raise(data)
            token = str(data["access_token"])
            _tokens[key] = (token, time.time() + int(data.get("expires_in") or 7200))
            return token

    def _with_token(self, path: str, body: dict[str, Any]) -> httpx.Response:
        for attempt in (0, 1):
            response = self._request("POST", path, params={"access_token": self.access_token(force=attempt == 1)},
                                     json=body)
            if response.headers.get("content-type", "").startswith("application/json"):
                data = self._json(response)
                if int(data.get("errcode") or 0) in TOKEN_ERRORS and attempt == 0:
                    continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the three calls ----------------------------------------------------------------------------
    def code2session(self, js_code: str) -> CodeSession:
        data = self._json(self._request("GET", "sns/jscode2session", params={
            "appid": self.cfg.appid, "secret": self.cfg.secret, "js_code": js_code,
            "grant_type": "authorization_code"}))
        errcode = int(data.get("errcode") or 0)
        if errcode == 40163:
            raise LoginCodeUsed()
        if errcode == 40029:
            raise LoginCodeInvalid()
        self._raise(data)
        if not data.get("openid") or not data.get("session_key"):
            raise WechatApiError(detail="no openid")
        return CodeSession(str(data["openid"]), str(data["unionid"]) if data.get("unionid") else None,
                           str(data["session_key"]))

    def phone_number(self, code: str) -> str:
        """The phone number behind a getPhoneNumber button's code (checked against our appid)."""
        data = self._json(self._with_token("wxa/business/getuserphonenumber", {"code": code}))
        if int(data.get("errcode") or 0) == 40029:
            raise PhoneDecryptFailed("手机号授权码无效或已使用，请重新授权", code=MpErrorCode.PHONE_CODE_INVALID)
        self._raise(data)
        info = data.get("phone_info") or {}
        watermark = info.get("watermark") or {}
        if watermark.get("appid") != self.cfg.appid:
            raise PhoneDecryptFailed("手机号数据不属于本小程序", code=MpErrorCode.PHONE_WRONG_APP)
        return str(info.get("purePhoneNumber") or info.get("phoneNumber") or "")

    def send_subscribe_message(self, openid: str, template_id: str, data: dict[str, str],
                               page: str | None = None) -> None:
        """订阅消息 (message/subscribe/send): ``data`` as {key: value}; refused ones raise WechatApiError."""
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {k: {"value": v} for k, v in data.items()}}
        if page:
            body["page"] = page
        self._raise(self._json(self._with_token("cgi-bin/message/subscribe/send", body)))

    def wxacode_unlimited(self, scene: str, page: str | None = None) -> bytes:
        body: dict[str, Any] = {"scene": scene, "check_path": False}
        if page:
            body["page"] = page
        response = self._with_token("wxa/getwxacodeunlimit", body)
        if response.headers.get("content-type", "").startswith("application/json"):
            self._raise(self._json(response))
            raise WechatApiError(detail="no image")
        return response.content


def decrypt_user_data(session_key: str, encrypted_data: str, iv: str, appid: str) -> dict[str, Any]:
    """Open ``encryptedData`` (AES-128-CBC, PKCS#7) and check the watermark's appid."""
    try:
        key, iv_bytes, data = (base64.b64decode(v, validate=True) for v in (session_key, iv, encrypted_data))
    except (binascii.Error, ValueError) as exc:
        raise PhoneDecryptFailed("加密数据格式不正确", code=MpErrorCode.PHONE_DATA_MALFORMED) from exc
    if len(key) != 16 or len(iv_bytes) != 16 or not data or len(data) % 16:
        raise PhoneDecryptFailed("加密数据格式不正确", code=MpErrorCode.PHONE_DATA_MALFORMED)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv_bytes)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        payload = json.loads(plain.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PhoneDecryptFailed() from exc
    if not isinstance(payload, dict):
        raise PhoneDecryptFailed()
    if (payload.get("watermark") or {}).get("appid") != appid:
        raise PhoneDecryptFailed("数据不属于本小程序（appid 不符）", code=MpErrorCode.PHONE_WRONG_APP)
    return payload


def encrypt_user_data(session_key: str, payload: dict[str, Any], iv: str) -> str:
    """What WeChat does (the simulator and tests use it): AES-128-CBC, PKCS#7, base64."""
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(payload, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(session_key)), modes.CBC(base64.b64decode(iv))).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
