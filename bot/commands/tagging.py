"""标签 / 去标签 <客户> <标签名>[,<标签名>]: tag a customer from the tag library (crm.tags).

Tags are looked up by name among live tags; a name used in two groups is written "组名/标签名".
Salespeople cannot create tags by chat: the library is kept by managers in the console.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.commands import resolve
from bot.commands.parser import Command, CommandInvalid, split_tags, split_target
from crm import tags
from crm.models import Tag, TagGroup
from crm.scope import Viewer

USAGE = "格式：{word} <客户> <标签名>[,<标签名>]，例如：{word} 张三 高意向,有房"


def _resolve_tags(session: Session, names: list[str]) -> list[Tag]:
    wanted = []
    for raw in names:
        group, sep, name = raw.replace("／", "/").rpartition("/")
        wanted.append((group.strip() if sep else None, name.strip()))
    rows = session.execute(select(Tag, TagGroup.name).join(TagGroup, TagGroup.id == Tag.group_id)
                           .where(Tag.deleted_at.is_(None), Tag.name.in_([n for _, n in wanted]))).all()
    out: list[Tag] = []
    missing, ambiguous = [], []
    for group, name in wanted:
        hits = [t for t, g in rows if t.name == name and (group is None or g == group)]
        if not hits:
            missing.append(f"{group}/{name}" if group else name)
        elif len(hits) > 1:
            groups = "、".join(f"{g}/{name}" for t, g in rows if t.name == name)
            ambiguous.append(f"「{name}」在多个分组中，请写成 {groups} 之一")
        elif hits[0] not in out:
            out.append(hits[0])
    if missing:
        raise CommandInvalid(f"标签库中没有：{'、'.join(missing)}。请先请主管在控制台「标签」中创建")
    if ambiguous:
        raise CommandInvalid("；".join(ambiguous))
    return out


def run(session: Session, viewer: Viewer, command: Command) -> str:
    ref, tail = split_target(command.rest)
    names = split_tags(tail)
    if not ref or not names:
        raise CommandInvalid(USAGE.format(word=command.word or "标签"))
    adding = command.name == "tag"
    found = _resolve_tags(session, names)
    customer = resolve.one(session, viewer, ref, example=f"{command.word} {{ref}} {names[0]}")
    label = customer.name or customer.phone_masked or f"#{customer.id}"
    ids = [t.id for t in found]
    change = tags.tag_customer(session, viewer, customer.id, ids) if adding else \
        tags.untag_customer(session, viewer, customer.id, ids)
    joined = "、".join(t.name for t in found)
    if change.skipped_ids:
        return f"客户「{label}」不在您可操作的范围内"
    if not change.changed:
        return f"{label}（#{customer.id}）{'已有' if adding else '没有'}标签：{joined}，无需{'添加' if adding else '移除'}"
    now_tags = "、".join(t.name for t in tags.tags_of(session, customer.id)) or "无"
    return f"已为 {label}（#{customer.id}）{'添加' if adding else '移除'}标签：{joined}\n当前标签：{now_tags}"
