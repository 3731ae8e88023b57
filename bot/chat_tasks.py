"""Tasks of chat commands and notifications: the chat-command inbox handler is registered on import;
``bot.push_notifications`` pushes crm notifications to WeCom, ``bot.sweep_notifications`` (every
minute) catches rows left unpushed (a lost send, WeCom refusing for a while)."""

from __future__ import annotations

from datetime import timedelta

from bot import notifications
from bot.commands import dispatch  # noqa: F401 - registers the "text" inbox handler
from bot.task_support import wecom_task
from core.tasks import periodic


@wecom_task(notifications.PUSH_TASK)
def push_notifications() -> None:
    notifications.push_pending()


@wecom_task(notifications.SWEEP_TASK)
def sweep_notifications() -> None:
    notifications.push_pending()


periodic(notifications.SWEEP_TASK, timedelta(minutes=1))
