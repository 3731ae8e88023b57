"""The WeChat Pay trade bill (交易账单, ``bill_type=ALL``): CSV, every field prefixed with a backquote,
amounts in yuan with two decimals, a summary block after the lines. :func:`render` writes one (the
simulator), :func:`parse` reads one into :class:`~payments.provider.BillLine` (amounts in fen, exact).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from payments.provider import BillLine

HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
          "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
          "手续费,费率,订单金额,申请退款金额,费率备注").split(",")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
_TXN, _OUT, _TYPE, _STATE, _REFUND, _ORDER = 5, 6, 8, 9, 16, 24


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


_PLAIN = re.compile(r"\d+\.\d\d")


def fen(text: str) -> int:
    text = text.strip().lstrip("`")
    if _PLAIN.fullmatch(text):  # the bill's own form, "1066.19": exact without Decimal
        return int(text.replace(".", ""))
    try:
        value = Decimal(text.strip().lstrip("`") or "0") * 100
    except InvalidOperation:
        raise ValueError(f"账单金额格式不正确：{text!r}") from None
    if value != value.to_integral_value():
        raise ValueError(f"账单金额不是整分：{text!r}")
    return int(value)


def render(rows: Iterable[dict[str, object]], *, appid: str, mchid: str) -> str:
    """rows: out_trade_no, transaction_id, trade_state, amount (fen), refund_amount, at (datetime), description."""
    out = io.StringIO()
    out.write(",".join(HEADER) + "\r\n")
    count = total = refunds = 0
    for r in rows:
        amount, refund = int(r["amount"]), int(r.get("refund_amount") or 0)  # type: ignore[call-overload]
        at = r["at"]
        stamp = at.strftime("%Y-%m-%d %H:%M:%S") if isinstance(at, datetime) else str(at)
        fields = [stamp, appid, mchid, "0", "", str(r["transaction_id"]), str(r["out_trade_no"]), "openid",
                  "JSAPI", str(r["trade_state"]), "OTHERS", "CNY", yuan(amount), "0.00", "", "",
                  yuan(refund), "0.00", "", "", str(r.get("description", ""))[:40], "", "0.00", "0.60%",
                  yuan(amount), yuan(refund), ""]
        out.write(",".join("`" + f.replace(",", " ") for f in fields) + "\r\n")
        count += 1
        total += amount
        refunds += refund
    out.write(SUMMARY_HEADER + "\r\n")
    out.write(",".join("`" + v for v in (str(count), yuan(total), yuan(refunds), "0.00", "0.00", yuan(total),
                                          yuan(refunds))) + "\r\n")
    return out.getvalue()


def parse(text: str) -> list[BillLine]:
    lines: list[BillLine] = []
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return lines
    if [h.strip() for h in header[:7]] != HEADER[:7]:
        raise ValueError("账单表头不正确")
    for row in reader:
        if not row:
            continue
        if row[0].startswith("总交易单数"):
            break
        if len(row) < len(HEADER):
            raise ValueError(f"账单行字段不足：{len(row)} 列")
        f = [c[1:] if c.startswith("`") else c for c in row]
        lines.append(BillLine(out_trade_no=f[_OUT], transaction_id=f[_TXN], trade_state=f[_STATE],
                              amount=fen(f[_ORDER]), refund_amount=fen(f[_REFUND])))
    return lines
