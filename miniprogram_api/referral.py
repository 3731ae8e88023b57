"""Referral in the mini-program, through the referral domain: my code (the customer's own referrer),
the share scene (小程序码 through ``wxacode.getUnlimited``), attribution of a new user at first login,
and my invitees (masked).

- The code is the customer's ``referral.Referrer`` code (created on first ask); the scene is
  ``r=<code>`` (WeChat allows 32 characters).
- A customer the login created (a person already known through WeCom or an import is not "new")
  who arrived through a scene is attributed by ``referral.attribution.attribute(…, "miniprogram")``:
  first touch wins there (one row per customer), self-referrals and loops are refused there, and the
  commission ledger follows it. This channel also keeps its own record of the touch
  (:class:`MpReferralAttribution`: the scene and when), once per customer.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import insert_ignore
from core.errors import AppError
from core.money import fen_to_yuan
from crm import customers
from miniprogram_api.errors import MpErrorCode
from miniprogram_api.models import MpReferralAttribution
from referral import attribution, mine, referrers
from referral.models import WITHDRAWAL_STATUS_LABELS, Referrer, ReferrerKind

SCENE_PREFIX = "r="
MAX_SCENE = 32
SHARE_PAGE = "pages/index/index"
_CODE_RE = re.compile(rf"^[{referrers.CODE_ALPHABET}]{{4,12}}$")


def my_referrer(session: Session, customer_id: int) -> Referrer:
    """The customer's own referrer record, created on first ask (under whoever referred them)."""
    existing = mine.referrer_for_customer(session, customer_id, create=False)
    if existing is not None:
        return existing
    customer = customers.get_customer(session, None, customer_id)
    return referrers.create_referrer(session, referrers.ReferrerInput(
        kind=ReferrerKind.CUSTOMER, customer_id=customer_id, name=customer.name or f"小程序用户{customer_id}"))


def scene_for(code: str) -> str:
    scene = SCENE_PREFIX + code
    assert len(scene) <= MAX_SCENE
    return scene


def code_of_scene(scene: str | None) -> str | None:
    scene = (scene or "").strip()
    if not scene.startswith(SCENE_PREFIX) or len(scene) > MAX_SCENE:
        return None
    code = scene[len(SCENE_PREFIX):].upper()
    return code if _CODE_RE.match(code) else None


def attribute(session: Session, customer_id: int, scene: str) -> MpReferralAttribution | None:
    """Attribute a new user to the referrer of the scene's code; None when the scene is unknown, refused
    by the referral rules (self-referral, loop, disabled referrer), or the customer is already attributed."""
    code = code_of_scene(scene)
    if code is None:
        return None
    try:
        with session.begin_nested():
            result = attribution.attribute(session, customer_id, code, "miniprogram")
    except AppError:
        return None
    if not result.created:
        return None
    referrer = session.get(Referrer, result.attribution.referrer_id)
    new_id = insert_ignore(session, MpReferralAttribution, {
        "customer_id": customer_id, "referrer_id": referrer.id if referrer else None,
        "referrer_customer_id": referrer.customer_id if referrer else None, "scene": scene.strip()[:MAX_SCENE],
        "at": clock.now()}, ["customer_id"])
    audit.record(session, "mp.referral_attributed", entity_type="customer", entity_id=customer_id,
                 after={"referrer_id": referrer.id if referrer else None, "scene": scene.strip()[:MAX_SCENE]})
    return session.get(MpReferralAttribution, new_id) if new_id is not None else None


def invitees(session: Session, customer_id: int, *, limit: int = 200) -> list[mine.Invitee]:
    own = session.scalar(select(Referrer.id).where(Referrer.customer_id == customer_id))
    return [] if own is None else mine.my_invitees(session, own, limit=limit)


def own_referrer_id(session: Session, customer_id: int) -> int | None:
    return session.scalar(select(Referrer.id).where(Referrer.customer_id == customer_id))


def balance_and_ledger(session: Session, customer_id: int, *, limit: int = 50) -> dict[str, Any]:
    """The logged-in customer's commission balance (derived from the ledger) and latest entries."""
    own = own_referrer_id(session, customer_id)
    balance = mine.my_balance(session, own) if own is not None else None
    lines = mine.my_ledger(session, own, limit=limit) if own is not None else []
    withdrawals = mine.my_withdrawals(session, own) if own is not None else []
    return {
        "balance": {key: yuan(getattr(balance, key) if balance else 0)
                    for key in ("total", "available", "pending", "held", "paid")}
        | {"withdrawable": yuan(balance.withdrawable if balance else 0)},
        "entries": [{"kind": line.kind, "kind_label": line.kind_label, "amount": yuan(line.amount), "at": line.at,
                     "note": line.note} for line in lines],
        "withdrawals": [_withdrawal(w) for w in withdrawals],
    }


def yuan(fen: int) -> str:
    return str(fen_to_yuan(fen))


class NoCommission(AppError):
    code = MpErrorCode.NO_COMMISSION
    status = 409
    message = "您还没有可提现的佣金"


def _withdrawal(w: Any) -> dict[str, Any]:
    return {"id": w.id, "amount": yuan(w.amount), "status": w.status,
            "status_label": WITHDRAWAL_STATUS_LABELS.get(w.status, w.status), "requested_at": w.requested_at}


def withdraw(session: Session, customer_id: int, amount_fen: int) -> dict[str, Any]:
    """A withdrawal request; refused above the withdrawable balance (nothing written)."""
    own = own_referrer_id(session, customer_id)
    if own is None:
        raise NoCommission()
    return _withdrawal(mine.withdraw(session, own, amount_fen))


def set_payee(session: Session, customer_id: int, *, name: str, channel: str, bank: str | None,
              account: str) -> dict[str, Any]:
    """Where withdrawals are paid; the account is sealed and shown masked from then on."""
    referrer = my_referrer(session, customer_id)
    before = referrer.payee_account_masked
    referrers.set_payee(referrer, name=name, channel=channel, bank=bank, account=account)
    session.flush()
    audit.record(session, "referrer.payee", entity_type="referrer", entity_id=referrer.id,
                 before={"account": before}, after={"account": referrer.payee_account_masked},
                 actor=audit.Actor("customer", customer_id, f"小程序用户{customer_id}"))
    return {"name": referrer.payee_name, "channel": referrer.payee_channel, "bank": referrer.payee_bank,
            "account_masked": referrer.payee_account_masked}
