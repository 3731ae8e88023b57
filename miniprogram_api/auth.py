"""Mini-program login and phone binding.

Login: the ``wx.login`` code is remembered (:func:`claim_code`: a second use is refused before WeChat is
asked; committed on its own, before the HTTP call), exchanged at ``sns/jscode2session`` for openid / unionid / session key, and the customer is found by openid or
taken in through ``crm.customers.intake`` (channel ``miniprogram``): a unionid already known from WeCom
merges into that record. The answer is an opaque bearer token; only its SHA-256 is stored, bound to the
openid, with an expiry, revocable. The session key is kept sealed (``pii.seal(PAYLOAD, …)``) for the
older encrypted phone-number payload.

Phone binding (``getPhoneNumber`` code or the encrypted payload): the number is taken in through
``crm.customers.intake`` as well. When it belongs to another customer (met through WeCom or an import)
and this mini-program record is still bare (no phone, no ID number, nothing submitted, no visit), the
mini-program identity moves onto that customer, this channel's rows follow it, and the bare record is
closed as merged. Otherwise the binding is refused.

Phone numbers are re-issued (二次放号): whoever holds a number today may not be the customer who gave it.
When the known customer has applications or loans, the merge waits for the last four characters of
that customer's ID number: the first answer is :class:`IdLast4Required` carrying a ``binding_token``
(the number sealed with the PII key for this mini-program session, valid ten minutes), and
:func:`confirm_binding` merges once the last four match the encrypted ID number. The route counts
every attempt per known number and per mini-program customer (``core.ratelimit``) before it gets here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core import audit, clock, pii
from core.audit import Actor
from core.db import insert_ignore
from core.errors import AppError
from core.security import constant_time_equals, new_token, token_digest
from core.settings import get_settings
from crm import customers
from crm.models import Customer, Stage, Visit
from lending.models import Application, Loan
from lending.models.consent import MpConsent
from miniprogram_api import referral
from miniprogram_api.exceptions import (
    IdLast4Required,
    IdLast4Wrong,
    InvalidSession,
    LoginCodeUsed,
    MpValidation,
    PhoneBindingRefused,
)
from miniprogram_api.models import (
    DraftStatus,
    MpApplicationDraft,
    MpDocument,
    MpReferralAttribution,
    MpSession,
    MpUsedCode,
)
from miniprogram_api.wechat import CodeSession, WechatClient, decrypt_user_data
from referral.models import Referrer

TOKEN_PREFIX = "mp1."  # noqa: S105 - a prefix, not a secret
MAX_CODE = 128


@dataclass(frozen=True)
class Identity:
    """The logged-in customer, as the request's dependencies resolved it."""

    session_id: int
    customer_id: int
    openid: str
    unionid: str | None

    def actor(self, ip: str | None = None) -> Actor:
        return Actor("customer", self.customer_id, f"小程序客户#{self.customer_id}", ip)


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_at: datetime
    customer: Customer
    created: bool
    attributed: bool


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def claim_code(session: Session, code: str) -> str:
    """Remember a wx.login code; a second use is refused (LoginCodeUsed) before WeChat is asked.

    The channel commits this in its own short unit of work before calling WeChat, so no transaction
    stays open over the HTTP call and a code is remembered even when the login fails afterwards."""
    code = (code or "").strip()
    if not code or len(code) > MAX_CODE:
        raise MpValidation("登录凭证不正确", field="code")
    if insert_ignore(session, MpUsedCode, {"code_digest": _digest(code), "used_at": clock.now()},
                     ["code_digest"]) is None:
        raise LoginCodeUsed()
    return code


def login(session: Session, found: CodeSession, *, scene: str | None = None, ip: str | None = None,
          user_agent: str | None = None) -> LoginResult:
    """Open a session for the WeChat identity ``jscode2session`` answered (customer found or taken in)."""
    customer, created = _customer_for(session, found)
    attributed = False
    if created and scene:
        attributed = referral.attribute(session, customer.id, scene) is not None
    token = TOKEN_PREFIX + new_token(32)
    now = clock.now()
    expires = now + timedelta(hours=get_settings().mp_session_ttl_hours)
    session.add(MpSession(token_digest=token_digest(token), customer_id=customer.id, openid=found.openid,
                          unionid=found.unionid, session_key_enc=pii.seal(pii.PAYLOAD, found.session_key),
                          created_at=now, expires_at=expires, ip=(ip or None) and ip[:64],
                          user_agent=(user_agent or None) and user_agent[:200]))
    session.flush()
    audit.record(session, "mp.login", entity_type="customer", entity_id=customer.id,
                 after={"created": created, "attributed": attributed},
                 actor=Actor("customer", customer.id, f"小程序客户#{customer.id}", ip))
    return LoginResult(token, expires, customer, created, attributed)


def _customer_for(session: Session, found: CodeSession) -> tuple[Customer, bool]:
    customer = session.scalar(select(Customer).where(Customer.wechat_openid == found.openid))
    if customer is not None:
        if found.unionid and not customer.wechat_unionid:
            clash = session.scalar(select(Customer.id).where(Customer.wechat_unionid == found.unionid))
            if clash is None:
                customer.wechat_unionid = found.unionid
                session.flush()
        return customer, False
    result = customers.intake(session, customers.CustomerInput(
        wechat_openid=found.openid, wechat_unionid=found.unionid, source="miniprogram", source_detail="小程序登录"),
        channel="miniprogram")
    return result.customer, result.created


def authenticate(session: Session, token: str | None) -> Identity:
    """The identity behind a bearer token; forged, expired, revoked or malformed tokens are refused alike."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise InvalidSession()
    row = session.scalar(select(MpSession).where(MpSession.token_digest == token_digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now():
        raise InvalidSession()
    return Identity(row.id, row.customer_id, row.openid, row.unionid)


def logout(session: Session, ident: Identity) -> None:
    session.execute(update(MpSession).where(MpSession.id == ident.session_id, MpSession.revoked_at.is_(None))
                    .values(revoked_at=clock.now()))


# --- phone binding ---------------------------------------------------------------------------------

def bind_phone_by_code(session: Session, client: WechatClient, ident: Identity, code: str, *,
                       ip: str | None = None) -> Customer:
    code = (code or "").strip()
    if not code or len(code) > MAX_CODE:
        raise MpValidation("手机号授权码不正确", field="code")
    return bind_phone(session, ident, client.phone_number(code), source="getPhoneNumber", ip=ip)


def bind_phone_by_encrypted_data(session: Session, ident: Identity, encrypted_data: str, iv: str, appid: str, *,
                                 ip: str | None = None) -> Customer:
    row = session.get(MpSession, ident.session_id)
    if row is None or not row.session_key_enc:
        raise InvalidSession()
    session_key = pii.open_sealed(pii.PAYLOAD, row.session_key_enc)
    payload = decrypt_user_data(session_key, encrypted_data, iv, appid)
    phone = payload.get("purePhoneNumber") or payload.get("phoneNumber")
    if not phone:
        raise MpValidation("加密数据中没有手机号", field="encrypted_data")
    return bind_phone(session, ident, str(phone), source="encryptedData", ip=ip)


BINDING_TTL = timedelta(minutes=10)
_BINDING_KIND = pii.PAYLOAD


def _binding_token(ident: Identity, phone: str) -> str:
    expires = int((clock.now() + BINDING_TTL).timestamp())
    return pii.seal(_BINDING_KIND, json.dumps({"purpose": "mp.bind", "s": ident.session_id, "p": phone,
                                               "exp": expires}))


def binding_phone(ident: Identity, binding_token: str) -> str:
    """The phone number a ``binding_token`` of this session carries; refused when forged, foreign or stale."""
    try:
        data = json.loads(pii.open_sealed(_BINDING_KIND, binding_token))
    except (AppError, ValueError, TypeError):
        raise MpValidation("绑定凭证无效，请重新授权手机号", field="binding_token") from None
    if (not isinstance(data, dict) or data.get("purpose") != "mp.bind" or data.get("s") != ident.session_id
            or not isinstance(data.get("p"), str) or int(data.get("exp") or 0) < clock.now().timestamp()):
        raise MpValidation("绑定凭证无效或已过期，请重新授权手机号", field="binding_token")
    return data["p"]


def confirm_binding(session: Session, ident: Identity, binding_token: str, id_last4: str, *,
                    ip: str | None = None) -> Customer:
    """The second step of binding a number whose customer has applications or loans."""
    last4 = (id_last4 or "").strip().upper()
    if len(last4) != 4 or not (last4[:3].isdigit() and (last4[3].isdigit() or last4[3] == "X")):
        raise MpValidation("请输入身份证号后四位（数字，最后一位可为 X）", field="id_last4")
    return bind_phone(session, ident, binding_phone(ident, binding_token), source="id_last4", ip=ip,
                      id_last4=last4)


def bind_phone(session: Session, ident: Identity, raw_phone: str, *, source: str, ip: str | None = None,
               id_last4: str | None = None) -> Customer:
    sealed = pii.protect(pii.PHONE, raw_phone)
    me = customers.get_customer(session, None, ident.customer_id, for_update=True)
    actor = ident.actor(ip)
    if me.phone_index == sealed.index:
        return me
    if me.phone_index:
        raise PhoneBindingRefused(f"您的账户已绑定手机号 {me.phone_masked}，如需更换请联系客服")
    other = session.scalar(select(Customer).where(Customer.phone_index == sealed.index, Customer.id != me.id))
    if other is None:
        customer = customers.intake(session, customers.CustomerInput(
            phone=raw_phone, wechat_openid=me.wechat_openid, source="miniprogram"), channel="miniprogram").customer
        if customer.id != me.id or customer.phone_index != sealed.index:  # pragma: no cover - raced by another
            raise PhoneBindingRefused()
    else:
        _ensure_same_person(session, ident, other, pii.normalize_phone(raw_phone), id_last4, actor)
        customer = _fold_into(session, me, other, raw_phone, actor)
    audit.record(session, "mp.phone_bound", entity_type="customer", entity_id=customer.id,
                 after={"phone": sealed.masked, "source": source, "merged_from": me.id if customer.id != me.id
                        else None}, actor=actor)
    return customer


def _has_business(session: Session, customer_id: int) -> bool:
    """Applications or loans: what a stranger holding a re-issued number must not see."""
    submitted = select(MpApplicationDraft.id).where(MpApplicationDraft.customer_id == customer_id,
                                                    MpApplicationDraft.status == DraftStatus.SUBMITTED)
    for stmt in (select(Application.id).where(Application.customer_id == customer_id),
                 select(Loan.id).where(Loan.customer_id == customer_id), submitted):
        if session.scalar(stmt.limit(1)) is not None:
            return True
    return False


def _ensure_same_person(session: Session, ident: Identity, other: Customer, phone: str, id_last4: str | None,
                        actor: Actor) -> None:
    if not _has_business(session, other.id):
        return
    if not other.id_number_enc:
        raise PhoneBindingRefused("该手机号已有申请或贷款记录，请联系客服核实身份后绑定")
    if id_last4 is None:
        raise IdLast4Required(binding_token=_binding_token(ident, phone))
    expected = pii.open_sealed(pii.ID_NUMBER, other.id_number_enc)[-4:].upper()
    if not constant_time_equals(expected, id_last4):
        raise IdLast4Wrong(binding_token=_binding_token(ident, phone))
    audit.record(session, "mp.identity_confirmed", entity_type="customer", entity_id=other.id,
                 detail="身份证号后四位核对一致", actor=actor)


def _is_bare(session: Session, customer: Customer) -> bool:
    if customer.phone_index or customer.id_number_index:
        return False
    submitted = session.scalar(select(MpApplicationDraft.id).where(
        MpApplicationDraft.customer_id == customer.id, MpApplicationDraft.status == DraftStatus.SUBMITTED).limit(1))
    visit = session.scalar(select(Visit.id).where(Visit.customer_id == customer.id).limit(1))
    return submitted is None and visit is None


def _fold_into(session: Session, me: Customer, other: Customer, raw_phone: str, actor: Actor) -> Customer:
    """The phone belongs to ``other``: move this mini-program identity and its rows onto ``other``."""
    customers.get_customer(session, None, other.id, for_update=True)
    if (other.wechat_openid and other.wechat_openid != me.wechat_openid) or (
            other.wechat_unionid and me.wechat_unionid and other.wechat_unionid != me.wechat_unionid):
        raise PhoneBindingRefused("该手机号已绑定其他微信账户，如有疑问请联系客服")
    if not _is_bare(session, me):
        raise PhoneBindingRefused("该手机号已登记在另一位客户名下，请联系客服合并账户")
    openid, unionid = me.wechat_openid, me.wechat_unionid
    me.wechat_openid = me.wechat_unionid = None
    session.flush()
    for model in (MpSession, MpConsent, MpApplicationDraft, MpDocument):
        session.execute(update(model).where(model.customer_id == me.id).values(customer_id=other.id)
                        .execution_options(synchronize_session=False))
    _move_referrals(session, me.id, other.id)
    result = customers.intake(session, customers.CustomerInput(
        phone=raw_phone, wechat_openid=openid, wechat_unionid=unionid, source="miniprogram"), channel="miniprogram")
    if result.customer.id != other.id or result.customer.wechat_openid != openid:  # pragma: no cover - raced
        raise PhoneBindingRefused()
    customers.record_event(session, me.id, "merged", f"小程序账户已合并到客户 #{other.id}（同一手机号）",
                           ref_type="customer", ref_id=other.id)
    customers.set_stage(session, me.id, Stage.LOST)
    customers.record_event(session, other.id, "merged", f"小程序账户 #{me.id} 绑定手机号后合并到本客户",
                           ref_type="customer", ref_id=me.id)
    audit.record(session, "mp.customer_merged", entity_type="customer", entity_id=other.id,
                 before={"customer_id": me.id}, after={"customer_id": other.id}, actor=actor)
    session.expire_all()
    return customers.get_customer(session, None, other.id)


def _move_referrals(session: Session, old_id: int, new_id: int) -> None:
    """The bare record's own referrer (its share code) follows the person when the known customer has
    none; the share scene it arrived through is kept only if the known customer has no record of one.
    The referral domain's attribution of the bare record stays with it: the known customer was not new."""
    if session.scalar(select(Referrer.id).where(Referrer.customer_id == new_id)) is None:
        session.execute(update(Referrer).where(Referrer.customer_id == old_id).values(customer_id=new_id)
                        .execution_options(synchronize_session=False))
    mine = MpReferralAttribution.customer_id == old_id
    if session.scalar(select(MpReferralAttribution.id).where(MpReferralAttribution.customer_id == new_id)):
        session.execute(delete(MpReferralAttribution).where(mine))
    else:
        session.execute(delete(MpReferralAttribution).where(mine, MpReferralAttribution.referrer_customer_id == new_id))
        session.execute(update(MpReferralAttribution).where(mine).values(customer_id=new_id)
                        .execution_options(synchronize_session=False))
    session.flush()
