"""The CRM's ``scrm`` commands; each area registers its own (found by core.plugins)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    from crm.importer import cli as import_cli

    import_cli.register(group)
