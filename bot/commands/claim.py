"""领取 <客户>: claim from the public pool (crm.pool_service.claim). Caps, cooldown and blacklist
refusals come back as crm's own Chinese messages."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.commands import resolve
from bot.commands.parser import Command, CommandInvalid
from crm import pool_service
from crm.scope import Viewer

USAGE = "格式：领取 <客户>，例如：领取 #1024 或 领取 13812345678"


def run(session: Session, viewer: Viewer, command: Command) -> str:
    ref = command.rest.strip()
    if not ref:
        raise CommandInvalid(USAGE)
    cid = resolve.id_ref(ref)
    if cid is None:
        found = resolve.pool_matches(session, viewer, ref)
        if not found:
            raise resolve.CustomerNotMatched(f"您可领取的公海中没有找到「{ref[:20]}」")
        if len(found) > 1:
            raise resolve.ambiguity(session, ref, found, "领取 {ref}")
        cid = found[0].id
    customer = pool_service.claim(session, viewer, cid)
    label = customer.name or customer.phone_masked or f"#{customer.id}"
    held = pool_service.owned_count(session, viewer.staff_id)
    return f"领取成功：{label}（#{customer.id}）已进入您的私海（现有 {held} 位客户）。记得尽快跟进：跟进 #{customer.id} <内容>"
