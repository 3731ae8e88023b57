"""Periodic task ``lending.sla_reminders``: remind once per node visit whose SLA has passed."""

from __future__ import annotations

from datetime import timedelta

from core.db import unit_of_work
from core.tasks import periodic, task
from lending.workflow.engine import send_sla_reminders

SLA_TASK = "lending.sla_reminders"


@task(SLA_TASK)
def sla_reminders() -> int:
    with unit_of_work() as session:
        return send_sla_reminders(session)


periodic(SLA_TASK, timedelta(minutes=10))
