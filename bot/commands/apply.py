"""进件 <客户> <产品> <金额> <期限>: start a loan application through lending's hand-off
(:func:`lending.applications.start_application`, channel "wecom", as the sender's Viewer).

Amounts are read as yuan ("50000", "50000元") or 万 ("5万", "5.5w") and handed over as integer
fen; terms as months ("12", "12期", "12个月"). Range, APR cap, blacklist and "already open"
refusals are lending's own Chinese messages.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from bot.commands import resolve
from bot.commands.parser import Command, CommandInvalid, split_target
from crm.scope import Viewer
from lending import applications, products
from lending.models import Product, ProductVersion

USAGE = "格式：进件 <客户> <产品> <金额> <期限>，例如：进件 张三 信用贷 5万 12期"
_AMOUNT = re.compile(r"^(\d{1,9}(?:\.\d{1,4})?)\s*(万元|万|w|W|元)?$")
_TERM = re.compile(r"^(\d{1,3})\s*(期|个月|月)?$")


def parse_amount_fen(text: str) -> int:
    m = _AMOUNT.match(text.strip())
    if m is None:
        raise CommandInvalid(f"金额「{text[:20]}」无法识别，可写 50000、50000元 或 5万")
    try:
        value = Decimal(m.group(1)) * (10000 if (m.group(2) or "").lower() in ("万", "万元", "w") else 1) * 100
    except InvalidOperation:
        raise CommandInvalid(f"金额「{text[:20]}」无法识别") from None
    if value != value.to_integral_value() or value <= 0:
        raise CommandInvalid("金额最多精确到分")
    return int(value)


def parse_term(text: str) -> int:
    m = _TERM.match(text.strip())
    if m is None or int(m.group(1)) <= 0:
        raise CommandInvalid(f"期限「{text[:20]}」无法识别，可写 12、12期 或 12个月")
    return int(m.group(1))


def _product(session: Session, word: str) -> tuple[Product, ProductVersion]:
    active = [(p, v) for p, v in products.list_products(session, active_only=True) if v is not None]
    if not active:
        raise CommandInvalid("目前没有可申请的产品，请联系主管在控制台配置产品")
    names = "、".join(p.name for p, _ in active[:10])
    exact = [(p, v) for p, v in active if word in (p.name, p.code) or word.lower() == p.code.lower()]
    hits = exact or [(p, v) for p, v in active if word in p.name]
    if not hits:
        raise CommandInvalid(f"没有名为「{word[:20]}」的在售产品。可申请的产品：{names}")
    if len(hits) > 1:
        raise CommandInvalid(f"「{word[:20]}」匹配到多个产品：{'、'.join(p.name for p, _ in hits[:10])}，请写完整名称或代码")
    return hits[0]


def run(session: Session, viewer: Viewer, command: Command) -> str:
    ref, tail = split_target(command.rest)
    parts = tail.split()
    if not ref or len(parts) < 3:
        offered = "、".join(p.name for p, v in products.list_products(session, active_only=True) if v is not None)
        raise CommandInvalid(USAGE + (f"\n可申请的产品：{offered}" if offered else ""))
    product, version = _product(session, parts[0])
    amount_fen, term = parse_amount_fen(parts[1]), parse_term(parts[2])
    customer = resolve.one(session, viewer, ref, example="进件 {ref} " + " ".join(parts[:3]), include_pool=False)
    app = applications.start_application(session, customer.id, version.id, amount_fen, term, viewer=viewer,
                                         channel="wecom")
    label = customer.name or customer.phone_masked or f"#{customer.id}"
    return (f"已为 {label}（#{customer.id}）发起「{product.name}」申请 #{app.id}："
            f"{Decimal(amount_fen) / 100:.2f} 元 / {term} 个月，已进入审批流程，进度会通过应用消息通知您")
