"""Channel codes (渠道活码): 联系我 QR codes created through WeCom, what they mean, and how they did.

A code is created in WeCom first (``add_contact_way``, type 1 for one staff member, 2 for several,
scene 2 = QR code) and stored with the ``config_id`` WeCom returns: without it the code could never
be edited or deleted. Its ``state`` (≤30 characters, unique) comes back in every
``add_external_contact`` event; what the code means — channel (becomes ``customer.source``),
campaign, staff, referrer, welcome text, auto tags — lives in columns, not in the string.

Daily add cap (每日添加上限), how adds are counted: one :class:`ChannelAdd` row per handled
``add_external_contact`` through the code, per (staff member, external contact, Shanghai business
day of handling) — the same person re-adding the same day counts once. When a staff member's adds
through the code today reach ``daily_cap``, the code is updated in WeCom (``update_contact_way``)
to route to the uncapped primaries plus one backup per capped primary (a single-staff code routes to
the first uncapped of primary then backups). When everyone is capped the code is left as it is.
The periodic ``bot.restore_channel_codes`` puts the primaries back the next Shanghai day.

Statistics: adds and deletions (by the customer / by the staff member) from :class:`ChannelAdd`;
applications and disbursements from the customers attributed to the code (first touch,
:class:`ChannelAttribution`) whose CRM stage is at or past 已进件 / 已放款 (a customer later marked
已流失 no longer counts).

Deleted codes are deleted in WeCom and kept here (``deleted_at``) for their history; their state
stays reserved.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.gateway import Gateway, get_gateway
from bot.models_channel import ChannelAdd, ChannelAttribution, ChannelCode
from bot.wecom_errors import WecomApiError, WecomUnavailable
from core import audit, clock
from core.db import insert_ignore
from core.errors import AppError, PermissionDenied, ValidationFailed
from crm import tags as crm_tags
from crm.models import Customer, Staff, StaffStatus, Stage
from crm.permissions import WECOM_OPS, Permission
from crm.scope import Viewer
from lending.models import Application, Loan

log = logging.getLogger(__name__)

MANAGERS: Permission = WECOM_OPS
STATE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,30}$")
MAX_STAFF = 100
APPLIED_STAGES = (Stage.APPLIED, Stage.APPROVED, Stage.SIGNED, Stage.DISBURSED, Stage.REPAYING, Stage.CLOSED)
DISBURSED_STAGES = (Stage.DISBURSED, Stage.REPAYING, Stage.CLOSED)


class ChannelCodeNotFound(AppError):
    code = "channel_code_not_found"
    status = 404
    message = "渠道活码不存在或已删除"


class ChannelStateTaken(AppError):
    code = "channel_state_taken"
    status = 409
    message = "该渠道标识（state）已被其他渠道码使用"


@dataclass
class ChannelInput:
    name: str = ""
    channel: str = ""
    staff_ids: list[int] = field(default_factory=list)
    state: str | None = None  # generated when empty
    campaign: str | None = None
    backup_staff_ids: list[int] = field(default_factory=list)
    referrer_ref: str | None = None
    welcome_text: str | None = None
    tag_ids: list[int] = field(default_factory=list)
    daily_cap: int | None = None
    skip_verify: bool = True


@dataclass
class CodeStats:
    adds: int = 0
    adds_today: int = 0
    deleted_by_customer: int = 0
    deleted_by_staff: int = 0
    customers: int = 0
    applied: int = 0
    disbursed: int = 0


def ensure_manager(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in MANAGERS:
        raise PermissionDenied("只有系统管理员或经理可以管理渠道活码")


def _text(value: str | None, what: str, max_len: int, *, required: bool = False) -> str | None:
    value = re.sub(r"\s+", " ", (value or "").strip())
    if not value:
        if required:
            raise ValidationFailed(f"请填写{what}", field=what)
        return None
    if len(value) > max_len:
        raise ValidationFailed(f"{what}不能超过 {max_len} 个字", field=what)
    if re.search(r"[\x00-\x1f\x7f<>]", value):
        raise ValidationFailed(f"{what}含有不允许的字符", field=what)
    return value


def _staff(session: Session, ids: Sequence[int], what: str) -> list[Staff]:
    ids = list(dict.fromkeys(int(i) for i in ids))
    if len(ids) > MAX_STAFF:
        raise ValidationFailed(f"{what}最多 {MAX_STAFF} 人")
    found = {s.id: s for s in session.scalars(select(Staff).where(Staff.id.in_(ids)))} if ids else {}
    out = []
    for sid in ids:
        staff = found.get(sid)
        if staff is None or staff.status != StaffStatus.ACTIVE:
            raise ValidationFailed(f"{what}中有员工不存在或已离职（#{sid}）", field="staff_ids")
        if not staff.wecom_userid:
            raise ValidationFailed(f"{staff.display_name} 没有绑定企业微信账号，不能接待渠道码客户", field="staff_ids")
        out.append(staff)
    return out


@dataclass
class _Checked:
    name: str
    channel: str
    state: str
    campaign: str | None
    staff: list[Staff]
    backups: list[Staff]
    referrer_ref: str | None
    welcome_text: str | None
    tag_ids: list[int]
    daily_cap: int | None
    skip_verify: bool


def _check(session: Session, data: ChannelInput, *, code_id: int | None = None) -> _Checked:
    name = _text(data.name, "渠道码名称", 60, required=True)
    channel = _text(data.channel, "渠道名称", 40, required=True)
    state = (data.state or "").strip() or "ch" + secrets.token_hex(6)
    if not STATE_RE.match(state):
        raise ValidationFailed("渠道标识（state）只能包含字母、数字、下划线和短横线，最多 30 个字符", field="state")
    taken = session.scalar(select(ChannelCode.id).where(ChannelCode.state == state, ChannelCode.id != (code_id or 0)))
    if taken:
        raise ChannelStateTaken()
    staff = _staff(session, data.staff_ids, "接待员工")
    if not staff:
        raise ValidationFailed("请至少选择一位接待员工", field="staff_ids")
    backups = [s for s in _staff(session, data.backup_staff_ids, "备用员工") if s.id not in {p.id for p in staff}]
    tag_ids = list(dict.fromkeys(int(t) for t in data.tag_ids))
    live = {t.id for t in crm_tags.live_tags(session, tag_ids)} if tag_ids else set()
    if set(tag_ids) - live:
        raise ValidationFailed("自动标签中有标签不存在或已删除", field="tag_ids")
    if data.daily_cap is not None and not 1 <= int(data.daily_cap) <= 10_000:
        raise ValidationFailed("每日添加上限须在 1–10000 之间（留空表示不限）", field="daily_cap")
    welcome = (data.welcome_text or "").strip() or None
    if welcome and len(welcome) > 4000:
        raise ValidationFailed("欢迎语不能超过 4000 个字", field="welcome_text")
    return _Checked(name, channel, state, _text(data.campaign, "活动名称", 60), staff, backups,
                    _text(data.referrer_ref, "推荐人", 64), welcome, tag_ids,
                    int(data.daily_cap) if data.daily_cap is not None else None, bool(data.skip_verify))


def _snapshot(code: ChannelCode) -> dict[str, object]:
    return {k: getattr(code, k) for k in ("name", "state", "channel", "campaign", "staff_ids", "backup_staff_ids",
                                          "referrer_ref", "tag_ids", "daily_cap", "skip_verify")}


def create_code(session: Session, viewer: Viewer | None, data: ChannelInput, *,
                gateway: Gateway | None = None) -> ChannelCode:
    """Create the code in WeCom, then store it with its config_id (deleted again in WeCom if storing fails)."""
    ensure_manager(viewer)
    c = _check(session, data)
    gw = gateway or get_gateway()
    userids = [s.wecom_userid or "" for s in c.staff]
    # A single-staff code stays type 1 even with backups: a swap replaces its one user.
    code_type = 1 if len(userids) == 1 else 2
    answer = gw.add_contact_way(type=code_type, scene=2, users=userids, state=c.state, skip_verify=c.skip_verify,
                                remark=c.name[:30])
    config_id = str(answer.get("config_id") or "")
    if not config_id:
        raise WecomUnavailable("企业微信没有返回渠道码的 config_id")
    now = clock.now()
    code = ChannelCode(name=c.name, state=c.state, channel=c.channel, campaign=c.campaign, code_type=code_type,
                       staff_ids=[s.id for s in c.staff], backup_staff_ids=[s.id for s in c.backups],
                       active_userids=userids, referrer_ref=c.referrer_ref, welcome_text=c.welcome_text,
                       tag_ids=c.tag_ids, daily_cap=c.daily_cap, skip_verify=c.skip_verify, config_id=config_id,
                       qr_code=answer.get("qr_code"), active=True, created_by=viewer.staff_id if viewer else None,
                       created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(code)
            session.flush()
    except IntegrityError as exc:
        _forget_in_wecom(gw, config_id)
        raise ChannelStateTaken() from exc
    audit.record(session, "channel_code.create", entity_type="channel_code", entity_id=code.id,
                 after={**_snapshot(code), "config_id": config_id})
    return code


def _forget_in_wecom(gw: Gateway, config_id: str) -> None:
    try:
        gw.del_contact_way(config_id)
    except (WecomApiError, WecomUnavailable):
        log.exception("channel code %s created in WeCom but not stored, and could not be deleted", config_id)


def get_code(session: Session, code_id: int, *, for_update: bool = False) -> ChannelCode:
    stmt = select(ChannelCode).where(ChannelCode.id == code_id, ChannelCode.deleted_at.is_(None))
    if for_update:
        stmt = stmt.with_for_update()
    code = session.scalar(stmt)
    if code is None:
        raise ChannelCodeNotFound()
    return code


def code_for_state(session: Session, state: str | None) -> ChannelCode | None:
    if not state:
        return None
    return session.scalar(select(ChannelCode).where(ChannelCode.state == state[:30]))


def list_codes(session: Session) -> list[ChannelCode]:
    return list(session.scalars(select(ChannelCode).where(ChannelCode.deleted_at.is_(None))
                                .order_by(ChannelCode.id.desc())))


def update_code(session: Session, viewer: Viewer | None, code_id: int, data: ChannelInput, *,
                gateway: Gateway | None = None) -> ChannelCode:
    ensure_manager(viewer)
    code = get_code(session, code_id, for_update=True)
    c = _check(session, data, code_id=code.id)
    before = _snapshot(code)
    gw = gateway or get_gateway()
    userids = [s.wecom_userid or "" for s in c.staff]
    if len(userids) > 1 and code.code_type == 1:
        raise ValidationFailed("单人渠道码不能改为多人，请新建一个多人渠道码", field="staff_ids")
    gw.update_contact_way(code.config_id, users=userids, state=c.state, skip_verify=c.skip_verify,
                          remark=c.name[:30])
    code.name, code.channel, code.state, code.campaign = c.name, c.channel, c.state, c.campaign
    code.staff_ids, code.backup_staff_ids = [s.id for s in c.staff], [s.id for s in c.backups]
    code.active_userids, code.swapped_on = userids, None
    code.referrer_ref, code.welcome_text, code.tag_ids = c.referrer_ref, c.welcome_text, c.tag_ids
    code.daily_cap, code.skip_verify, code.updated_at = c.daily_cap, c.skip_verify, clock.now()
    session.flush()
    audit.record(session, "channel_code.update", entity_type="channel_code", entity_id=code.id, before=before,
                 after=_snapshot(code))
    enforce_cap(session, code, gateway=gw)  # today's adds still count against the new cap
    return code


def delete_code(session: Session, viewer: Viewer | None, code_id: int, *, gateway: Gateway | None = None) -> None:
    ensure_manager(viewer)
    code = get_code(session, code_id, for_update=True)
    (gateway or get_gateway()).del_contact_way(code.config_id)
    code.active, code.deleted_at = False, clock.now()
    session.flush()
    audit.record(session, "channel_code.delete", entity_type="channel_code", entity_id=code.id,
                 before=_snapshot(code) | {"config_id": code.config_id})


# --- adds, caps, attribution ----------------------------------------------------------------------

def record_add(session: Session, code: ChannelCode, *, staff_userid: str, staff_id: int | None,
               external_userid: str, customer_id: int | None) -> bool:
    """Count one add through the code (False when this person already added this staff member today)."""
    now = clock.now()
    return insert_ignore(session, ChannelAdd, {
        "channel_code_id": code.id, "staff_userid": staff_userid, "staff_id": staff_id,
        "external_userid": external_userid, "customer_id": customer_id, "add_date": clock.business_date(now),
        "at": now}, ["channel_code_id", "staff_userid", "external_userid", "add_date"]) is not None


def attribute(session: Session, code: ChannelCode, customer_id: int, *, staff_id: int | None,
              new_customer: bool) -> bool:
    """First touch: the customer's first code keeps them (False when already attributed)."""
    return insert_ignore(session, ChannelAttribution, {
        "customer_id": customer_id, "channel_code_id": code.id, "staff_id": staff_id,
        "referrer_ref": code.referrer_ref, "new_customer": new_customer, "at": clock.now()},
        ["customer_id"]) is not None


def mark_deleted(session: Session, external_userid: str, staff_userid: str, by: str) -> int:
    """The latest add of this relation was undone (by ``customer`` or ``staff``)."""
    latest = session.scalar(select(ChannelAdd).where(
        ChannelAdd.external_userid == external_userid, ChannelAdd.staff_userid == staff_userid,
        ChannelAdd.deleted_at.is_(None)).order_by(ChannelAdd.id.desc()).limit(1))
    if latest is None:
        return 0
    latest.deleted_by, latest.deleted_at = by, clock.now()
    session.flush()
    return 1


def adds_on(session: Session, code_id: int, day: date) -> dict[str, int]:
    return dict(session.execute(select(ChannelAdd.staff_userid, func.count()).where(
        ChannelAdd.channel_code_id == code_id, ChannelAdd.add_date == day)
        .group_by(ChannelAdd.staff_userid)).all())


def desired_userids(session: Session, code: ChannelCode, day: date) -> list[str]:
    """Who the code should route to on ``day``: uncapped primaries, one uncapped backup per capped one."""
    ids = list(code.staff_ids) + list(code.backup_staff_ids)
    by_id = {s.id: s for s in session.scalars(select(Staff).where(Staff.id.in_(ids)))} if ids else {}

    def usable(sid: int) -> str | None:
        s = by_id.get(sid)
        return s.wecom_userid if s is not None and s.status == StaffStatus.ACTIVE and s.wecom_userid else None

    primaries = [u for u in map(usable, code.staff_ids) if u]
    backups = [u for u in map(usable, code.backup_staff_ids) if u and u not in primaries]
    if code.daily_cap is None:
        return primaries
    counts = adds_on(session, code.id, day)
    capped = {u for u, n in counts.items() if n >= code.daily_cap}
    open_primaries = [u for u in primaries if u not in capped]
    open_backups = [u for u in backups if u not in capped]
    if code.code_type == 1:
        return (open_primaries + open_backups)[:1]
    return open_primaries + open_backups[:len(primaries) - len(open_primaries)]


def enforce_cap(session: Session, code: ChannelCode, *, gateway: Gateway | None = None) -> bool:
    """Route the code to whom it should serve today; returns True when WeCom was updated."""
    if code.deleted_at is not None:
        return False
    session.refresh(code, with_for_update=True)
    today = clock.today()
    desired = desired_userids(session, code, today)
    if not desired:
        log.warning("channel code %s: every staff member and backup reached the daily cap", code.id)
        return False
    if desired == list(code.active_userids):
        return False
    (gateway or get_gateway()).update_contact_way(code.config_id, users=desired)
    before = list(code.active_userids)
    primaries = desired_userids_without_cap(session, code)
    code.active_userids = desired
    code.swapped_on = None if desired == primaries else today
    code.updated_at = clock.now()
    session.flush()
    audit.record(session, "channel_code.route", entity_type="channel_code", entity_id=code.id,
                 before={"users": before}, after={"users": desired, "day": today.isoformat()},
                 detail="daily cap" if code.swapped_on else "restore")
    return True


def desired_userids_without_cap(session: Session, code: ChannelCode) -> list[str]:
    rows = dict(session.execute(select(Staff.id, Staff.wecom_userid).where(
        Staff.id.in_(code.staff_ids or [0]), Staff.status == StaffStatus.ACTIVE)).all())
    return [rows[i] for i in code.staff_ids if rows.get(i)]


def restore_swapped(session: Session, *, gateway: Gateway | None = None) -> int:
    """A new Shanghai day: codes swapped to backups on an earlier day route to their primaries again."""
    ids = list(session.scalars(select(ChannelCode.id).where(ChannelCode.deleted_at.is_(None),
                                                            ChannelCode.swapped_on.is_not(None),
                                                            ChannelCode.swapped_on < clock.today())))
    done = 0
    for code_id in ids:
        code = session.get(ChannelCode, code_id)
        if code is not None and enforce_cap(session, code, gateway=gateway):
            done += 1
    return done


# --- statistics ------------------------------------------------------------------------------------

def stats(session: Session, code_ids: Sequence[int]) -> dict[int, CodeStats]:
    out = {cid: CodeStats() for cid in code_ids}
    if not out:
        return out
    today = clock.today()
    for cid, adds, today_n, by_customer, by_staff in session.execute(
            select(ChannelAdd.channel_code_id, func.count(),
                   func.sum(case((ChannelAdd.add_date == today, 1), else_=0)),
                   func.sum(case((ChannelAdd.deleted_by == "customer", 1), else_=0)),
                   func.sum(case((ChannelAdd.deleted_by == "staff", 1), else_=0)))
            .where(ChannelAdd.channel_code_id.in_(list(out))).group_by(ChannelAdd.channel_code_id)):
        s = out[cid]
        s.adds, s.adds_today, s.deleted_by_customer, s.deleted_by_staff = (
            adds, int(today_n or 0), int(by_customer or 0), int(by_staff or 0))
    # A customer counts once an application or a loan exists, whatever became of it later (rejected
    # → stage "lost"), or when the stage says so (a loan a partner lender made outside our workflow).
    applied_case = or_(Customer.stage.in_([s.value for s in APPLIED_STAGES]),
                       exists().where(Application.customer_id == Customer.id))
    disbursed_case = or_(Customer.stage.in_([s.value for s in DISBURSED_STAGES]),
                         exists().where(Loan.customer_id == Customer.id))
    for cid, n, applied, disbursed in session.execute(
            select(ChannelAttribution.channel_code_id, func.count(),
                   func.sum(case((applied_case, 1), else_=0)),
                   func.sum(case((disbursed_case, 1), else_=0)))
            .join(Customer, Customer.id == ChannelAttribution.customer_id)
            .where(ChannelAttribution.channel_code_id.in_(list(out))).group_by(ChannelAttribution.channel_code_id)):
        s = out[cid]
        s.customers, s.applied, s.disbursed = n, int(applied or 0), int(disbursed or 0)
    return out
