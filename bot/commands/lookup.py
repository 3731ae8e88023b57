"""查 <手机号|姓名|拼音首字母|#编号>: customers within the sender's scope (then their visible pools)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.commands import replies, resolve
from bot.commands.parser import Command
from crm import tags
from crm.scope import Viewer

USAGE = "请写明要查的客户，例如：查 13812345678、查 张三、查 zs"


def run(session: Session, viewer: Viewer, command: Command) -> str:
    ref = command.rest.strip()
    if not ref:
        return USAGE
    found = resolve.matches(session, viewer, ref)
    if not found:
        return f"没有找到客户「{ref[:20]}」（或不在您的数据范围内）。"
    shown = resolve.cards(session, found[:resolve.SHORT_LIST])
    if len(found) == 1:
        card = shown[0]
        names = [t.name for t in tags.tags_of(session, card.id)]
        lines = [card.line()]
        if names:
            lines.append("标签：" + "、".join(names[:10]))
        if card.status == "pool":
            lines.append(f"该客户在公海，可发送「领取 #{card.id}」领取")
        return "\n".join(lines)
    more = "\n……还有更多，请写得更具体些" if len(found) > resolve.SHORT_LIST else ""
    return (f"找到 {len(shown)}{'+' if more else ''} 位客户：\n" + replies.numbered([c.line() for c in shown]) + more
            + f"\n可用 #编号 指定，例如：跟进 #{shown[0].id} 电话沟通")
