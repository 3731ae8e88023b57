"""Referral in the mini-program: my code, the share scene (小程序码 through ``wxacode.getUnlimited``),
first-touch attribution of a new user at first login, and my invitees (masked).

The scene is ``r=<code>`` (WeChat allows 32 characters). Attribution happens only for a customer the
login created (a person already known through WeCom or an import is not "new"), once: the unique
customer column decides, so the first touch wins. The referral domain may take these rows over later.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import insert_ignore
from crm import customers
from crm.models import Customer
from miniprogram_api.models import MpReferralAttribution, MpReferralCode

SCENE_PREFIX = "r="
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
CODE_LENGTH = 8
MAX_SCENE = 32
SHARE_PAGE = "pages/index/index"
_CODE_RE = re.compile(rf"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")


def my_code(session: Session, customer_id: int) -> MpReferralCode:
    """The customer's referral code, created on first ask (a code collision simply draws again)."""
    for _ in range(10):
        existing = session.scalar(select(MpReferralCode).where(MpReferralCode.customer_id == customer_id))
        if existing is not None:
            return existing
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with session.begin_nested():
                insert_ignore(session, MpReferralCode, {"customer_id": customer_id, "code": code,
                                                        "created_at": clock.now()}, ["customer_id"])
        except IntegrityError:  # the code is taken: draw again
            continue
    raise RuntimeError("could not draw a free referral code")  # pragma: no cover


def scene_for(code: str) -> str:
    scene = SCENE_PREFIX + code
    assert len(scene) <= MAX_SCENE
    return scene


def referrer_of_scene(session: Session, scene: str) -> int | None:
    scene = (scene or "").strip()
    if not scene.startswith(SCENE_PREFIX) or len(scene) > MAX_SCENE:
        return None
    code = scene[len(SCENE_PREFIX):].upper()
    if not _CODE_RE.match(code):
        return None
    return session.scalar(select(MpReferralCode.customer_id).where(MpReferralCode.code == code))


def attribute(session: Session, customer_id: int, scene: str) -> MpReferralAttribution | None:
    """Attribute a new user to the owner of the scene's code; None when the scene is unknown, is their
    own, or the customer already has an attribution (first touch wins)."""
    referrer_id = referrer_of_scene(session, scene)
    if referrer_id is None or referrer_id == customer_id:
        return None
    new_id = insert_ignore(session, MpReferralAttribution, {
        "customer_id": customer_id, "referrer_customer_id": referrer_id, "scene": scene.strip()[:MAX_SCENE],
        "at": clock.now()}, ["customer_id"])
    if new_id is None:
        return None
    customers.record_event(session, customer_id, "referral", f"通过客户 #{referrer_id} 的分享进入小程序",
                           ref_type="customer", ref_id=referrer_id)
    audit.record(session, "mp.referral_attributed", entity_type="customer", entity_id=customer_id,
                 after={"referrer_customer_id": referrer_id, "scene": scene.strip()[:MAX_SCENE]})
    return session.get(MpReferralAttribution, new_id)


def mask_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        return "微信用户"
    return name[0] + "*" * max(1, len(name) - 1)


@dataclass(frozen=True)
class Invitee:
    name_masked: str
    phone_masked: str | None
    at: datetime


def invitees(session: Session, customer_id: int, *, limit: int = 200) -> list[Invitee]:
    rows = session.execute(
        select(Customer.name, Customer.phone_masked, MpReferralAttribution.at)
        .join(Customer, Customer.id == MpReferralAttribution.customer_id)
        .where(MpReferralAttribution.referrer_customer_id == customer_id)
        .order_by(MpReferralAttribution.at.desc(), MpReferralAttribution.id.desc()).limit(limit))
    return [Invitee(mask_name(name), phone, at) for name, phone, at in rows]
