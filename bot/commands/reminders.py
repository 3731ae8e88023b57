"""提醒 / 今日: today's due follow-ups and tasks, and what is overdue (crm.followups.reminders_for)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.commands.parser import Command, format_local
from crm import followups
from crm.scope import Viewer

MAX_ITEMS = 10


def run(session: Session, viewer: Viewer, command: Command) -> str:
    found = followups.reminders_for(session, viewer)
    if not found.due_today and not found.overdue:
        return f"{found.day:%m月%d日}没有到期的跟进和待办，也没有逾期事项。"
    lines = [f"{found.day:%m月%d日} 提醒："]
    for title, items in (("逾期", found.overdue), ("今日到期", found.due_today)):
        if not items:
            continue
        lines.append(f"【{title} {len(items)} 项】")
        for item in items[:MAX_ITEMS]:
            ref = f"（#{item.customer_id}）" if item.customer_id else ""
            lines.append(f"· {format_local(item.due_at)} {item.title}{ref}")
        if len(items) > MAX_ITEMS:
            lines.append(f"……另有 {len(items) - MAX_ITEMS} 项，请在控制台「我的工作」查看")
    return "\n".join(lines)
