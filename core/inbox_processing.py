"""Processing a batch of stored callbacks (an inbox: WeCom events, payment notifications), shared by the
channels that own such an inbox.

Each row is processed in its own transaction, so one that fails does not hold back the others; a failure
counts an attempt on the row (its own transaction), marks it ``failed`` after ``max_attempts``, and is
re-raised after the batch so the task retries (rows already handled are skipped under their row lock).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session

from core import clock
from core.db import unit_of_work

log = logging.getLogger(__name__)


def process_one(model: type[Any], process: Callable[[Session, int], Any], inbox_id: int, *,
                max_attempts: int, what: str) -> None:
    try:
        with unit_of_work() as session:
            process(session, inbox_id)
    except Exception as exc:
        with unit_of_work() as session:
            row = session.get(model, inbox_id)
            if row is not None and row.status == "pending":
                row.attempts += 1
                row.error = f"{type(exc).__name__}: {exc}"[:500]
                if row.attempts >= max_attempts:
                    row.status, row.processed_at = "failed", clock.now()
                    log.error("%s %s failed for good after %s attempts", what, inbox_id, row.attempts)
                    return
        raise


def process_each(model: type[Any], process: Callable[[Session, int], Any], inbox_ids: Iterable[int], *,
                 max_attempts: int, what: str) -> None:
    failure: Exception | None = None
    for inbox_id in inbox_ids:
        try:
            process_one(model, process, inbox_id, max_attempts=max_attempts, what=what)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the others had their turn
            log.warning("%s %s failed; the task will retry", what, inbox_id, exc_info=True)
            failure = failure or exc
    if failure is not None:
        raise failure
