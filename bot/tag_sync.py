"""Corp tags both ways (企微标签同步).

Pull: :func:`pull` reconciles our tag library with ``get_corp_tag_list`` — the reconciliation the
``change_external_tag`` handler runs (:func:`bot.handlers.tags.sync_corp_tags`: new groups and tags
created through :mod:`crm.tags`, renames applied, tags WeCom no longer has retired) — and records
what it did in the audit log (the console shows the last runs).

Push: :func:`push_tags` creates local tags in WeCom (``add_corp_tag``) and stores the WeCom ids
WeCom answers. WeCom allows at most 3,000 corp tags: the live count is read first and a push that
would pass the cap is refused before anything is created. An app may edit or delete only the tags
it created, so every tag or group we create is remembered (:class:`WecomTagOrigin`) and
:func:`delete_in_wecom` refuses the others locally instead of collecting errcode 60011.

Customers: :func:`mark_tags` is the body of ``bot.mark_tags`` (enqueued by :mod:`crm.tags` with the
customer id and the added and removed crm tag ids): one ``mark_tag`` with the customer's follow user
(the owner's WeCom userid, else a staff member the customer is still a contact of) and only the tags
that carry WeCom ids. WeCom sends no callback for our own ``mark_tag`` — the local tags are already
right — so the outcome is recorded on the customer's timeline and in the audit log.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.gateway import get_gateway
from bot.handlers.tags import TagSync, sync_corp_tags
from bot.models_channel import WecomRelation
from bot.models_mass import WecomTagOrigin
from bot.wecom_errors import WecomApiError
from core import audit, clock
from core.audit import AuditLog
from core.errors import AppError, PermissionDenied, ValidationFailed
from crm import customers
from crm import tags as crm_tags
from crm.models import Customer, Staff, Tag, TagGroup
from crm.permissions import WECOM_OPS
from crm.scope import Viewer

log = logging.getLogger(__name__)

MAX_CORP_TAGS = 3000
MANAGERS = WECOM_OPS
SYNC_ACTION = "wecom.tag_sync"
# WeCom answers that will not change on a retry: the relation is gone, a tag id is unknown.
PERMANENT_ERRCODES = frozenset({84061, 40068, 40096, 60011, 40058})


class TagCapReached(AppError):
    code = "wecom_tag_cap_reached"
    status = 409
    message = f"企业微信企业标签最多 {MAX_CORP_TAGS} 个"


class TagNotOurs(AppError):
    code = "wecom_tag_not_ours"
    status = 409
    message = "该标签不是本应用创建的，企业微信只允许应用修改或删除自己创建的标签，请在企业微信管理后台操作"


def _ensure_manager(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in MANAGERS:
        raise PermissionDenied("只有管理员和经理可以同步企业微信标签")


# --- pull ----------------------------------------------------------------------------------------

def pull(session: Session, viewer: Viewer | None = None) -> TagSync:
    """Full reconciliation with ``get_corp_tag_list``; the result goes to the audit log."""
    _ensure_manager(viewer)
    result = sync_corp_tags(session)
    audit.record(session, SYNC_ACTION, entity_type="wecom_tags", entity_id="corp", after=asdict(result))
    return result


def recent_syncs(session: Session, limit: int = 5) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.action == SYNC_ACTION)
                                .order_by(AuditLog.id.desc()).limit(limit)))


# --- push ----------------------------------------------------------------------------------------

@dataclass
class PushResult:
    pushed: list[int] = field(default_factory=list)  # local tag ids now carrying a WeCom id
    already: int = 0  # asked for, but already in WeCom


def corp_tag_count() -> int:
    groups = get_gateway().get_corp_tag_list().get("tag_group") or []
    return sum(len(g.get("tag") or []) for g in groups)


def push_tags(session: Session, viewer: Viewer | None, tag_ids: list[int]) -> PushResult:
    """Create the local tags of ``tag_ids`` that have no WeCom id yet in WeCom (``add_corp_tag``)."""
    _ensure_manager(viewer)
    result = PushResult()
    tags = crm_tags.live_tags(session, sorted({int(t) for t in tag_ids}))
    if len(tags) != len(set(tag_ids)):
        raise crm_tags.TagNotFound()
    todo = [t for t in tags if not t.wecom_tag_id]
    result.already = len(tags) - len(todo)
    if not todo:
        return result
    existing = corp_tag_count()
    if existing + len(todo) > MAX_CORP_TAGS:
        raise TagCapReached(f"企业微信企业标签最多 {MAX_CORP_TAGS} 个：当前已有 {existing} 个，"
                            f"再创建 {len(todo)} 个将超出上限，请先在企业微信中清理不用的标签")
    by_group: dict[int, list[Tag]] = defaultdict(list)
    for tag in todo:
        by_group[tag.group_id].append(tag)
    gateway = get_gateway()
    now = clock.now()
    for group_id, group_tags in sorted(by_group.items()):
        group = session.get(TagGroup, group_id)
        assert group is not None
        new_group = group.wecom_group_id is None
        try:
            answer = gateway.add_corp_tag([{"name": t.name, "order": t.sort} for t in group_tags],
                                          group_id=group.wecom_group_id,
                                          group_name=None if group.wecom_group_id else group.name,
                                          order=group.sort if new_group else None)
        except WecomApiError as exc:
            if exc.errcode == 40071:
                raise ValidationFailed(f"企业微信中标签组「{group.name}」里已有同名标签，请先执行“从企业微信拉取”") from exc
            raise
        wecom_group = answer.get("tag_group") or {}
        gid = str(wecom_group.get("group_id") or "")
        if new_group and gid:
            owner = session.scalar(select(TagGroup).where(TagGroup.wecom_group_id == gid))
            if owner is None:
                group.wecom_group_id = gid
                if not session.get(WecomTagOrigin, gid):
                    session.add(WecomTagOrigin(wecom_id=gid, kind="group", created_at=now))
        ids_by_name = {str(t.get("name")): str(t.get("id")) for t in wecom_group.get("tag") or []}
        for tag in group_tags:
            wecom_id = ids_by_name.get(tag.name)
            if not wecom_id:
                continue
            tag.wecom_tag_id = wecom_id
            session.add(WecomTagOrigin(wecom_id=wecom_id, kind="tag", created_at=now))
            result.pushed.append(tag.id)
        session.flush()
        audit.record(session, "wecom.tag_push", entity_type="tag_group", entity_id=group.id,
                     after={"group": group.name, "wecom_group_id": group.wecom_group_id,
                            "tags": [t.name for t in group_tags]})
    return result


def create_wecom_tag(session: Session, viewer: Viewer | None, name: str, *, group_id: int | None = None,
                     group_name: str | None = None) -> Tag:
    """A new tag that lives in WeCom: created in our library (crm.tags), then pushed."""
    _ensure_manager(viewer)
    if group_id:
        group = crm_tags.get_group(session, group_id)
    else:
        clean = crm_tags.clean_name(group_name, "标签组")
        group = session.scalar(select(TagGroup).where(TagGroup.name == clean, TagGroup.deleted_at.is_(None)))
        if group is None:
            group = crm_tags.create_group(session, viewer, clean)
    tag = crm_tags.create_tag(session, viewer, group.id, name)
    push_tags(session, viewer, [tag.id])
    return tag


def created_by_us(session: Session, wecom_ids: list[str]) -> set[str]:
    if not wecom_ids:
        return set()
    return set(session.scalars(select(WecomTagOrigin.wecom_id).where(WecomTagOrigin.wecom_id.in_(wecom_ids))))


def delete_in_wecom(session: Session, viewer: Viewer | None, tag_id: int) -> None:
    """Delete a corp tag our app created, in WeCom and here (retired: taken off every customer)."""
    _ensure_manager(viewer)
    tag = crm_tags.get_tag(session, tag_id)
    if not tag.wecom_tag_id:
        raise ValidationFailed("该标签没有同步到企业微信")
    if not created_by_us(session, [tag.wecom_tag_id]):
        raise TagNotOurs()
    try:
        get_gateway().del_corp_tag(tag_ids=[tag.wecom_tag_id])
    except WecomApiError as exc:
        if exc.errcode == 60011:
            raise TagNotOurs() from exc
        if exc.errcode != 40068:  # already gone in WeCom: retire it here all the same
            raise
    crm_tags.delete_tag(session, viewer, tag.id)


# --- customers' tags in WeCom (bot.mark_tags) --------------------------------------------------

def follow_userid(session: Session, customer: Customer) -> str | None:
    """The WeCom userid to mark the customer's tags with: the owner's if the owner has one and is still
    a contact of the customer (as far as we know), else any staff member still in contact."""
    if not customer.wecom_external_userid:
        return None
    relations = dict(session.execute(select(WecomRelation.staff_userid, WecomRelation.status).where(
        WecomRelation.external_userid == customer.wecom_external_userid)).all())
    owner_userid = session.scalar(select(Staff.wecom_userid).where(Staff.id == customer.owner_id)) \
        if customer.owner_id else None
    if owner_userid and relations.get(owner_userid, "active") == "active":
        return owner_userid
    return next((u for u, status in sorted(relations.items()) if status == "active"), None)


@dataclass
class MarkResult:
    status: str  # sent | skipped | failed
    userid: str | None = None
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    error: str | None = None


def _wecom_ids(session: Session, tag_ids: list[int]) -> dict[str, str]:
    if not tag_ids:
        return {}
    rows = session.execute(select(Tag.wecom_tag_id, Tag.name).where(Tag.id.in_([int(t) for t in tag_ids]),
                                                                    Tag.wecom_tag_id.is_not(None)))
    return dict(rows.all())


def mark_tags(session: Session, customer_id: int, add_tag_ids: list[int], remove_tag_ids: list[int]) -> MarkResult:
    customer = session.get(Customer, customer_id)
    add = _wecom_ids(session, add_tag_ids)
    remove = _wecom_ids(session, remove_tag_ids)
    for wecom_id in set(add) & set(remove):  # both in one call: WeCom would add then remove; keep neither
        add.pop(wecom_id)
        remove.pop(wecom_id)
    if customer is None or not customer.wecom_external_userid or (not add and not remove):
        return MarkResult("skipped")
    userid = follow_userid(session, customer)
    names = "、".join([f"+{n}" for n in add.values()] + [f"-{n}" for n in remove.values()])
    if userid is None:
        return _failed(session, customer, None, add, remove, names, "客户已不是任何员工的企业微信联系人")
    try:
        get_gateway().mark_tag(userid, customer.wecom_external_userid, add_tag=sorted(add), remove_tag=sorted(remove))
    except WecomApiError as exc:
        if exc.errcode not in PERMANENT_ERRCODES:
            raise  # busy, rate limited: the task retries
        return _failed(session, customer, userid, add, remove, names, exc.message)
    customers.record_event(session, customer.id, "wecom.mark_tag", f"企业微信标签已同步：{names}",
                           ref_type="wecom_tag", data={"userid": userid, "add": sorted(add), "remove": sorted(remove)})
    audit.record(session, "wecom.mark_tag", entity_type="customer", entity_id=customer.id,
                 after={"userid": userid, "add": sorted(add), "remove": sorted(remove)})
    return MarkResult("sent", userid, sorted(add), sorted(remove))


def _failed(session: Session, customer: Customer, userid: str | None, add: dict[str, str], remove: dict[str, str],
            names: str, reason: str) -> MarkResult:
    log.warning("mark_tag for customer %s not applied in WeCom: %s", customer.id, reason)
    customers.record_event(session, customer.id, "wecom.mark_tag_failed",
                           f"企业微信标签同步失败（{names}）：{reason}", ref_type="wecom_tag",
                           data={"userid": userid, "add": sorted(add), "remove": sorted(remove)})
    audit.record(session, "wecom.mark_tag_failed", entity_type="customer", entity_id=customer.id,
                 after={"userid": userid, "add": sorted(add), "remove": sorted(remove)}, detail=reason)
    return MarkResult("failed", userid, sorted(add), sorted(remove), reason)


def summary(result: TagSync | PushResult | Any) -> str:
    if isinstance(result, TagSync):
        return (f"已从企业微信拉取：新建 {result.created} 个，改名 {result.renamed} 个，"
                f"标记删除 {result.retired} 个，未能同步 {result.refused} 个")
    if isinstance(result, PushResult):
        return f"已推送到企业微信 {len(result.pushed)} 个标签（{result.already} 个原本已在企业微信）"
    return str(result)
