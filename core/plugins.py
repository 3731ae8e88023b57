"""The composition root's list of packages.

The kernel knows the other packages only by name: it imports ``<app>.models`` (for the metadata
Alembic compares), ``<app>.tasks`` (to register tasks), ``<app>.cli`` (commands) and
``<app>.web`` (routers) where they exist. Nothing in the domains imports upward.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

APPS = ("payments", "crm", "lending", "finance", "postloan", "referral", "analytics", "bot", "miniprogram_api", "admin")


def load_all(module: str) -> list[ModuleType]:
    loaded = []
    for app in APPS:
        name = f"{app}.{module}"
        if importlib.util.find_spec(app) is None or importlib.util.find_spec(name) is None:
            continue
        loaded.append(importlib.import_module(name))
    return loaded


def load_models() -> None:
    """Import every table (the kernel's and the packages'), so the metadata is complete."""
    import core.models  # noqa: F401

    load_all("models")


def load_tasks() -> None:
    """Register every task (the kernel's and the packages')."""
    import core.jobs  # noqa: F401
    import core.outbox  # noqa: F401  (delivery reports of core.tasks land in the outbox)

    load_all("tasks")
