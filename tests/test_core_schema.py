"""The migrations and the models describe the same schema, on SQLite and on PostgreSQL."""

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import exc, inspect

from core.db import Base

# Indexes on an expression, which SQLAlchemy does not reflect on SQLite (it warns and skips them): checked by
# name below instead.
EXPRESSION_INDEXES = {("customer", "ix_customer_phone_last4")}


def test_migrations_match_the_models(engine):
    with engine.connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index",
                                exc.SAWarning)
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index",
                                UserWarning)
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        named = {(table, ix["name"]) for table, _ in EXPRESSION_INDEXES
                 for ix in inspect(conn).get_indexes(table)}
    assert diff == [], f"models and migrations differ; run `scrm db revision`: {diff}"
    assert EXPRESSION_INDEXES <= named or engine.dialect.name == "sqlite"
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            found = {(row[0], row[1]) for row in conn.exec_driver_sql(
                "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'")}
        assert EXPRESSION_INDEXES <= found
