"""Periodic work of channel codes: a new Shanghai day puts the primary staff back on codes that
were swapped to backups when someone reached the daily add cap."""

from __future__ import annotations

from datetime import timedelta

from bot import channel_codes
from bot.task_support import wecom_task
from core.db import unit_of_work
from core.tasks import periodic

RESTORE_TASK = "bot.restore_channel_codes"


@wecom_task(RESTORE_TASK)
def restore_channel_codes() -> int:
    with unit_of_work() as session:
        return channel_codes.restore_swapped(session)


periodic(RESTORE_TASK, timedelta(minutes=15))
