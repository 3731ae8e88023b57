"""Periodic housekeeping of the mini-program channel."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from core import clock
from core.db import unit_of_work
from core.tasks import periodic, task
from miniprogram_api import reminders  # noqa: F401 - registers miniprogram.send_repayment_reminder
from miniprogram_api.models import MpSession, MpUsedCode

PURGE_TASK = "miniprogram.purge"
CODE_MEMORY = timedelta(days=1)  # a wx.login code lives 5 minutes; a day is ample to refuse its reuse
SESSION_MEMORY = timedelta(days=30)  # expired or revoked sessions kept a while for the record


@task(PURGE_TASK)
def purge() -> dict[str, int]:
    """Forget used login codes after a day, and sessions a month after they ended."""
    now = clock.now()
    with unit_of_work() as session:
        codes = session.execute(delete(MpUsedCode).where(MpUsedCode.used_at < now - CODE_MEMORY)).rowcount
        sessions = session.execute(delete(MpSession).where(MpSession.expires_at < now - SESSION_MEMORY)).rowcount
    return {"codes": codes or 0, "sessions": sessions or 0}


periodic(PURGE_TASK, timedelta(hours=6))
