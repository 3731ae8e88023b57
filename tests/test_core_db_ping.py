"""Pooled PostgreSQL connections are pinged only after sitting idle, and a dead idle one is replaced."""

from sqlalchemy import text

from core import db
from tests.conftest import _DB_URL, postgres_only


@postgres_only
def test_an_idle_connection_killed_by_the_server_is_replaced_on_checkout(engine):
    pool_engine = db.make_engine(_DB_URL, pool_size=1, max_overflow=0, ping_after_idle_seconds=0.0)
    try:
        with pool_engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        with pool_engine.connect() as conn:
            second_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second_pid != first_pid
    finally:
        pool_engine.dispose()


@postgres_only
def test_a_connection_reused_at_once_is_not_pinged(engine):
    pool_engine = db.make_engine(_DB_URL, pool_size=1, max_overflow=0, ping_after_idle_seconds=3600.0)
    pings = []
    real_ping = pool_engine.dialect.do_ping
    pool_engine.dialect.do_ping = lambda dbapi_connection: pings.append(1) or real_ping(dbapi_connection)
    try:
        for _ in range(3):
            with pool_engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert pings == []
    finally:
        pool_engine.dispose()
