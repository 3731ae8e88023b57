"""Corp tag changes made in WeCom (``change_external_tag``: create / update / delete / shuffle).

Any of them triggers one reconciliation of our tag library (crm tag groups and tags carrying WeCom
ids) with ``get_corp_tag_list``: new groups and tags are created (or a same-named local one adopted),
renames and moves applied, and mirrored tags WeCom no longer has are retired through
:func:`crm.tags.mark_deleted_by_wecom` (which takes them off customers). A full reconcile costs one
call and is correct whatever order the events arrive in. (Tags our own app changes through the API
produce no callback: the code that calls the API updates the library itself.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.gateway import get_gateway
from bot.inbox import handles
from core import audit, clock
from core.errors import AppError
from crm import tags as crm_tags
from crm.models import Tag, TagGroup

log = logging.getLogger(__name__)

EVENT = "event:change_external_tag:"
MAX_NAME = 30


@dataclass
class TagSync:
    created: int = 0
    renamed: int = 0
    retired: int = 0
    refused: int = 0


def _name(value: Any) -> str:
    return " ".join(str(value or "").split())[:MAX_NAME] or "未命名"


def _group(session: Session, g: dict[str, Any], sync: TagSync) -> TagGroup | None:
    gid, name = str(g.get("group_id") or ""), _name(g.get("group_name"))
    group = session.scalar(select(TagGroup).where(TagGroup.wecom_group_id == gid))
    if group is None:
        group = session.scalar(select(TagGroup).where(TagGroup.name == name, TagGroup.deleted_at.is_(None),
                                                      TagGroup.wecom_group_id.is_(None)))
        if group is not None:
            group.wecom_group_id = gid
            session.flush()
            return group
        try:
            with session.begin_nested():
                group = crm_tags.create_group(session, None, name, sort=int(g.get("order") or 0), wecom_group_id=gid)
            sync.created += 1
        except AppError as exc:
            log.warning("WeCom tag group not mirrored: %s", exc.message)
            sync.refused += 1
            return None
        return group
    group.deleted_at = None
    if group.name != name:
        try:
            with session.begin_nested():
                crm_tags.rename_group(session, None, group.id, name)
            sync.renamed += 1
        except AppError as exc:
            log.warning("WeCom tag group rename not mirrored: %s", exc.message)
            sync.refused += 1
    return group


def _tag(session: Session, group: TagGroup, t: dict[str, Any], sync: TagSync) -> None:
    tid, name = str(t.get("id") or ""), _name(t.get("name"))
    tag = session.scalar(select(Tag).where(Tag.wecom_tag_id == tid))
    if tag is None:
        tag = session.scalar(select(Tag).where(Tag.group_id == group.id, Tag.name == name, Tag.deleted_at.is_(None),
                                               Tag.wecom_tag_id.is_(None)))
        if tag is not None:
            tag.wecom_tag_id = tid
            session.flush()
            return
        try:
            with session.begin_nested():
                crm_tags.create_tag(session, None, group.id, name, sort=int(t.get("order") or 0), wecom_tag_id=tid)
            sync.created += 1
        except AppError as exc:
            log.warning("WeCom tag not mirrored: %s", exc.message)
            sync.refused += 1
        return
    if tag.deleted_at is not None or tag.group_id != group.id:
        tag.deleted_at, tag.group_id = None, group.id
        session.flush()
    if tag.name != name:
        try:
            with session.begin_nested():
                crm_tags.rename_tag(session, None, tag.id, name)
            sync.renamed += 1
        except AppError as exc:
            log.warning("WeCom tag rename not mirrored: %s", exc.message)
            sync.refused += 1


def sync_corp_tags(session: Session) -> TagSync:
    """Reconcile the tag library with WeCom's corp tags."""
    sync = TagSync()
    groups = get_gateway().get_corp_tag_list().get("tag_group") or []
    seen_groups: set[str] = set()
    seen_tags: set[str] = set()
    for g in groups:
        group = _group(session, g, sync)
        seen_groups.add(str(g.get("group_id") or ""))
        for t in g.get("tag") or []:
            seen_tags.add(str(t.get("id") or ""))
            if group is not None:
                _tag(session, group, t, sync)
    gone = session.scalars(select(Tag.wecom_tag_id).where(Tag.wecom_tag_id.is_not(None), Tag.deleted_at.is_(None),
                                                          Tag.wecom_tag_id.not_in(seen_tags or {""}))).all()
    for wecom_tag_id in gone:
        if crm_tags.mark_deleted_by_wecom(session, wecom_tag_id):
            sync.retired += 1
    now = clock.now()
    for group in session.scalars(select(TagGroup).where(TagGroup.wecom_group_id.is_not(None),
                                                        TagGroup.deleted_at.is_(None),
                                                        TagGroup.wecom_group_id.not_in(seen_groups or {""}))).all():
        if session.scalar(select(Tag.id).where(Tag.group_id == group.id, Tag.deleted_at.is_(None)).limit(1)) is None:
            group.deleted_at = now
            audit.record(session, "tag_group.wecom_delete", entity_type="tag_group", entity_id=group.id,
                         before={"name": group.name})
    session.flush()
    return sync


@handles(EVENT + "create", EVENT + "update", EVENT + "delete", EVENT + "shuffle")
def on_tag_change(session: Session, fields: dict[str, str]) -> None:
    result = sync_corp_tags(session)
    log.info("corp tags reconciled after %s: %s", fields.get("ChangeType"), result)
