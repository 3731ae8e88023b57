"""``scrm`` commands load this module (``core.plugins.load_all("cli")``): referral has no commands of its
own, but importing :mod:`referral.tasks` here joins lending's and crm's hook lists in every CLI process,
so a command that starts an application, marks a visit arrived or records a disbursement accrues the
referrer's commission as the web app and the workers do (``core.plugins.load_tasks`` imports it there)."""

from __future__ import annotations

import click

from referral import tasks


def register(group: click.Group) -> None:  # noqa: ARG001 - the contract of core.cli's plugins
    tasks.register_hooks()
