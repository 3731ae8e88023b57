"""Alembic environment: the metadata of every package, the URL from settings."""

import logging

from alembic import context
from sqlalchemy import pool

from core import plugins
from core.db import Base, make_engine
from core.settings import get_settings

plugins.load_models()
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=get_settings().database_url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(get_settings().database_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


def _run(connection) -> None:  # noqa: ANN001
    sqlite = connection.dialect.name == "sqlite"
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite,
                      compare_type=True)
    if sqlite and not connection.in_transaction():
        # SQLite changes a table by rebuilding it (batch mode): with foreign keys enforced, dropping
        # the old copy of a referenced table (customer…) would cascade into the rows referring to it.
        # The pragma only takes effect outside a transaction, hence on the raw connection, first.
        raw = connection.connection.dbapi_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with context.begin_transaction():
                context.run_migrations()
            broken = raw.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                logging.getLogger("alembic").warning("rows whose foreign key has no parent: %s", broken[:5])
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
        return
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
