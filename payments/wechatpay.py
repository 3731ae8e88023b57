"""The WeChat Pay v3 adapter, on the maintained ``wechatpayv3`` SDK (PyPI, MIT).

The SDK signs every request with the merchant key (``Authorization: WECHATPAY2-SHA256-RSA2048 …``),
verifies every 2xx answer against the platform public key, and signs the mini-program's
``wx.requestPayment`` parameters. Its base URL is the real ``https://api.mch.weixin.qq.com`` or the
built-in simulator (:mod:`payments.simulator`), which checks the same signatures and signs its answers
the same way: tests and ``make run`` go through this very code.

Withholding (委托代扣) has no helper in the SDK; its calls go through the SDK's signed ``request`` with the
v3 paths under ``/v3/papay/…`` that the simulator plays (see README: the real contract-signing flow runs
in the mini-program and needs the merchant's 代扣 product enabled).

Notifications are verified by :mod:`payments.notify_crypto` (same primitives, stricter checks).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import secrets
import time
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.type import RequestType

from payments import bill_format
from payments.exceptions import ProviderRefused, ProviderUnavailable
from payments.provider import BillLine, RefundResult, TradeResult

log = logging.getLogger(__name__)

PRODUCTION_BASE = "https://api.mch.weixin.qq.com"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class WeChatPayProvider:
    name = "wechatpay"

    def __init__(self, *, mchid: str, appid: str, serial_no: str, private_key_pem: str, apiv3_key: str,
                 platform_public_key_pem: str, platform_public_key_id: str, notify_url: str,
                 api_base: str = PRODUCTION_BASE, timeout: float = 10.0) -> None:
        self.mchid, self.appid, self.notify_url = mchid, appid, notify_url
        self.client = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=mchid, private_key=private_key_pem,
                                cert_serial_no=serial_no, appid=appid, apiv3_key=apiv3_key, notify_url=notify_url,
                                timeout=(min(timeout, 5.0), timeout), public_key=platform_public_key_pem,
                                public_key_id=platform_public_key_id)
        # The SDK has no setting for its base URL; the simulator (and a proxy) need one.
        self.client._core._gate_way = api_base.rstrip("/")

    # --- plumbing --------------------------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        try:
            code, body = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception (bad signature) and requests' errors
            log.warning("wechatpay %s: %s", what, exc)
            raise ProviderUnavailable(f"微信支付接口调用失败（{what}）", reason=type(exc).__name__) from exc
        if code >= 500:
            raise ProviderUnavailable(f"微信支付暂时不可用（{what}，HTTP {code}）")
        return code, body

    @staticmethod
    def _json(body: Any) -> dict[str, Any]:
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if not body:
            return {}
        try:
            data = json.loads(body)
        except ValueError:
            raise ProviderUnavailable("微信支付返回了无法识别的内容") from None
        return data if isinstance(data, dict) else {}

    def _refused(self, what: str, code: int, body: Any) -> ProviderRefused:
        data = self._json(body)
        return ProviderRefused(f"微信支付拒绝了{what}：{data.get('message') or data.get('code') or code}",
                               code="payment_provider_refused", provider_code=data.get("code", str(code)))

    def _trade(self, out_trade_no: str, data: dict[str, Any]) -> TradeResult:
        amount = data.get("amount") or {}
        paid = amount.get("payer_total", amount.get("total"))
        return TradeResult(out_trade_no=out_trade_no, trade_state=str(data.get("trade_state", "")),
                           transaction_id=data.get("transaction_id") or None,
                           amount=int(paid) if isinstance(paid, int) else None,
                           success_at=_parse_time(data.get("success_time")),
                           message=str(data.get("trade_state_desc", "")))

    # --- JSAPI -----------------------------------------------------------------------------------
    def create_jsapi(self, *, out_trade_no: str, description: str, amount: int, openid: str,
                     expire_at: datetime) -> str:
        code, body = self._call("下单", self.client.pay, description=description, out_trade_no=out_trade_no,
                                amount={"total": amount, "currency": "CNY"}, payer={"openid": openid},
                                time_expire=expire_at.isoformat(timespec="seconds"),
                                pay_type=WeChatPayType.MINIPROG)
        if code != 200:
            raise self._refused("下单", code, body)
        prepay_id = self._json(body).get("prepay_id")
        if not prepay_id:
            raise ProviderUnavailable("微信支付下单未返回 prepay_id")
        return str(prepay_id)

    def mp_pay_params(self, prepay_id: str) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        pay_sign = self.client.sign([self.appid, timestamp, nonce, package])
        return {"appId": self.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA", "paySign": pay_sign}

    def query(self, out_trade_no: str) -> TradeResult:
        code, body = self._call("查单", self.client.query, out_trade_no=out_trade_no)
        if code == 404:
            return TradeResult(out_trade_no=out_trade_no, trade_state="NOTFOUND")
        if code != 200:
            raise self._refused("查单", code, body)
        return self._trade(out_trade_no, self._json(body))

    def close(self, out_trade_no: str) -> None:
        code, body = self._call("关单", self.client.close, out_trade_no=out_trade_no)
        if code not in (200, 204):
            raise self._refused("关单", code, body)

    # --- refunds ---------------------------------------------------------------------------------
    def _refund(self, data: dict[str, Any], out_refund_no: str) -> RefundResult:
        return RefundResult(out_refund_no=out_refund_no, status=str(data.get("status", "PROCESSING")),
                            refund_id=data.get("refund_id") or None)

    def refund(self, *, out_refund_no: str, out_trade_no: str, refund_amount: int, total_amount: int,
               reason: str) -> RefundResult:
        code, body = self._call("退款", self.client.refund, out_refund_no=out_refund_no, out_trade_no=out_trade_no,
                                amount={"refund": refund_amount, "total": total_amount, "currency": "CNY"},
                                reason=reason[:80])
        if code != 200:
            raise self._refused("退款", code, body)
        return self._refund(self._json(body), out_refund_no)

    def query_refund(self, out_refund_no: str) -> RefundResult:
        code, body = self._call("查询退款", self.client.query_refund, out_refund_no=out_refund_no)
        if code != 200:
            raise self._refused("查询退款", code, body)
        return self._refund(self._json(body), out_refund_no)

    # --- bills -----------------------------------------------------------------------------------
    def trade_bill(self, bill_date: date) -> list[BillLine]:
        code, body = self._call("申请交易账单", self.client.trade_bill, bill_date=bill_date.isoformat())
        if code != 200:
            raise self._refused("申请交易账单", code, body)
        data = self._json(body)
        code, content = self._call("下载账单", self.client.download_bill, url=str(data.get("download_url", "")))
        if code != 200 or not isinstance(content, bytes):
            raise ProviderUnavailable("账单下载失败")
        raw = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
        expected = str(data.get("hash_value", "")).lower()
        if expected and hashlib.sha1(raw).hexdigest() != expected:  # noqa: S324 - the bill's published hash type
            raise ProviderUnavailable("账单文件校验失败（SHA1 不符）")
        return bill_format.parse(raw.decode("utf-8-sig"))

    # --- withholding (委托代扣) ------------------------------------------------------------------
    def _papay(self, what: str, path: str, data: dict[str, Any] | None = None) -> tuple[int, Any]:
        core = self.client._core
        method = RequestType.POST if data is not None else RequestType.GET
        return self._call(what, core.request, path, method=method, data=data)

    def sign_withholding_contract(self, *, contract_code: str, account_no: str, holder_name: str, bank_name: str,
                                  max_amount: int) -> str:
        code, body = self._papay("签约代扣", "/v3/papay/contracts", {
            "mchid": self.mchid, "appid": self.appid, "contract_code": contract_code,
            "account": {"account_no": account_no, "holder_name": holder_name, "bank_name": bank_name},
            "max_amount": max_amount})
        if code != 200:
            raise self._refused("代扣签约", code, body)
        contract_id = self._json(body).get("contract_id")
        if not contract_id:
            raise ProviderUnavailable("代扣签约未返回协议号")
        return str(contract_id)

    def terminate_withholding_contract(self, contract_id: str, reason: str) -> None:
        code, body = self._papay("解约代扣", f"/v3/papay/contracts/{quote(contract_id)}/terminate",
                                 {"mchid": self.mchid, "reason": reason[:80]})
        if code not in (200, 204):
            raise self._refused("代扣解约", code, body)

    def withhold(self, *, out_trade_no: str, contract_id: str, amount: int, description: str) -> TradeResult:
        code, body = self._papay("代扣", "/v3/papay/transactions", {
            "mchid": self.mchid, "appid": self.appid, "contract_id": contract_id, "out_trade_no": out_trade_no,
            "description": description, "amount": {"total": amount, "currency": "CNY"},
            "notify_url": self.notify_url})
        if code != 200:
            raise self._refused("代扣", code, body)
        data = self._json(body)
        return self._trade(out_trade_no, {"trade_state": "ACCEPT", **data})

    def query_withholding(self, out_trade_no: str) -> TradeResult:
        code, body = self._papay("查询代扣", f"/v3/papay/transactions/out-trade-no/{quote(out_trade_no)}"
                                 f"?mchid={quote(self.mchid)}")
        if code == 404:
            return TradeResult(out_trade_no=out_trade_no, trade_state="NOTFOUND")
        if code != 200:
            raise self._refused("查询代扣", code, body)
        return self._trade(out_trade_no, self._json(body))
