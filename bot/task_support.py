"""What every WeCom task shares.

:func:`wecom_task` declares a task that talks to WeCom. Before the task body opens its unit of
work it makes sure the access token is in the process's memory: on SQLite (the embedded default)
the database token cache needs the write lock, which the task's own transaction would already
hold, so a cold token fetched from inside the transaction would wait on itself.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from core.tasks import task

log = logging.getLogger(__name__)


def warm_token() -> None:
    from bot.gateway import get_gateway

    try:
        get_gateway().access_token()
    except Exception:  # noqa: BLE001 - WeCom unreachable now: the body's own call fails and the task retries
        log.warning("WeCom access token not available before the task", exc_info=True)


def wecom_task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    def decorator(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            warm_token()
            return fn(*args, **kwargs)

        return task(name, **options)(run)

    return decorator
