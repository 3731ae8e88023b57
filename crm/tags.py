"""Tags (标签): the tag library (groups and tags) and tagging customers in bulk.

Tagging is set-based: one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite
alike, through the dialect's insert) adds every (customer, tag) pair the viewer may reach, and one
``DELETE … RETURNING`` removes them; the primary key (customer_id, tag_id) makes both idempotent.
Every customer whose tags changed gets one timeline event.

WeCom: when a tag mirrors a WeCom corp tag and the customer is a WeCom external contact, the
intent is handed to the bot by name (``bot.mark_tags`` with customer id, added and removed tag
ids), only when that task is registered; the bot reports back by calling this module.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock, outbox, pii, tasks
from core.db import BigInt, UTCDateTime, is_postgres
from core.errors import PermissionDenied, ValidationFailed
from crm import customers
from crm.models import Customer, CustomerEvent, CustomerStatus, CustomerTag, Pool, Role, Tag, TagGroup
from crm.permissions import permission
from crm.scope import Viewer
from crm.tag_exceptions import TagGroupNotEmpty, TagGroupNotFound, TagNameTaken, TagNotFound

log = logging.getLogger(__name__)

MARK_TAGS_TASK = "bot.mark_tags"
MAX_BULK = 10_000  # customers per call
MAX_TAGS_PER_CALL = 50
TAG_MANAGERS = permission("tags.manage", "标签管理", "新建、编辑、合并标签组和标签", {Role.ADMIN, Role.MANAGER, Role.SUPERVISOR},
                          group="客户")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f<>]")


def _ensure_manager(viewer: Viewer | None) -> None:
    if viewer is not None and viewer.role not in TAG_MANAGERS:
        raise PermissionDenied("只有系统管理员、经理或主管可以维护标签库")


def clean_name(name: str | None, what: str, *, max_len: int = 30) -> str:
    """A tag or group name: trimmed, non-empty, short, no control characters or angle brackets."""
    value = re.sub(r"\s+", " ", (name or "").strip())
    if not value:
        raise ValidationFailed(f"请填写{what}名称", field="name")
    if len(value) > max_len:
        raise ValidationFailed(f"{what}名称不能超过 {max_len} 个字", field="name")
    if _BAD_CHARS.search(value):
        raise ValidationFailed(f"{what}名称含有不允许的字符", field="name")
    return value


# --- the library ---------------------------------------------------------------------------------

@dataclass
class GroupView:
    group: TagGroup
    tags: list[Tag]
    usage: dict[int, int] = field(default_factory=dict)  # tag id -> customers carrying it


def list_groups(session: Session, *, with_usage: bool = False) -> list[GroupView]:
    groups = list(session.scalars(select(TagGroup).where(TagGroup.deleted_at.is_(None))
                                  .order_by(TagGroup.sort, TagGroup.id)))
    tags = list(session.scalars(select(Tag).where(Tag.deleted_at.is_(None)).order_by(Tag.sort, Tag.id)))
    usage: dict[int, int] = {}
    if with_usage and tags:
        usage = dict(session.execute(
            select(CustomerTag.tag_id, func.count()).join(Tag, Tag.id == CustomerTag.tag_id)
            .where(Tag.deleted_at.is_(None)).group_by(CustomerTag.tag_id)).all())
    by_group: dict[int, list[Tag]] = defaultdict(list)
    for tag in tags:
        by_group[tag.group_id].append(tag)
    return [GroupView(g, by_group.get(g.id, []), usage) for g in groups]


def live_tags(session: Session, tag_ids: list[int] | None = None) -> list[Tag]:
    stmt = select(Tag).where(Tag.deleted_at.is_(None))
    if tag_ids is not None:
        stmt = stmt.where(Tag.id.in_(tag_ids))
    return list(session.scalars(stmt.order_by(Tag.sort, Tag.id)))


def get_group(session: Session, group_id: int) -> TagGroup:
    group = session.get(TagGroup, group_id)
    if group is None or group.deleted_at is not None:
        raise TagGroupNotFound()
    return group


def get_tag(session: Session, tag_id: int) -> Tag:
    tag = session.get(Tag, tag_id)
    if tag is None or tag.deleted_at is not None:
        raise TagNotFound()
    return tag


def _flush_unique(session: Session, message: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise TagNameTaken(message) from exc


def create_group(session: Session, viewer: Viewer | None, name: str, *, sort: int = 0,
                 wecom_group_id: str | None = None) -> TagGroup:
    _ensure_manager(viewer)
    name = clean_name(name, "标签组")
    if session.scalar(select(TagGroup.id).where(TagGroup.name == name, TagGroup.deleted_at.is_(None))):
        raise TagNameTaken(f"标签组「{name}」已存在")
    group = TagGroup(name=name, sort=sort, wecom_group_id=wecom_group_id or None, created_at=clock.now())
    session.add(group)
    _flush_unique(session, f"标签组「{name}」已存在")
    audit.record(session, "tag_group.create", entity_type="tag_group", entity_id=group.id, after={"name": name})
    return group


def rename_group(session: Session, viewer: Viewer | None, group_id: int, name: str) -> TagGroup:
    _ensure_manager(viewer)
    group = get_group(session, group_id)
    name = clean_name(name, "标签组")
    if name == group.name:
        return group
    if session.scalar(select(TagGroup.id).where(TagGroup.name == name, TagGroup.deleted_at.is_(None),
                                                TagGroup.id != group.id)):
        raise TagNameTaken(f"标签组「{name}」已存在")
    old, group.name = group.name, name
    _flush_unique(session, f"标签组「{name}」已存在")
    audit.record(session, "tag_group.rename", entity_type="tag_group", entity_id=group.id,
                 before={"name": old}, after={"name": name})
    return group


def delete_group(session: Session, viewer: Viewer | None, group_id: int) -> None:
    _ensure_manager(viewer)
    group = get_group(session, group_id)
    if session.scalar(select(Tag.id).where(Tag.group_id == group.id, Tag.deleted_at.is_(None)).limit(1)):
        raise TagGroupNotEmpty()
    group.deleted_at = clock.now()
    session.flush()
    audit.record(session, "tag_group.delete", entity_type="tag_group", entity_id=group.id,
                 before={"name": group.name})


def create_tag(session: Session, viewer: Viewer | None, group_id: int, name: str, *, sort: int = 0,
               wecom_tag_id: str | None = None) -> Tag:
    _ensure_manager(viewer)
    group = get_group(session, group_id)
    name = clean_name(name, "标签")
    if session.scalar(select(Tag.id).where(Tag.group_id == group.id, Tag.name == name, Tag.deleted_at.is_(None))):
        raise TagNameTaken(f"标签组「{group.name}」中已有标签「{name}」")
    tag = Tag(group_id=group.id, name=name, sort=sort, wecom_tag_id=wecom_tag_id or None, created_at=clock.now())
    session.add(tag)
    _flush_unique(session, f"标签组「{group.name}」中已有标签「{name}」")
    audit.record(session, "tag.create", entity_type="tag", entity_id=tag.id,
                 after={"name": name, "group": group.name})
    return tag


def rename_tag(session: Session, viewer: Viewer | None, tag_id: int, name: str) -> Tag:
    _ensure_manager(viewer)
    tag = get_tag(session, tag_id)
    name = clean_name(name, "标签")
    if name == tag.name:
        return tag
    if session.scalar(select(Tag.id).where(Tag.group_id == tag.group_id, Tag.name == name,
                                           Tag.deleted_at.is_(None), Tag.id != tag.id)):
        raise TagNameTaken(f"该标签组中已有标签「{name}」")
    old, tag.name = tag.name, name
    _flush_unique(session, f"该标签组中已有标签「{name}」")
    audit.record(session, "tag.rename", entity_type="tag", entity_id=tag.id, before={"name": old},
                 after={"name": name})
    return tag


def delete_tag(session: Session, viewer: Viewer | None, tag_id: int) -> int:
    """Retire a tag: kept with ``deleted_at`` (history stays readable), taken off every customer in one
    statement. Returns how many customers carried it."""
    _ensure_manager(viewer)
    tag = get_tag(session, tag_id)
    return _retire(session, tag, "tag.delete")


def mark_deleted_by_wecom(session: Session, wecom_tag_id: str) -> bool:
    """The WeCom side deleted a corp tag: retire our mirror (for the bot's callback handler)."""
    tag = session.scalar(select(Tag).where(Tag.wecom_tag_id == wecom_tag_id, Tag.deleted_at.is_(None)))
    if tag is None:
        return False
    _retire(session, tag, "tag.wecom_delete")
    return True


def _retire(session: Session, tag: Tag, action: str) -> int:
    tag.deleted_at = clock.now()
    session.flush()
    removed = session.execute(delete(CustomerTag).where(CustomerTag.tag_id == tag.id)).rowcount or 0
    audit.record(session, action, entity_type="tag", entity_id=tag.id, before={"name": tag.name},
                 after={"customers_untagged": removed})
    return removed


def tags_of(session: Session, customer_id: int) -> list[Tag]:
    return list(session.scalars(select(Tag).join(CustomerTag, CustomerTag.tag_id == Tag.id)
                                .where(CustomerTag.customer_id == customer_id, Tag.deleted_at.is_(None))
                                .order_by(Tag.sort, Tag.id)))


# --- tagging customers ----------------------------------------------------------------------------

@dataclass
class TagChange:
    """What a bulk tag or untag did."""

    changed: int = 0  # (customer, tag) pairs inserted or deleted
    customers: int = 0  # customers whose tags changed
    unchanged: int = 0  # pairs that were already as asked
    skipped_ids: list[int] = field(default_factory=list)  # not found or outside the viewer's scope
    pairs: list[tuple[int, int]] = field(default_factory=list)


def reachable_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """Customers a viewer may work on: what crm.customers.visible_clause shows them, plus customers
    in the public pools they may see (the same reach as crm.customers.get_customer)."""
    if viewer is None:
        return true()
    visible_pools = select(Pool.id).where(customers.pool_visible_clause(viewer))
    return or_(customers.visible_clause(viewer),
               and_(Customer.status == CustomerStatus.POOL, Customer.pool_id.in_(visible_pools)))


def _ids(values: list[int] | tuple[int, ...] | set[int], what: str, limit: int) -> list[int]:
    try:
        ids = sorted({int(v) for v in values})
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"{what}编号不正确") from exc
    if not ids:
        raise ValidationFailed(f"请选择{what}")
    if len(ids) > limit:
        raise ValidationFailed(f"一次最多处理 {limit} 个{what}")
    return ids


def _checked_tags(session: Session, tag_ids: list[int]) -> dict[int, Tag]:
    tags = {t.id: t for t in live_tags(session, tag_ids)}
    missing = [i for i in tag_ids if i not in tags]
    if missing:
        raise TagNotFound(f"标签不存在或已删除：{'、'.join(map(str, missing))}")
    return tags


def _insert_ignore(session: Session):  # noqa: ANN202 - the dialect's insert construct
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(CustomerTag)


def tag_customers(session: Session, viewer: Viewer | None, customer_ids: list[int], tag_ids: list[int]) -> TagChange:
    """Give every reachable customer of ``customer_ids`` every tag of ``tag_ids`` (idempotent)."""
    customer_ids = _ids(customer_ids, "客户", MAX_BULK)
    tags = _checked_tags(session, _ids(tag_ids, "标签", MAX_TAGS_PER_CALL))
    reachable = _reachable(session, viewer, customer_ids)
    result = TagChange(skipped_ids=[i for i in customer_ids if i not in reachable])
    if not reachable:
        return result
    source = (
        select(Customer.id, Tag.id, bindparam("now", clock.now(), type_=UTCDateTime()),
               bindparam("by", viewer.staff_id if viewer else None, type_=BigInt))
        .select_from(Customer).join(Tag, true())
        .where(Customer.id.in_(sorted(reachable)), Tag.id.in_(list(tags)), Tag.deleted_at.is_(None))
    )
    stmt = (_insert_ignore(session)
            .from_select(["customer_id", "tag_id", "added_at", "added_by_staff_id"], source)
            .on_conflict_do_nothing()
            .returning(CustomerTag.customer_id, CustomerTag.tag_id))
    pairs = [tuple(row) for row in session.execute(stmt)]
    _finish(session, viewer, result, pairs, len(reachable) * len(tags), tags, added=True)
    return result


def untag_customers(session: Session, viewer: Viewer | None, customer_ids: list[int],
                    tag_ids: list[int]) -> TagChange:
    """Take the tags of ``tag_ids`` off every reachable customer of ``customer_ids`` (idempotent)."""
    customer_ids = _ids(customer_ids, "客户", MAX_BULK)
    wanted = _ids(tag_ids, "标签", MAX_TAGS_PER_CALL)
    tags = {t.id: t for t in session.scalars(select(Tag).where(Tag.id.in_(wanted)))}
    if len(tags) != len(wanted):
        raise TagNotFound()
    reachable = _reachable(session, viewer, customer_ids)
    result = TagChange(skipped_ids=[i for i in customer_ids if i not in reachable])
    if not reachable:
        return result
    stmt = (delete(CustomerTag)
            .where(CustomerTag.customer_id.in_(sorted(reachable)), CustomerTag.tag_id.in_(list(tags)))
            .returning(CustomerTag.customer_id, CustomerTag.tag_id))
    pairs = [tuple(row) for row in session.execute(stmt)]
    _finish(session, viewer, result, pairs, len(reachable) * len(tags), tags, added=False)
    return result


def tag_customer(session: Session, viewer: Viewer | None, customer_id: int, tag_ids: list[int]) -> TagChange:
    """One customer (CustomerNotFound when out of the viewer's reach)."""
    customers.get_customer(session, viewer, customer_id)
    return tag_customers(session, viewer, [customer_id], tag_ids)


def untag_customer(session: Session, viewer: Viewer | None, customer_id: int, tag_ids: list[int]) -> TagChange:
    customers.get_customer(session, viewer, customer_id)
    return untag_customers(session, viewer, [customer_id], tag_ids)


def _reachable(session: Session, viewer: Viewer | None, customer_ids: list[int]) -> set[int]:
    return set(session.scalars(select(Customer.id).where(Customer.id.in_(customer_ids), reachable_clause(viewer))))


def _finish(session: Session, viewer: Viewer | None, result: TagChange, pairs: list[tuple[int, int]],
            possible: int, tags: dict[int, Tag], *, added: bool) -> None:
    result.pairs = sorted(pairs)
    result.changed = len(pairs)
    result.unchanged = possible - len(pairs)
    if not pairs:
        return
    by_customer: dict[int, list[int]] = defaultdict(list)
    for customer_id, tag_id in result.pairs:
        by_customer[customer_id].append(tag_id)
    result.customers = len(by_customer)
    now = clock.now()
    verb = "添加标签" if added else "移除标签"
    staff_id = viewer.staff_id if viewer else None
    events = [
        {"customer_id": cid, "at": now, "kind": "tag.add" if added else "tag.remove",
         "summary": pii.mask_text(f"{verb}：{'、'.join(tags[t].name for t in tids)}")[:300],
         "actor_staff_id": staff_id, "ref_type": "tag", "ref_id": None, "data": {"tag_ids": tids}}
        for cid, tids in by_customer.items()
    ]
    session.execute(insert(CustomerEvent), events)
    audit.record(session, "customer.tag" if added else "customer.untag", entity_type="tag",
                 entity_id=",".join(map(str, sorted({t for _, t in pairs})))[:64],
                 after={"customers": result.customers, "pairs": result.changed})
    _wecom_intent(session, by_customer, tags, added=added)


def _wecom_intent(session: Session, by_customer: dict[int, list[int]], tags: dict[int, Tag], *,
                  added: bool) -> None:
    """Hand tag changes that WeCom must mirror to the bot, when there is a bot to hand them to."""
    wecom_tags = {t for t, tag in tags.items() if tag.wecom_tag_id}
    if not wecom_tags:
        return
    contacts = set(session.scalars(select(Customer.id).where(Customer.id.in_(list(by_customer)),
                                                             Customer.wecom_external_userid.is_not(None))))
    intents = {cid: sorted(set(tids) & wecom_tags) for cid, tids in by_customer.items() if cid in contacts}
    intents = {cid: tids for cid, tids in intents.items() if tids}
    if not intents:
        return
    if not tasks.is_registered(MARK_TAGS_TASK):
        log.info("%s not registered: %d WeCom tag changes not sent", MARK_TAGS_TASK, len(intents))
        return
    for cid, tids in sorted(intents.items()):
        outbox.enqueue(session, MARK_TAGS_TASK, cid, tids if added else [], [] if added else tids)

