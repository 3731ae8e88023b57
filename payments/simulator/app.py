"""The simulator's HTTP face, mounted at ``/_pay_sim``: WeChat Pay's ``/v3/…`` API (requests must carry
a valid merchant signature; answers are signed with the simulator's platform key) and the ``/_admin/…``
controls behind the console page 支付模拟器 (``GET /_pay_sim/``).

| admin endpoint | does |
|---|---|
| ``POST /_admin/reset`` | forget every order, contract, bill and delivery |
| ``POST /_admin/config {"auto_notify": false, "notify_delay": 0.5}`` | notify on success by itself, or not |
| ``POST /_admin/pay {"out_trade_no", "outcome": "success"\\|"fail", "notify": true, "delay": 0, "amount"}`` | the customer pays (or fails); notification now, later, or never |
| ``POST /_admin/notify {"out_trade_no", "copies": 1, "forge": ""\\|"signature"\\|"stale"\\|"serial"\\|"body"\\|"resource", "replay": false, "reuse_nonce": false}`` | (re)send the notification, duplicates (the same request again: ``replay``), forgeries and another body under a used nonce (``reuse_nonce``) included |
| ``POST /_admin/withhold_next {"outcomes": ["fail", "success"]}`` | results of the next withholding debits (default success; "pending", "error") |
| ``POST /_admin/settle {"out_trade_no", "outcome"}`` | settle a pending debit |
| ``POST /_admin/bill {"op": "extra"\\|"drop"\\|"amount", …}`` | make the next bill disagree with our books |
| ``POST /_admin/refund_next {"outcomes": ["processing"]}`` | the next refunds answer PROCESSING instead of SUCCESS |
| ``POST /_admin/refund_settle {"out_refund_no", "outcome": "success"\\|"abnormal"\\|"closed", "notify": true}`` | a refund under way ends; its REFUND.* notification is sent |
| ``POST /_admin/notify_refund {"out_refund_no", "copies": 1, "forge": ""\\|"signature"\\|"stale", "replay": false}`` | (re)send a refund's notification |
| ``GET /_admin/state`` / ``GET /_admin/requests`` | everything, as JSON |
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from wechatpayv3.utils import rsa_verify

from core import console_shell
from core.security import is_direct_loopback
from payments import notify_crypto
from payments.config import SIM_PUBLIC_KEY_ID
from payments.simulator.state import STATE, SimError, SimPayState

_AUTH = re.compile(r'(\w+)="([^"]*)"')
_templates = Environment(loader=FileSystemLoader([Path(__file__).parent / "templates", console_shell.TEMPLATE_DIR]),
                         autoescape=select_autoescape(["html"]))

api = APIRouter(prefix="/v3")
def _direct_loopback_only(request: Request) -> None:
    """The simulator's controls (pay, fail, forge a notification, read its state) answer this machine only."""
    if not is_direct_loopback(request.client.host if request.client else None, request.headers):
        raise HTTPException(status_code=403, detail="支付模拟器的控制接口只接受本机访问")


admin = APIRouter(prefix="/_admin", dependencies=[Depends(_direct_loopback_only)])


def _signed(status: int, payload: dict[str, Any] | None) -> Response:
    """An answer signed as WeChat Pay signs them (the SDK refuses an unsigned 2xx)."""
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    timestamp, nonce = str(int(STATE.now())), secrets.token_hex(16)
    headers = {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": SIM_PUBLIC_KEY_ID,
               "Wechatpay-Signature": notify_crypto.sign(STATE.platform_key, timestamp, nonce, body),
               "Wechatpay-Signature-Type": notify_crypto.SIGNATURE_TYPE, "Request-ID": secrets.token_hex(8)}
    return Response(body.encode(), status_code=status, headers=headers, media_type="application/json")


def _error(exc: SimError) -> Response:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)


def _base(request: Request) -> str:
    scheme, host = request.url.scheme, request.headers.get("host", "")
    return f"{scheme}://{host}{request.scope.get('root_path', '')}"


async def _authenticated(request: Request) -> tuple[str, dict[str, Any]]:
    """Check the merchant's ``Authorization`` signature; returns (raw body, parsed JSON)."""
    raw = (await request.body()).decode("utf-8")
    header = request.headers.get("authorization", "")
    if not header.startswith("WECHATPAY2-SHA256-RSA2048 "):
        raise SimError(401, "SIGN_ERROR", "缺少签名")
    parts = dict(_AUTH.findall(header))
    path = request.url.path
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    if request.url.query:
        path += "?" + request.url.query
    message = f"{request.method}\n{path}\n{parts.get('timestamp', '')}\n{parts.get('nonce_str', '')}\n{raw}"
    # rsa_verify signs "a\nb\nc\n": the request's five lines fold into its three slots.
    first, _, rest = message.partition("\n")
    second, _, third = rest.partition("\n")
    if not rsa_verify(first, second, third, parts.get("signature", ""), STATE.merchant_public_key):
        raise SimError(401, "SIGN_ERROR", "签名错误")
    with STATE.lock:
        STATE.requests.append({"seq": len(STATE.requests) + 1, "at": STATE.now(), "method": request.method,
                               "path": path, "mchid": parts.get("mchid", "")})
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        raise SimError(400, "PARAM_ERROR", "请求体不是 JSON") from None
    return raw, data if isinstance(data, dict) else {}


def _route(method: str, path: str, router: APIRouter = api) -> Any:
    def register(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                _, data = await _authenticated(request)
                with STATE.lock:
                    status, payload = fn(STATE, request, data)
            except SimError as exc:
                return _error(exc)
            return _signed(status, payload)

        router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)
        return fn

    return register


def _amount(data: dict[str, Any]) -> int:
    total = (data.get("amount") or {}).get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        raise SimError(400, "PARAM_ERROR", "amount.total 必须是正整数（分）")
    return total


@_route("POST", "/pay/transactions/jsapi")
def _jsapi(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    no = str(data.get("out_trade_no", ""))
    if not re.fullmatch(r"[A-Za-z0-9_\-|*]{6,32}", no):
        raise SimError(400, "PARAM_ERROR", "out_trade_no 格式不正确")
    amount = _amount(data)
    if not (data.get("payer") or {}).get("openid"):
        raise SimError(400, "PARAM_ERROR", "缺少 payer.openid")
    existing = s.orders.get(no)
    if existing is not None:
        if existing["amount"] != amount or existing["trade_type"] != "JSAPI":
            raise SimError(400, "INVALID_REQUEST", "商户订单号重复，且参数不一致")
        if existing["trade_state"] in ("SUCCESS", "REFUND"):
            raise SimError(400, "ORDERPAID", "订单已支付")
        return 200, {"prepay_id": existing["prepay_id"]}
    order = {"appid": data.get("appid", ""), "mchid": data.get("mchid", ""), "out_trade_no": no,
             "trade_type": "JSAPI", "trade_state": "NOTPAY", "trade_state_desc": "未支付", "amount": amount,
             "openid": data["payer"]["openid"], "description": data.get("description", ""),
             "notify_url": data.get("notify_url", ""), "prepay_id": "wx" + secrets.token_hex(14),
             "created_at": s.now()}
    s.orders[no] = order
    return 200, {"prepay_id": order["prepay_id"]}


@_route("GET", "/pay/transactions/out-trade-no/{out_trade_no}")
def _query(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, s.view(s.order(request.path_params["out_trade_no"]))


@_route("POST", "/pay/transactions/out-trade-no/{out_trade_no}/close")
def _close(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, None]:
    o = s.order(request.path_params["out_trade_no"])
    if o["trade_state"] in ("SUCCESS", "REFUND"):
        raise SimError(400, "ORDERPAID", "订单已支付，不能关闭")
    o["trade_state"], o["trade_state_desc"] = "CLOSED", "已关闭"
    return 204, None


@_route("POST", "/refund/domestic/refunds")
def _refund(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    no = str(data.get("out_refund_no", ""))
    if no in s.refunds:
        return 200, _refund_view(s.refunds[no])
    o = s.order(str(data.get("out_trade_no", "")))
    refund = (data.get("amount") or {}).get("refund")
    if o["trade_state"] not in ("SUCCESS", "REFUND"):
        raise SimError(400, "INVALID_REQUEST", "订单未支付，不能退款")
    paid = o.get("paid_amount", o["amount"])
    if not isinstance(refund, int) or refund <= 0 or refund + o.get("refunded", 0) > paid:
        raise SimError(400, "INVALID_REQUEST", "退款金额超过可退金额")
    o["refunded"] = o.get("refunded", 0) + refund
    if o["refunded"] == paid:
        o["trade_state"], o["trade_state_desc"] = "REFUND", "转入退款"
    outcome = s.refund_next.pop(0) if s.refund_next else "success"
    row = {"refund_id": "50300" + secrets.token_hex(10), "out_refund_no": no, "out_trade_no": o["out_trade_no"],
           "status": "SUCCESS" if outcome == "success" else "PROCESSING",
           "amount": {"refund": refund, "total": o["amount"], "currency": "CNY"},
           "notify_url": str(data.get("notify_url") or o.get("notify_url", ""))}
    if row["status"] == "SUCCESS":
        row["success_time"] = s.now_dt().isoformat(timespec="seconds")
        if s.auto_notify:  # WeChat Pay notifies the result even of a refund done at once
            _refund_notify_later(s, no, s.notify_delay)
    s.refunds[no] = row
    return 200, _refund_view(row)


def _refund_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "notify_url"}


def _refund_notify_later(s: SimPayState, out_refund_no: str, delay: float) -> None:
    def fire() -> None:
        with s.lock:
            r = s.refunds.get(out_refund_no)
            if r is None or not r.get("notify_url"):
                return
            headers, body = s.build_refund_notification(r)
            url = r["notify_url"]
        s.deliver(url, headers, body, "退款通知")

    timer = threading.Timer(delay, fire)
    timer.daemon = True
    timer.start()


@_route("GET", "/refund/domestic/refunds/{out_refund_no}")
def _refund_query(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    row = s.refunds.get(request.path_params["out_refund_no"])
    if row is None:
        raise SimError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return 200, _refund_view(row)


@_route("GET", "/bill/tradebill")
def _tradebill(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        day = date.fromisoformat(request.query_params.get("bill_date", ""))
    except ValueError:
        raise SimError(400, "PARAM_ERROR", "bill_date 格式不正确") from None
    token, digest = s.publish_bill(day)
    return 200, {"hash_type": "SHA1", "hash_value": digest,
                 "download_url": f"{_base(request)}/v3/billdownload/file?token={token}"}


@api.get("/billdownload/file", include_in_schema=False)
async def _download(request: Request) -> Response:
    try:
        await _authenticated(request)
    except SimError as exc:
        return _error(exc)
    content = STATE.bills.get(request.query_params.get("token", ""))
    if content is None:
        return _error(SimError(404, "RESOURCE_NOT_EXISTS", "账单不存在"))
    return Response(content, media_type="application/octet-stream")


# --- withholding (委托代扣) ---------------------------------------------------------------------------

@_route("POST", "/papay/contracts")
def _contract(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    code = str(data.get("contract_code", ""))
    account = data.get("account") or {}
    if not code or not str(account.get("account_no", "")).isdigit():
        raise SimError(400, "PARAM_ERROR", "签约参数不正确")
    for c in s.contracts.values():
        if c["contract_code"] == code:
            return 200, {"contract_id": c["contract_id"], "contract_state": c["state"]}
    contract_id = "SIMC" + secrets.token_hex(10)
    s.contracts[contract_id] = {"contract_id": contract_id, "contract_code": code, "state": "SIGNED",
                                "account_tail": str(account["account_no"])[-4:],
                                "max_amount": int(data.get("max_amount") or 0)}
    return 200, {"contract_id": contract_id, "contract_state": "SIGNED"}


@_route("POST", "/papay/contracts/{contract_id}/terminate")
def _terminate(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, None]:
    c = s.contracts.get(request.path_params["contract_id"])
    if c is None:
        raise SimError(404, "CONTRACT_NOT_EXIST", "协议不存在")
    c["state"] = "TERMINATED"
    return 204, None


@_route("POST", "/papay/transactions")
def _withhold(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    c = s.contracts.get(str(data.get("contract_id", "")))
    if c is None or c["state"] != "SIGNED":
        raise SimError(400, "CONTRACT_NOT_EXIST", "代扣协议不存在或已解约")
    no = str(data.get("out_trade_no", ""))
    amount = _amount(data)
    if c["max_amount"] and amount > c["max_amount"]:
        raise SimError(400, "EXCEED_LIMIT", "超过授权单笔限额")
    if no in s.orders:
        o = s.orders[no]
        if o["amount"] != amount:
            raise SimError(400, "INVALID_REQUEST", "商户订单号重复，且参数不一致")
        return 200, {"out_trade_no": no, "trade_state": "ACCEPT"}
    outcome = s.withhold_next.pop(0) if s.withhold_next else "success"
    if outcome == "error":
        raise SimError(500, "SYSTEM_ERROR", "系统繁忙，请稍后重试")
    o = {"appid": data.get("appid", ""), "mchid": data.get("mchid", ""), "out_trade_no": no,
         "trade_type": "PAP", "trade_state": "ACCEPT", "trade_state_desc": "已受理", "amount": amount,
         "openid": "", "description": data.get("description", ""), "notify_url": data.get("notify_url", ""),
         "contract_id": c["contract_id"], "created_at": s.now()}
    s.orders[no] = o
    if outcome == "success":
        s.succeed(o)
        if s.auto_notify:
            s.notify_later(no, s.notify_delay)
    elif outcome == "fail":
        s.fail(o)
    return 200, {"out_trade_no": no, "trade_state": "ACCEPT"}


@_route("GET", "/papay/transactions/out-trade-no/{out_trade_no}")
def _withhold_query(s: SimPayState, request: Request, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, s.view(s.order(request.path_params["out_trade_no"]))


# --- admin ---------------------------------------------------------------------------------------------

def _forge(s: SimPayState, o: dict[str, Any], forge: str) -> tuple[dict[str, str], bytes]:
    if forge == "stale":
        return s.build_notification(o, timestamp=str(int(s.now()) - 3600))
    headers, body = s.build_notification(o)
    if forge == "signature":
        headers["Wechatpay-Signature"] = headers["Wechatpay-Signature"][:-8] + "AAAAAAA="
    elif forge == "serial":
        headers["Wechatpay-Serial"] = "PUB_KEY_ID_FORGED"
    elif forge == "body":
        body = body.replace(b'"TRANSACTION.', b'"TRANSACTION.X', 1)  # signed text changed after signing
    elif forge == "resource":  # correctly signed, but the resource was not encrypted with our APIv3 key
        envelope = json.loads(body)
        envelope["resource"]["ciphertext"] = envelope["resource"]["ciphertext"][:-6] + "AAAAAA"
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        headers["Wechatpay-Signature"] = notify_crypto.sign(s.platform_key, headers["Wechatpay-Timestamp"],
                                                            headers["Wechatpay-Nonce"], text)
        body = text.encode()
    elif forge:
        raise SimError(400, "PARAM_ERROR", f"unknown forgery {forge}")
    return headers, body


def _send(s: SimPayState, o: dict[str, Any], *, copies: int = 1, forge: str = "", replay: bool = False,
          reuse_nonce: bool = False, duplicate_of_last: bool = False) -> list[int]:
    """Send (outside the lock) ``copies`` notifications of the order: fresh signatures, same notification id.

    ``replay``: each request is sent twice, byte for byte (a re-delivery the receiver acknowledges);
    ``reuse_nonce``: after each, a correctly signed request with another body under the same nonce and
    timestamp (a replay the receiver refuses)."""
    url = o.get("notify_url", "")
    if not url:
        raise SimError(400, "PARAM_ERROR", "订单没有 notify_url")
    statuses = []
    event_id = s.sent.get(o["out_trade_no"], {}).get("event_id") if duplicate_of_last else None
    for _ in range(max(1, copies)):
        with s.lock:
            if forge:
                headers, body = _forge(s, o, forge)
            else:
                headers, body = s.build_notification(o, event_id=event_id)
            event_id = s.sent[o["out_trade_no"]]["event_id"]
        statuses.append(s.deliver(url, headers, body, forge or "通知"))
        if replay:  # the very same request again (same nonce, same body)
            statuses.append(s.deliver(url, headers, body, "原样重发"))
        if reuse_nonce:  # another body (a fresh notification id) signed under the same nonce and timestamp
            with s.lock:
                sent = s.sent[o["out_trade_no"]]
                other_headers, other_body = s.build_notification(
                    o, timestamp=headers["Wechatpay-Timestamp"], nonce=headers["Wechatpay-Nonce"])
                s.sent[o["out_trade_no"]] = sent
            statuses.append(s.deliver(url, other_headers, other_body, "同 nonce 另一内容"))
    return statuses


def _admin(path: str) -> Any:
    def register(fn: Any) -> Any:
        def endpoint(body: dict[str, Any] | None = None) -> JSONResponse:
            try:
                result = fn(STATE, body or {})
            except SimError as exc:
                return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
            except (KeyError, TypeError, ValueError) as exc:
                return JSONResponse({"code": "PARAM_ERROR", "message": str(exc)}, status_code=400)
            return JSONResponse({"code": "OK", **(result or {})})

        admin.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
        return fn

    return register


@_admin("/reset")
def _reset(s: SimPayState, _: dict[str, Any]) -> dict[str, Any]:
    s.reset()
    return {}


@_admin("/config")
def _config(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    with s.lock:
        if "auto_notify" in body:
            s.auto_notify = bool(body["auto_notify"])
        if "notify_delay" in body:
            s.notify_delay = float(body["notify_delay"])
        if "advance" in body:
            s.offset += float(body["advance"])
    return {"auto_notify": s.auto_notify, "offset": s.offset}


@_admin("/pay")
def _pay(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    with s.lock:
        o = s.order(str(body["out_trade_no"]))
        if body.get("outcome", "success") == "success":
            s.succeed(o, body.get("amount"))
        else:
            s.fail(o)
        delay = float(body.get("delay") or 0)
    statuses: list[int] = []
    if body.get("notify", True) and o["trade_state"] == "SUCCESS":
        if delay > 0:
            s.notify_later(o["out_trade_no"], delay)
        else:
            statuses = _send(s, o)
    return {"trade_state": o["trade_state"], "deliveries": statuses}


@_admin("/notify")
def _notify(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    with s.lock:
        o = s.order(str(body["out_trade_no"]))
    statuses = _send(s, o, copies=int(body.get("copies", 1)), forge=str(body.get("forge", "")),
                     replay=bool(body.get("replay")), reuse_nonce=bool(body.get("reuse_nonce")),
                     duplicate_of_last=bool(body.get("duplicate", True)))
    return {"deliveries": statuses}


@_admin("/withhold_next")
def _withhold_next(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    outcomes = [str(x) for x in body["outcomes"]]
    if any(x not in ("success", "fail", "pending", "error") for x in outcomes):
        raise SimError(400, "PARAM_ERROR", "outcomes: success | fail | pending | error")
    with s.lock:
        s.withhold_next = outcomes
    return {"withhold_next": outcomes}


@_admin("/refund_next")
def _refund_next(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    outcomes = [str(x) for x in body["outcomes"]]
    if any(x not in ("success", "processing") for x in outcomes):
        raise SimError(400, "PARAM_ERROR", "outcomes: success | processing")
    with s.lock:
        s.refund_next = outcomes
    return {"refund_next": outcomes}


def _send_refund(s: SimPayState, out_refund_no: str, *, copies: int = 1, forge: str = "",
                 replay: bool = False) -> list[int]:
    statuses = []
    event_id = None
    for _ in range(max(1, copies)):
        with s.lock:
            r = s.refunds.get(out_refund_no)
            if r is None:
                raise SimError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            if r["status"] == "PROCESSING":
                raise SimError(400, "INVALID_REQUEST", "退款处理中，尚无结果可通知")
            if forge == "stale":
                headers, body = s.build_refund_notification(r, timestamp=str(int(s.now()) - 3600))
            else:
                headers, body = s.build_refund_notification(r, event_id=event_id)
                if forge == "signature":
                    headers["Wechatpay-Signature"] = headers["Wechatpay-Signature"][:-8] + "AAAAAAA="
                elif forge:
                    raise SimError(400, "PARAM_ERROR", "forge: signature | stale")
            event_id = s.sent[out_refund_no]["event_id"]
            url = r["notify_url"]
        statuses.append(s.deliver(url, headers, body, forge or "退款通知"))
        if replay:
            statuses.append(s.deliver(url, headers, body, "原样重发"))
    return statuses


@_admin("/refund_settle")
def _refund_settle(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    """A refund under way ends (success | abnormal | closed); its notification is sent unless notify is false."""
    no = str(body["out_refund_no"])
    with s.lock:
        r = s.refunds.get(no)
        if r is None:
            raise SimError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        s.finish_refund(r, str(body.get("outcome", "success")))
        status = r["status"]
    deliveries = _send_refund(s, no) if body.get("notify", True) else []
    return {"status": status, "deliveries": deliveries}


@_admin("/notify_refund")
def _notify_refund(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    """(Re)send a finished refund's notification: duplicates (same id), replays and forgeries included."""
    return {"deliveries": _send_refund(s, str(body["out_refund_no"]), copies=int(body.get("copies", 1)),
                                       forge=str(body.get("forge", "")), replay=bool(body.get("replay")))}


@_admin("/settle")
def _settle(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    with s.lock:
        o = s.order(str(body["out_trade_no"]))
        (s.succeed if body.get("outcome", "success") == "success" else s.fail)(o)
    return {"trade_state": o["trade_state"]}


@_admin("/bill")
def _bill(s: SimPayState, body: dict[str, Any]) -> dict[str, Any]:
    op = body["op"]
    with s.lock:
        if op == "extra":
            s.bill_extra.append({"out_trade_no": body["out_trade_no"], "transaction_id": body.get(
                "transaction_id") or "42000" + secrets.token_hex(10), "trade_state": "SUCCESS",
                "amount": int(body["amount"]), "refund_amount": 0, "at": body["date"] + " 12:00:00",
                "date": body["date"], "description": "渠道多出的交易"})
        elif op == "drop":
            s.bill_drop.add(str(body["out_trade_no"]))
        elif op == "amount":
            s.bill_amount[str(body["out_trade_no"])] = int(body["amount"])
        elif op == "refund":  # refunded in full in the merchant platform, outside the product
            o = s.order(str(body["out_trade_no"]))
            o["refunded"] = o.get("paid_amount", o["amount"])
            o["trade_state"], o["trade_state_desc"] = "REFUND", "转入退款"
        else:
            raise SimError(400, "PARAM_ERROR", "op: extra | drop | amount | refund")
    return {}


@admin.get("/state", include_in_schema=False)
def _state() -> JSONResponse:
    with STATE.lock:
        return JSONResponse(json.loads(json.dumps(STATE.snapshot(), default=str)))


@admin.get("/requests", include_in_schema=False)
def _requests(path: str = "") -> JSONResponse:
    with STATE.lock:
        return JSONResponse({"requests": [r for r in STATE.requests if path in r["path"]]})


REFUND_LABELS = {"PROCESSING": "退款处理中", "SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
STATE_LABELS = {"NOTPAY": "未支付", "SUCCESS": "支付成功", "CLOSED": "已关闭", "PAYERROR": "支付失败",
                "REFUND": "已退款", "ACCEPT": "已受理（待扣款）", "USERPAYING": "支付中"}


def console(request: Request) -> HTMLResponse:
    with STATE.lock:
        orders = sorted(STATE.orders.values(), key=lambda o: o.get("created_at", 0), reverse=True)[:100]
        deliveries = list(reversed(STATE.deliveries[-30:]))
        contracts = list(STATE.contracts.values())
        refunds = list(reversed(list(STATE.refunds.values())))[:50]
        page = _templates.get_template("pay_simulator.html").render(
            orders=orders, deliveries=deliveries, contracts=contracts, labels=STATE_LABELS, refunds=refunds,
            refund_labels=REFUND_LABELS,
            auto_notify=STATE.auto_notify, prefix=request.scope.get("root_path", ""))
    return HTMLResponse(page)


def create_simulator_app() -> FastAPI:
    app = FastAPI(title="WeChat Pay simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(api)
    app.include_router(admin)
    app.add_api_route("/", console, methods=["GET"], include_in_schema=False)
    return app
