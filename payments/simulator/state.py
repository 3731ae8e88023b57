"""The simulated WeChat Pay merchant account: orders, refunds, withholding contracts, bills, and the
notifications it sends. One in-memory state per process, guarded by a lock."""

from __future__ import annotations

import gzip
import hashlib
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from payments import bill_format, notify_crypto
from payments.config import KEY_DIR, SIM_APIV3_KEY, SIM_PUBLIC_KEY_ID

SHANGHAI = timezone(timedelta(hours=8))


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _load_private(name: str) -> RSAPrivateKey:
    key = load_pem_private_key((KEY_DIR / name).read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


def _load_public(name: str) -> RSAPublicKey:
    key = load_pem_public_key((KEY_DIR / name).read_bytes())
    assert isinstance(key, RSAPublicKey)
    return key


class SimPayState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.platform_key = _load_private("platform_private.pem")
        self.merchant_public_key = _load_public("merchant_public.pem")
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.orders: dict[str, dict[str, Any]] = {}
            self.refunds: dict[str, dict[str, Any]] = {}
            self.contracts: dict[str, dict[str, Any]] = {}
            self.bills: dict[str, bytes] = {}
            self.bill_extra: list[dict[str, Any]] = []
            self.bill_drop: set[str] = set()
            self.bill_amount: dict[str, int] = {}
            self.requests: list[dict[str, Any]] = []
            self.deliveries: list[dict[str, Any]] = []
            self.sent: dict[str, dict[str, Any]] = {}  # notification id -> what was sent (for duplicates)
            self.withhold_next: list[str] = []
            self.refund_next: list[str] = []  # outcomes of the next refunds: success (default) | processing
            self.auto_notify = True
            self.notify_delay = 0.5
            self.offset = 0.0

    # --- time ------------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=SHANGHAI)

    # --- orders ----------------------------------------------------------------------------------
    def order(self, out_trade_no: str) -> dict[str, Any]:
        found = self.orders.get(out_trade_no)
        if found is None:
            raise SimError(404, "ORDER_NOT_EXIST", "订单不存在")
        return found

    def view(self, o: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "appid": o["appid"], "mchid": o["mchid"], "out_trade_no": o["out_trade_no"],
            "trade_type": o["trade_type"], "trade_state": o["trade_state"],
            "trade_state_desc": o.get("trade_state_desc", ""),
            "amount": {"total": o["amount"], "currency": "CNY"}, "payer": {"openid": o.get("openid", "")},
        }
        if o.get("transaction_id"):
            out["transaction_id"] = o["transaction_id"]
            out["amount"]["payer_total"] = o.get("paid_amount", o["amount"])
        if o.get("success_time"):
            out["success_time"] = o["success_time"]
        return out

    def succeed(self, o: dict[str, Any], paid_amount: int | None = None) -> None:
        if o["trade_state"] in ("SUCCESS", "REFUND"):
            return
        o["trade_state"], o["trade_state_desc"] = "SUCCESS", "支付成功"
        o["transaction_id"] = o.get("transaction_id") or "42000" + secrets.token_hex(12)[:23]
        o["paid_amount"] = o["amount"] if paid_amount is None else paid_amount
        o["success_time"] = self.now_dt().isoformat(timespec="seconds")

    def fail(self, o: dict[str, Any]) -> None:
        if o["trade_state"] in ("SUCCESS", "REFUND"):
            raise SimError(400, "ORDERPAID", "订单已支付")
        o["trade_state"], o["trade_state_desc"] = "PAYERROR", "支付失败（余额不足）"

    # --- notifications ---------------------------------------------------------------------------
    def build_notification(self, o: dict[str, Any], *, event_id: str | None = None,
                           timestamp: str | None = None, nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        resource = {k: v for k, v in self.view(o).items()}
        resource["bank_type"] = "OTHERS"
        event_id = event_id or "EV-" + secrets.token_hex(12)
        ok = o["trade_state"] == "SUCCESS"
        headers, body = notify_crypto.build(
            self.platform_key, SIM_PUBLIC_KEY_ID, SIM_APIV3_KEY, event_id=event_id,
            event_type="TRANSACTION.SUCCESS" if ok else "TRANSACTION.FAIL", resource=resource,
            timestamp=timestamp or str(int(self.now())), nonce=nonce or secrets.token_hex(16),
            resource_nonce=secrets.token_hex(6), summary="支付成功" if ok else "支付失败")
        self.sent[o["out_trade_no"]] = {"event_id": event_id, "headers": headers, "body": body}
        return headers, body

    def build_refund_notification(self, r: dict[str, Any], *, event_id: str | None = None,
                                  timestamp: str | None = None) -> tuple[dict[str, str], bytes]:
        """A refund's result notification (REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED)."""
        o = self.orders.get(r["out_trade_no"], {})
        resource = {"mchid": o.get("mchid", ""), "out_trade_no": r["out_trade_no"],
                    "transaction_id": o.get("transaction_id", ""), "out_refund_no": r["out_refund_no"],
                    "refund_id": r["refund_id"], "refund_status": r["status"],
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": r["amount"]["total"], "refund": r["amount"]["refund"],
                               "payer_total": r["amount"]["total"], "payer_refund": r["amount"]["refund"]}}
        if r.get("success_time"):
            resource["success_time"] = r["success_time"]
        event_id = event_id or "EV-" + secrets.token_hex(12)
        headers, body = notify_crypto.build(
            self.platform_key, SIM_PUBLIC_KEY_ID, SIM_APIV3_KEY, event_id=event_id,
            event_type=f"REFUND.{r['status']}", resource=resource, timestamp=timestamp or str(int(self.now())),
            nonce=secrets.token_hex(16), resource_nonce=secrets.token_hex(6),
            summary="退款成功" if r["status"] == "SUCCESS" else "退款异常", associated_data="refund")
        self.sent[r["out_refund_no"]] = {"event_id": event_id, "headers": headers, "body": body}
        return headers, body

    def finish_refund(self, r: dict[str, Any], outcome: str) -> None:
        """A refund under way ends: SUCCESS, ABNORMAL (the card cannot take it) or CLOSED (money back to us)."""
        if r["status"] != "PROCESSING":
            raise SimError(400, "INVALID_REQUEST", "退款已结束")
        r["status"] = {"success": "SUCCESS", "abnormal": "ABNORMAL", "closed": "CLOSED"}[outcome]
        if r["status"] == "SUCCESS":
            r["success_time"] = self.now_dt().isoformat(timespec="seconds")
        else:  # the reserved amount goes back to the order
            o = self.orders.get(r["out_trade_no"])
            if o is not None:
                o["refunded"] = o.get("refunded", 0) - r["amount"]["refund"]
                if o["trade_state"] == "REFUND":
                    o["trade_state"], o["trade_state_desc"] = "SUCCESS", "支付成功"

    def deliver(self, url: str, headers: dict[str, str], body: bytes, label: str) -> int:
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=10)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        with self.lock:
            self.deliveries.append({"at": self.now(), "label": label, "status": status, "url": url})
        return status

    def notify_later(self, out_trade_no: str, delay: float) -> None:
        def fire() -> None:
            with self.lock:
                o = self.orders.get(out_trade_no)
                if o is None or not o.get("notify_url"):
                    return
                headers, body = self.build_notification(o)
                url = o["notify_url"]
            self.deliver(url, headers, body, "通知")

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

    # --- bills -----------------------------------------------------------------------------------
    def bill(self, day: date) -> bytes:
        rows = []
        for o in self.orders.values():
            if o["trade_state"] not in ("SUCCESS", "REFUND") or not o.get("success_time"):
                continue
            if datetime.fromisoformat(o["success_time"]).astimezone(SHANGHAI).date() != day:
                continue
            if o["out_trade_no"] in self.bill_drop:
                continue
            rows.append({"out_trade_no": o["out_trade_no"], "transaction_id": o["transaction_id"],
                         "trade_state": o["trade_state"],
                         "amount": self.bill_amount.get(o["out_trade_no"], o.get("paid_amount", o["amount"])),
                         "refund_amount": o.get("refunded", 0), "at": datetime.fromisoformat(o["success_time"]),
                         "description": o.get("description", "")})
        rows.extend(r for r in self.bill_extra if r["date"] == day.isoformat())
        text = bill_format.render(rows, appid=next(iter(self.orders.values()))["appid"] if self.orders else "",
                                  mchid=next(iter(self.orders.values()))["mchid"] if self.orders else "")
        return text.encode("utf-8")

    def publish_bill(self, day: date) -> tuple[str, str]:
        raw = self.bill(day)
        token = secrets.token_hex(8)
        self.bills[token] = gzip.compress(raw)
        return token, hashlib.sha1(raw).hexdigest()  # noqa: S324 - WeChat Pay's bill hash type

    def snapshot(self) -> dict[str, Any]:
        return {"orders": list(self.orders.values()), "refunds": list(self.refunds.values()),
                "contracts": list(self.contracts.values()), "deliveries": self.deliveries[-200:],
                "withhold_next": self.withhold_next, "auto_notify": self.auto_notify, "now": self.now()}


def utc_now() -> datetime:
    return datetime.now(UTC)


STATE = SimPayState()
