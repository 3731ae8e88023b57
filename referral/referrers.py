"""Referrers (推荐人): customers, external brokers (经纪人), partner channels (渠道) and staff, each with a
short unambiguous referral code and at most one parent (the second level)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core import audit, clock, pii
from core.db import insert_ignore
from core.money import parse_rate
from crm.models import Customer, Staff
from referral.exceptions import InvalidReferrer, ReferralLoop, ReferrerDisabled, ReferrerNotFound
from referral.models import (
    Attribution,
    ReferralConfig,
    Referrer,
    ReferrerKind,
    ReferrerStatus,
)

# No 0/O, 1/I/L: a code read aloud or copied by hand stays unambiguous.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
MAX_CHAIN = 64  # a parent chain is never this deep; a guard against corrupt data


def get_config(session: Session) -> ReferralConfig:
    config = session.get(ReferralConfig, 1)
    if config is None:  # defaults on first use; two first uses at once insert one row
        defaults = ReferralConfig(lock_days=180, max_levels=2, default_clawback_days=30,
                                  payout_tax_rate=Decimal(0), payout_fee_amount=0)
        insert_ignore(session, ReferralConfig, {
            "id": 1, "lock_days": defaults.lock_days, "max_levels": defaults.max_levels,
            "default_clawback_days": defaults.default_clawback_days, "payout_tax_rate": defaults.payout_tax_rate,
            "payout_fee_amount": defaults.payout_fee_amount, "updated_at": clock.now()}, ["id"])
        config = session.get(ReferralConfig, 1)
    return config


def update_config(session: Session, *, lock_days: int | None = None, max_levels: int | None = None,
                  default_clawback_days: int | None = None, payout_tax_rate=None,  # noqa: ANN001
                  payout_fee_amount: int | None = None) -> ReferralConfig:
    config = get_config(session)
    before = {"lock_days": config.lock_days, "max_levels": config.max_levels}
    if max_levels is not None:
        if max_levels not in (1, 2):
            raise InvalidReferrer("分佣层级只能是 1 或 2", code="invalid_max_levels")
        config.max_levels = max_levels
    if lock_days is not None:
        if lock_days < 0:
            raise InvalidReferrer("锁定天数不能为负数", code="invalid_lock_days")
        config.lock_days = lock_days
    if default_clawback_days is not None:
        config.default_clawback_days = max(0, default_clawback_days)
    if payout_tax_rate is not None:
        rate = parse_rate(payout_tax_rate)
        if not rate.is_finite() or not Decimal(0) <= rate < Decimal(1):
            raise InvalidReferrer("代扣税率须在 0 到 1 之间", code="invalid_tax_rate")
        config.payout_tax_rate = rate
    if payout_fee_amount is not None:
        config.payout_fee_amount = max(0, payout_fee_amount)
    config.updated_at = clock.now()
    session.flush()
    audit.record(session, "referral.config", entity_type="referral_config", entity_id=1, before=before,
                 after={"lock_days": config.lock_days, "max_levels": config.max_levels})
    return config


def lock_window(session: Session) -> timedelta:
    return timedelta(days=get_config(session).lock_days)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _unused_code(session: Session) -> str:
    """A code not taken yet (the unique constraint still decides a concurrent tie)."""
    for _ in range(16):
        code = new_code()
        if session.scalar(select(Referrer.id).where(Referrer.code == code)) is None:
            return code
    raise InvalidReferrer("推荐码生成失败，请重试", code="code_generation_failed")  # pragma: no cover


@dataclass
class ReferrerInput:
    kind: str
    name: str = ""
    customer_id: int | None = None
    staff_id: int | None = None
    parent_id: int | None = None
    payee_name: str | None = None
    payee_channel: str | None = None
    payee_bank: str | None = None
    payee_account: str | None = None


def _mask_account(account: str) -> str:
    digits = account.replace(" ", "")
    return f"****{digits[-4:]}" if len(digits) > 4 else "****"


# Payee fields end up in the transfer file finance opens in Excel: a person's or company's name, a
# bank's name, an account of letters and digits. Each begins with a letter or a Chinese character,
# so none can begin like a formula (=, +, -, @); core.exports neutralises the files as well.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
PAYEE_NAME = re.compile(f"[{_CJK}A-Za-z][{_CJK}A-Za-z0-9·•.'’\\- ()（）]{{0,59}}")
PAYEE_BANK = re.compile(f"[{_CJK}A-Za-z][{_CJK}A-Za-z0-9·.&'’\\- ()（）]{{1,59}}")
PAYEE_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{3,63}")


def set_payee(referrer: Referrer, *, name: str | None, channel: str | None, bank: str | None,
              account: str | None) -> None:
    """Set where commission is paid; each field is checked (Chinese message, nothing changed on error)."""
    if channel and channel not in ("bank", "wechat"):
        raise InvalidReferrer("收款方式只能是银行卡或微信", code="invalid_payee_channel")
    name = (name or "").strip()
    bank = (bank or "").strip()
    if name and not PAYEE_NAME.fullmatch(name):
        raise InvalidReferrer("收款人姓名只能由中文或英文字母组成（可含间隔号、空格、括号），不能以符号开头，最多 60 个字",
                              code="invalid_payee_name")
    if bank and not PAYEE_BANK.fullmatch(bank):
        raise InvalidReferrer("开户行请填写银行名称（中文或英文，可含数字、括号），不能以符号开头，最多 60 个字",
                              code="invalid_payee_bank")
    if account:
        account = account.strip()
        if len(account) > 64:
            raise InvalidReferrer("收款账号过长", code="invalid_payee_account")
        if not PAYEE_ACCOUNT.fullmatch(account):
            raise InvalidReferrer("收款账号只能由数字、英文字母、空格、下划线或连字符组成，且以数字或字母开头",
                                  code="invalid_payee_account")
    referrer.payee_name = name or None
    referrer.payee_channel = channel or None
    referrer.payee_bank = bank or None
    if account:
        referrer.payee_account_enc = pii.seal(pii.PAYLOAD, account)
        referrer.payee_account_masked = _mask_account(account)


def create_referrer(session: Session, data: ReferrerInput) -> Referrer:
    """Create a referrer with a fresh unique code. A customer referrer's parent defaults to the
    referrer the customer was attributed to; an explicit parent may not close a loop."""
    if data.kind not in set(ReferrerKind):
        raise InvalidReferrer("推荐人类型不正确", code="invalid_referrer_kind")
    name = (data.name or "").strip()
    if data.kind == ReferrerKind.CUSTOMER:
        customer = session.get(Customer, data.customer_id) if data.customer_id else None
        if customer is None:
            raise InvalidReferrer("客户推荐人需要关联一个客户", code="referrer_needs_customer")
        name = name or customer.name
        existing = session.scalar(select(Referrer).where(Referrer.customer_id == customer.id))
        if existing is not None:
            return existing
        if data.parent_id is None:
            data.parent_id = session.scalar(select(Attribution.referrer_id)
                                            .where(Attribution.customer_id == customer.id))
    elif data.kind == ReferrerKind.STAFF:
        staff = session.get(Staff, data.staff_id) if data.staff_id else None
        if staff is None:
            raise InvalidReferrer("员工推荐人需要关联一名员工", code="referrer_needs_staff")
        name = name or staff.display_name
        existing = session.scalar(select(Referrer).where(Referrer.staff_id == staff.id))
        if existing is not None:
            return existing
    if not name:
        raise InvalidReferrer("请填写推荐人名称", code="referrer_name_required")
    if data.parent_id is not None:
        parent = get_referrer(session, data.parent_id)
        if parent.status != ReferrerStatus.ACTIVE:
            raise ReferrerDisabled("上级推荐人已停用")
    referrer = Referrer(kind=data.kind, name=name[:60], customer_id=data.customer_id if data.kind == "customer" else None,
                        staff_id=data.staff_id if data.kind == "staff" else None, parent_id=data.parent_id,
                        status=ReferrerStatus.ACTIVE, created_at=clock.now())
    set_payee(referrer, name=data.payee_name, channel=data.payee_channel, bank=data.payee_bank,
              account=data.payee_account)
    referrer.code = _unused_code(session)
    session.add(referrer)
    session.flush()
    audit.record(session, "referral.referrer.create", entity_type="referrer", entity_id=referrer.id,
                 after={"kind": referrer.kind, "name": referrer.name, "code": referrer.code,
                        "parent_id": referrer.parent_id})
    return referrer


def ensure_staff_referrer(session: Session, staff_id: int) -> Referrer:
    existing = session.scalar(select(Referrer).where(Referrer.staff_id == staff_id))
    return existing or create_referrer(session, ReferrerInput(kind=ReferrerKind.STAFF, staff_id=staff_id))


def get_referrer(session: Session, referrer_id: int, *, for_update: bool = False) -> Referrer:
    stmt = select(Referrer).where(Referrer.id == referrer_id)
    if for_update:
        stmt = stmt.with_for_update()
    referrer = session.scalar(stmt)
    if referrer is None:
        raise ReferrerNotFound()
    return referrer


def lock_referrer(session: Session, referrer_id: int) -> Referrer:
    """Every ledger write for a beneficiary first takes this row lock (PostgreSQL; SQLite writers queue
    on BEGIN IMMEDIATE), so balance checks and the entries written after them are serialised."""
    session.flush()
    return get_referrer(session, referrer_id, for_update=True)


def resolve(session: Session, code_or_id: str | int) -> Referrer:
    """A referrer by id (int or digits) or by referral code."""
    if isinstance(code_or_id, int):
        return get_referrer(session, code_or_id)
    text = str(code_or_id).strip()
    referrer = session.scalar(select(Referrer).where(Referrer.code == text.upper()))
    if referrer is None and text.isdigit():
        referrer = session.get(Referrer, int(text))
    if referrer is None:
        raise ReferrerNotFound(f"推荐码 {text[:12]} 不存在")
    return referrer


def ancestors(session: Session, referrer_id: int | None) -> list[int]:
    """The chain of parents above ``referrer_id`` (nearest first), stopping at a repeat."""
    chain: list[int] = []
    current = referrer_id
    while current is not None and len(chain) < MAX_CHAIN:
        parent = session.scalar(select(Referrer.parent_id).where(Referrer.id == current))
        if parent is None or parent in chain or parent == referrer_id:
            break
        chain.append(parent)
        current = parent
    return chain


def set_parent(session: Session, referrer_id: int, parent_id: int | None) -> Referrer:
    referrer = get_referrer(session, referrer_id, for_update=True)
    if parent_id is not None:
        if parent_id == referrer_id:
            raise ReferralLoop("推荐人不能成为自己的上级")
        get_referrer(session, parent_id)
        if referrer_id in ancestors(session, parent_id):
            raise ReferralLoop()
    before = referrer.parent_id
    referrer.parent_id = parent_id
    session.flush()
    audit.record(session, "referral.referrer.parent", entity_type="referrer", entity_id=referrer_id,
                 before={"parent_id": before}, after={"parent_id": parent_id})
    return referrer


def set_status(session: Session, referrer_id: int, status: str) -> Referrer:
    if status not in set(ReferrerStatus):
        raise InvalidReferrer("状态不正确", code="invalid_referrer_status")
    referrer = get_referrer(session, referrer_id, for_update=True)
    before = referrer.status
    referrer.status = status
    session.flush()
    audit.record(session, "referral.referrer.status", entity_type="referrer", entity_id=referrer_id,
                 before={"status": before}, after={"status": status})
    return referrer


def list_referrers(session: Session, *, kind: str | None = None, q: str | None = None, limit: int = 200,
                   offset: int = 0) -> list[Referrer]:
    stmt = referrers_query(kind=kind, q=q).order_by(Referrer.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def referrers_query(*, kind: str | None = None, q: str | None = None) -> Select[Any]:
    """The referrer list's SELECT (no order): the page and its export."""
    stmt = select(Referrer)
    if kind:
        stmt = stmt.where(Referrer.kind == kind)
    if q and q.strip():
        text = q.strip()
        stmt = stmt.where((Referrer.name.contains(text, autoescape=True)) | (Referrer.code == text.upper()))
    return stmt
