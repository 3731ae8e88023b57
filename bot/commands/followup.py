"""跟进 <客户> <内容> [下次 <时间>]: log a follow-up (crm.followups) as the sender."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.commands import resolve
from bot.commands.parser import Command, CommandInvalid, format_local, parse_when, split_followup
from crm import followups
from crm.models import FOLLOWUP_OUTCOMES, FollowUpKind
from crm.scope import Viewer

USAGE = "格式：跟进 <客户> <内容> [下次 <时间>]，例如：跟进 张三 电话沟通有意向 下次 明天10点"
EXAMPLE = "跟进 {ref} 电话沟通"


def run(session: Session, viewer: Viewer, command: Command) -> str:
    ref, content, when_text = split_followup(command.rest)
    if not ref or not content:
        raise CommandInvalid(USAGE)
    next_at = parse_when(when_text) if when_text is not None else None  # before any write
    customer = resolve.one(session, viewer, ref, example=EXAMPLE)
    followups.log_followup(session, viewer, customer.id, kind=_kind(content), content=content, outcome=_outcome(content),
                           next_followup_at=next_at)
    label = customer.name or customer.phone_masked or f"#{customer.id}"
    tail = f"，下次跟进：{format_local(next_at, with_year=True)}" if next_at else "（未约下次跟进）"
    return f"已记录对 {label}（#{customer.id}）的跟进{tail}"


def _kind(content: str) -> str:
    """The follow-up channel, guessed from the words used; a chat command defaults to WeChat."""
    if any(w in content for w in ("电话", "来电", "致电")):
        return FollowUpKind.CALL
    if any(w in content for w in ("上门", "面谈", "拜访", "见面")):
        return FollowUpKind.VISIT
    return FollowUpKind.WECHAT


def _outcome(content: str) -> str | None:
    """One of crm's outcomes when the text names it ("未接通" before "接通", "无意向" before "有意向")."""
    for outcome in sorted(FOLLOWUP_OUTCOMES, key=len, reverse=True):
        if outcome in content and not (outcome == "接通" and "未接通" in content):
            return outcome
    return None
