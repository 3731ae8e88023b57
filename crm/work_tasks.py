"""Tasks and periodic jobs of the work area: reminders, automation events and the automation scan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from core.db import unit_of_work
from core.tasks import periodic, task
from crm import automation, followups, visits
from crm.customers import CHANGED_TASK

REMINDERS_TASK = "crm.followup_reminders"
SCAN_TASK = "crm.automation_scan"


@task(REMINDERS_TASK)
def followup_reminders() -> int:
    """Follow-ups, tasks and visits coming due: each person told once per item (per day)."""
    with unit_of_work() as session:
        return followups.send_due_reminders(session) + visits.send_visit_reminders(session)


@task(CHANGED_TASK)
def customer_changed(customer_id: int, field: str, old: object, new: object,
                     chain: Sequence[int] | None = None) -> list[int]:
    """A customer's grade or stage changed: evaluate the event rules (idempotent by firing keys)."""
    with unit_of_work() as session:
        return automation.handle_change(session, customer_id, field, old, new, list(chain or ()))


@task(SCAN_TASK)
def automation_scan() -> dict[int, int]:
    """The time rules (unassigned for, no follow-up for, new customers), each firing once per window."""
    with unit_of_work() as session:
        return automation.scan(session)


periodic(REMINDERS_TASK, timedelta(minutes=15))
periodic(SCAN_TASK, timedelta(minutes=5))
