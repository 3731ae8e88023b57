"""The kernel's own tasks, and the outbox relay's place in Celery's processes."""

from __future__ import annotations

from typing import Any

from celery import signals

from core import audit
from core.db import unit_of_work
from core.tasks import task


@task("core.ping")
def ping(marker: str) -> None:
    """Round-trip check of the task path (tests, and `scrm` operators checking a worker)."""
    with unit_of_work() as session:
        audit.record(session, "task.ping", detail=marker[:200], actor=audit.Actor.system("worker"))


_relays: list[Any] = []


@signals.worker_ready.connect
@signals.beat_init.connect
def _start_outbox_relay(**_: Any) -> None:
    """Every ``scrm worker`` (its main process) and ``scrm beat`` relays the outbox rows nobody settled."""
    from core import outbox_relay

    _relays.append(outbox_relay.start_relay())


@signals.worker_shutdown.connect
def _stop_outbox_relay(**_: Any) -> None:
    while _relays:
        _relays.pop().stop()
