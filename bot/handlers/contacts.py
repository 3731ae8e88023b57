"""Customer-contact events (``change_external_contact``): a customer added, edited, deleted; a
transfer failed. Each handler runs once per event (bot.inbox locks and marks the row).

``add_external_contact`` is the customer-acquisition flow (Dispatch's "flow" shape):

1. the welcome message FIRST — its WelcomeCode dies 20 s after the event and the handler runs on
   the urgent queue; a 41051 answer (used or expired) is logged and never retried;
2. the contact's name and unionid from ``externalcontact/get`` (a failure there only costs the name);
3. intake into the CRM: a new customer is owned by the staff member they added (they are the one
   who will talk to them); an existing one is merged (unionid joins the mini-program identity), and
   if someone else owns it, that is a collision (撞单) as crm.customers defines it; a customer waiting
   in a public pool is claimed by that staff member when the pool's rules allow it;
4. the channel code's meaning: attribution (first touch), the add counted for the daily cap, auto
   tags, and a swap to backup staff when the cap is reached.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import channel_codes
from bot.gateway import get_gateway
from bot.inbox import handles
from bot.models_channel import ChannelCode, WecomRelation
from bot.wecom_errors import WecomApiError, WecomUnavailable
from core import clock
from core.db import insert_ignore
from core.errors import AppError
from core.settings import get_settings
from crm import customers, notify, org_service, pool_service
from crm import tags as crm_tags
from crm.models import Customer, CustomerStatus, Role, Staff, StaffStatus, WeComTransfer
from crm.models.handover import ACTIVE_TRANSFER_STATUSES
from crm.scope import Viewer

log = logging.getLogger(__name__)

EVENT = "event:change_external_contact:"
WELCOME_EXPIRED = 41051
DELETE_BY_TRANSFER = "DELETE_BY_TRANSFER"
RELEASE_REASON = "客户删除了销售"


# --- helpers -------------------------------------------------------------------------------------

def _active_staff(session: Session, userid: str) -> Staff | None:
    staff = org_service.find_by_wecom_userid(session, userid) if userid else None
    return staff if staff is not None and staff.status == StaffStatus.ACTIVE else None


def _customer_by_external(session: Session, external_userid: str) -> Customer | None:
    if not external_userid:
        return None
    return session.scalar(select(Customer).where(Customer.wecom_external_userid == external_userid))


def send_welcome(code: ChannelCode | None, welcome_code: str) -> str:
    """Send the code's welcome text with this WelcomeCode; returns what happened (for the timeline)."""
    if not welcome_code:
        return "none"
    if code is None or not code.welcome_text:
        return "not_configured"
    try:
        get_gateway().send_welcome_msg(welcome_code, text=code.welcome_text)
    except WecomApiError as exc:
        if exc.errcode == WELCOME_EXPIRED:
            log.warning("welcome message not sent: welcome code used or expired (41051), channel code %s", code.id)
            return "expired"
        log.warning("welcome message refused by WeCom (%s), channel code %s", exc.errcode, code.id)
        return "failed"
    except WecomUnavailable:
        log.warning("welcome message not sent: WeCom unreachable, channel code %s", code.id)
        return "failed"
    return "sent"


def fetch_contact(external_userid: str, userid: str) -> dict[str, Any]:
    """Name, unionid and this staff member's remark from ``externalcontact/get`` ({} when it fails)."""
    try:
        answer = get_gateway().get_external_contact(external_userid)
    except (WecomApiError, WecomUnavailable) as exc:
        log.warning("externalcontact/get failed for a new contact: %s", getattr(exc, "errcode", exc))
        return {}
    contact = answer.get("external_contact") or {}
    follow = next((f for f in answer.get("follow_user") or [] if f.get("userid") == userid), {})
    return {"name": str(contact.get("name") or "")[:64], "unionid": str(contact.get("unionid") or "") or None,
            "remark": str(follow.get("remark") or "")[:100] or None}


def upsert_relation(session: Session, external_userid: str, userid: str, *, status: str,
                    staff_id: int | None = None, customer_id: int | None = None, state: str | None = None,
                    remark: str | None = None) -> WecomRelation:
    now = clock.now()
    insert_ignore(session, WecomRelation, {
        "external_userid": external_userid, "staff_userid": userid, "staff_id": staff_id,
        "customer_id": customer_id, "status": status, "state": (state or None) and state[:30], "remark": remark,
        "added_at": now, "updated_at": now}, ["external_userid", "staff_userid"])
    relation = session.scalar(select(WecomRelation).where(WecomRelation.external_userid == external_userid,
                                                          WecomRelation.staff_userid == userid).with_for_update())
    assert relation is not None
    if relation.status != status:
        if status in ("active", "pending"):
            relation.added_at, relation.removed_at = now, None
        else:
            relation.removed_at = now
        relation.status = status
    relation.staff_id = staff_id or relation.staff_id
    relation.customer_id = customer_id or relation.customer_id
    relation.state = ((state or None) and state[:30]) or relation.state
    relation.remark = remark if remark is not None else relation.remark
    relation.updated_at = now
    session.flush()
    return relation


def supervisors_of(session: Session, staff: Staff) -> list[int]:
    """Supervisors (else managers) of the staff member's department, or of the nearest department above."""
    path_ids = [int(p) for p in (staff.department.path or "").strip("/").split("/") if p]
    for dept_id in reversed(path_ids or [staff.department_id]):
        ids = list(session.scalars(select(Staff.id).where(
            Staff.department_id == dept_id, Staff.status == StaffStatus.ACTIVE, Staff.id != staff.id,
            Staff.role.in_([Role.SUPERVISOR.value, Role.MANAGER.value])).order_by(Staff.role.desc(), Staff.id)))
        if ids:
            return ids
    return []


def _label(customer: Customer) -> str:
    return customer.name or customer.phone_masked or f"#{customer.id}"


# --- add_external_contact -------------------------------------------------------------------------

@handles(EVENT + "add_external_contact")
def on_add_external_contact(session: Session, fields: dict[str, str]) -> None:
    userid, ext = fields.get("UserID", ""), fields.get("ExternalUserID", "")
    state = fields.get("State") or None
    code = channel_codes.code_for_state(session, state)
    welcome = send_welcome(code, fields.get("WelcomeCode", ""))  # first: the code dies in 20 s
    if not ext:
        return
    staff = _active_staff(session, userid)
    info = fetch_contact(ext, userid)
    data = customers.CustomerInput(
        name=info.get("name") or "", wecom_external_userid=ext, wechat_unionid=info.get("unionid"),
        source=code.channel if code else "wecom",
        source_detail=(f"渠道码：{code.name}" + (f" / {code.campaign}" if code.campaign else ""))[:120] if code else None)
    result = customers.intake(session, data, channel="wecom", claimant_id=staff.id if staff else None,
                              owner_id=staff.id if staff else None)
    customer = result.customer
    if not result.created and staff is not None and customer.status == CustomerStatus.POOL:
        _claim_from_pool(session, staff, customer)
    upsert_relation(session, ext, userid, status="active", staff_id=staff.id if staff else None,
                    customer_id=customer.id, state=state, remark=info.get("remark"))
    who = staff.display_name if staff else userid
    via = f"通过渠道码「{code.name}」" if code else ""
    customers.record_event(session, customer.id, "wecom.add", f"{via}添加了企业微信（{who}）",
                           actor_staff_id=staff.id if staff else None, ref_type="channel_code",
                           ref_id=code.id if code else None,
                           data={"state": state, "welcome": welcome, "userid": userid,
                                 "referrer": code.referrer_ref if code else None})
    if welcome in ("expired", "failed"):
        customers.record_event(session, customer.id, "wecom.welcome",
                               "欢迎语未发送（欢迎语 code 已过期或已被使用）" if welcome == "expired"
                               else "欢迎语发送失败", ref_type="channel_code", ref_id=code.id if code else None)
    if code is None:
        return
    channel_codes.attribute(session, code, customer.id, staff_id=staff.id if staff else None,
                            new_customer=result.created)
    channel_codes.record_add(session, code, staff_userid=userid, staff_id=staff.id if staff else None,
                             external_userid=ext, customer_id=customer.id)
    live = [t.id for t in crm_tags.live_tags(session, list(code.tag_ids))] if code.tag_ids else []
    if live:
        crm_tags.tag_customers(session, None, [customer.id], live)
    if code.daily_cap is not None:
        try:
            channel_codes.enforce_cap(session, code)
        except (WecomApiError, WecomUnavailable):
            # The add is recorded; the next add (or the periodic restore) tries the swap again.
            log.exception("channel code %s: swapping in backup staff failed", code.id)


def _claim_from_pool(session: Session, staff: Staff, customer: Customer) -> None:
    """A pool customer added this staff member on WeCom: they claim it, under the pool's own rules."""
    try:
        with session.begin_nested():
            pool_service.claim(session, Viewer.of(staff), customer.id)
    except AppError as exc:
        customers.record_event(session, customer.id, "wecom.claim_refused",
                               f"{staff.display_name} 已在企业微信添加该公海客户，但未能自动领取：{exc.message}",
                               actor_staff_id=staff.id)


# --- the other contact events ---------------------------------------------------------------------

@handles(EVENT + "edit_external_contact")
def on_edit_external_contact(session: Session, fields: dict[str, str]) -> None:
    userid, ext = fields.get("UserID", ""), fields.get("ExternalUserID", "")
    info = fetch_contact(ext, userid)
    if not info:
        return
    customer = _customer_by_external(session, ext)
    staff = _active_staff(session, userid)
    upsert_relation(session, ext, userid, status="active", staff_id=staff.id if staff else None,
                    customer_id=customer.id if customer else None, remark=info.get("remark") or "")
    if customer is None:
        return
    if info.get("name") and not customer.name:
        customers.set_name(customer, info["name"])
        customer.updated_at = clock.now()
        session.flush()
    customers.record_event(session, customer.id, "wecom.edit",
                           f"企业微信备注更新：{info.get('remark') or '（无备注）'}",
                           actor_staff_id=staff.id if staff else None)


@handles(EVENT + "add_half_external_contact")
def on_add_half_external_contact(session: Session, fields: dict[str, str]) -> None:
    """The customer added a staff member who has not accepted yet: recorded as a pending relation."""
    userid, ext = fields.get("UserID", ""), fields.get("ExternalUserID", "")
    customer = _customer_by_external(session, ext)
    staff = _active_staff(session, userid)
    relation = session.scalar(select(WecomRelation).where(WecomRelation.external_userid == ext,
                                                          WecomRelation.staff_userid == userid))
    if relation is not None and relation.status == "active":
        return  # an out-of-order half-add after the full add changes nothing
    upsert_relation(session, ext, userid, status="pending", staff_id=staff.id if staff else None,
                    customer_id=customer.id if customer else None, state=fields.get("State"))
    if customer is not None:
        customers.record_event(session, customer.id, "wecom.half_add",
                               f"客户添加了企业微信（{staff.display_name if staff else userid}），待员工通过",
                               actor_staff_id=staff.id if staff else None)


@handles(EVENT + "del_external_contact")
def on_del_external_contact(session: Session, fields: dict[str, str]) -> None:
    """The staff member deleted the customer; part of a transfer when Source=DELETE_BY_TRANSFER."""
    userid, ext = fields.get("UserID", ""), fields.get("ExternalUserID", "")
    by_transfer = fields.get("Source") == DELETE_BY_TRANSFER
    customer = _customer_by_external(session, ext)
    staff = org_service.find_by_wecom_userid(session, userid)
    upsert_relation(session, ext, userid, status="transferred" if by_transfer else "deleted_by_staff",
                    staff_id=staff.id if staff else None, customer_id=customer.id if customer else None)
    if by_transfer:
        return  # the transfer itself is reported through crm.handover; nothing to flag
    channel_codes.mark_deleted(session, ext, userid, "staff")
    if customer is not None:
        customers.record_event(session, customer.id, "wecom.staff_deleted",
                               f"{staff.display_name if staff else userid} 在企业微信删除了该客户",
                               actor_staff_id=staff.id if staff else None)


@handles(EVENT + "del_follow_user")
def on_del_follow_user(session: Session, fields: dict[str, str]) -> None:
    """The customer deleted the salesperson: flag the relation, tell the owner and their supervisor,
    and (setting ``wecom_release_on_customer_delete``) give the customer back to the pool."""
    userid, ext = fields.get("UserID", ""), fields.get("ExternalUserID", "")
    customer = _customer_by_external(session, ext)
    staff = org_service.find_by_wecom_userid(session, userid)
    upsert_relation(session, ext, userid, status="deleted_by_customer", staff_id=staff.id if staff else None,
                    customer_id=customer.id if customer else None)
    channel_codes.mark_deleted(session, ext, userid, "customer")
    if customer is None:
        return
    who = staff.display_name if staff else userid
    customers.record_event(session, customer.id, "wecom.customer_deleted", f"客户在企业微信删除了 {who}",
                           actor_staff_id=None, data={"userid": userid})
    owner = session.get(Staff, customer.owner_id) if customer.owner_id else None
    if owner is not None:
        recipients = [owner.id, *supervisors_of(session, owner)]
        notify.notify(session, recipients, "wecom.customer_deleted", "客户删除了销售",
                      f"客户 {_label(customer)} 在企业微信删除了 {who}，请及时跟进。", customer_id=customer.id)
    if (get_settings().wecom_release_on_customer_delete and owner is not None and staff is not None
            and owner.id == staff.id and customer.status == CustomerStatus.OWNED):
        try:
            with session.begin_nested():
                pool_service.release(session, Viewer.of(owner), customer.id, RELEASE_REASON)
        except AppError as exc:
            log.warning("customer %s not released after del_follow_user: %s", customer.id, exc.code)


def customers_who_deleted_staff(session: Session, staff_id: int | None = None) -> list[int]:
    """Customer ids flagged because they deleted a salesperson (optionally: this one)."""
    stmt = select(WecomRelation.customer_id).where(WecomRelation.status == "deleted_by_customer",
                                                   WecomRelation.customer_id.is_not(None))
    if staff_id is not None:
        stmt = stmt.where(WecomRelation.staff_id == staff_id)
    return sorted(set(session.scalars(stmt)))


# --- transfer_fail ---------------------------------------------------------------------------------

@handles(EVENT + "transfer_fail")
def on_transfer_fail(session: Session, fields: dict[str, str]) -> None:
    """UserID is the TAKEOVER member. A pending transfer of ours for (ExternalUserID, UserID) is
    settled by :func:`bot.transfers.on_transfer_fail`, which owns the transfer state machine's WeCom
    side (it retries while our own call's answer is uncommitted, notifies the owner; its periodic
    ``transfer_result`` poll reconciles anything the event got wrong). A transfer we never asked for
    (made in WeCom's admin console) is only noted on the customer's timeline."""
    from bot import transfers

    takeover, ext = fields.get("UserID", ""), fields.get("ExternalUserID", "")
    pending = session.scalar(select(WeComTransfer.id).where(
        WeComTransfer.external_userid == ext, WeComTransfer.takeover_userid == takeover,
        WeComTransfer.status.in_(ACTIVE_TRANSFER_STATUSES)).limit(1))
    if pending is not None:
        transfers.on_transfer_fail(session, fields)
        return
    customer = _customer_by_external(session, ext)
    log.info("transfer_fail with no pending transfer of ours (takeover %s)", takeover)
    if customer is not None:
        reason = {"customer_refused": "客户拒绝", "customer_limit_exceed": "接替成员客户数已达上限"}.get(
            fields.get("FailReason", ""), fields.get("FailReason") or "未知原因")
        customers.record_event(session, customer.id, "wecom.transfer_fail",
                               f"企业微信转接失败（{reason}），系统中没有对应的待处理转接")
