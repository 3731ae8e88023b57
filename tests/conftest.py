"""Test harness.

SQLite by default; PostgreSQL when SCRM_TEST_DATABASE_URL is set, Redis and a real Celery worker
when SCRM_TEST_REDIS_URL is set. Each test runs inside a transaction rolled back afterwards
(``join_transaction_mode="create_savepoint"``); tests that need real commits seen by other
connections, threads or processes use the ``committed`` fixture instead.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.xdist_resources import ensure_postgres_database, worker_database_url, worker_redis_url

_TMP = Path(tempfile.mkdtemp(prefix="scrm-test-"))
# Under pytest-xdist (`-n 2`) each worker process ("gw0", "gw1", …) gets a database and a Redis db of its own
# (tests/xdist_resources.py): its own SQLite file under its own temp dir, `<db>_gw0` … on PostgreSQL.
# The values as given are kept aside (the xdist controller's environment is what its workers inherit).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_GIVEN_DB_URL = os.environ.setdefault("SCRM_TEST_GIVEN_DATABASE_URL", os.environ.get("SCRM_TEST_DATABASE_URL", ""))
_GIVEN_REDIS_URL = os.environ.setdefault("SCRM_TEST_GIVEN_REDIS_URL", os.environ.get("SCRM_TEST_REDIS_URL", ""))
_DB_URL = worker_database_url(_GIVEN_DB_URL, _WORKER) or f"sqlite:///{_TMP}/test.db"
_REDIS_URL = worker_redis_url(_GIVEN_REDIS_URL, _WORKER)
# Tests that read these variables themselves see this worker's own.
if _GIVEN_DB_URL:
    os.environ["SCRM_TEST_DATABASE_URL"] = _DB_URL
if _REDIS_URL:
    os.environ["SCRM_TEST_REDIS_URL"] = _REDIS_URL

os.environ.update(
    SCRM_ENV="test",
    SCRM_DATABASE_URL=_DB_URL,
    SCRM_REDIS_URL=_REDIS_URL,
    SCRM_SECRET_KEY="test-secret-key-not-for-production",
    SCRM_PII_KEYS="t1:" + base64.b64encode(b"\x01" * 32).decode(),
    SCRM_PII_ACTIVE_KEY_ID="t1",
    SCRM_BLIND_INDEX_KEY=base64.b64encode(b"\x02" * 32).decode(),
    SCRM_LOG_LEVEL="WARNING",
    SCRM_WECOM_TOKEN="testtoken",
    SCRM_WECOM_AES_KEY=base64.b64encode(b"\x07" * 32).decode().rstrip("="),
    SCRM_WECOM_CORP_ID="",
    SCRM_WECOM_SECRET="",
    SCRM_WECOM_API_BASE="",
    # Dashboards computed on every view (tests change data and look again); the cache's own tests turn it on.
    SCRM_DASHBOARD_CACHE_SECONDS="0",
)

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from core import clock, db, pii, plugins, tasks  # noqa: E402
from core.settings import reset_settings_cache  # noqa: E402

try:  # browser tests: CI shares two cores with a Celery worker and servers; wait up to 15 s (not 5) for a page
    from playwright.sync_api import expect as _playwright_expect

    _playwright_expect.set_options(timeout=15_000)
except ImportError:  # pragma: no cover - playwright is a dev dependency
    pass

reset_settings_cache()
pii.reset_keyring_cache()
plugins.load_models()
plugins.load_tasks()

# The WeCom simulator over real HTTP (fixture `wecom_server`), for every test that talks to WeCom.
pytest_plugins = ["tests.wecom_server", "tests.mp_support", "tests.pay_server", "tests.tel_server"]

IS_POSTGRES = _DB_URL.startswith("postgresql")
HAS_REDIS = bool(_REDIS_URL)


def migrate(url: str) -> None:
    from alembic import command

    from core.cli import alembic_config

    engine = db.make_engine(url)
    try:
        if url.startswith("postgresql"):
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def engine():
    if IS_POSTGRES and _WORKER:
        ensure_postgres_database(_DB_URL)
    migrate(_DB_URL)
    eng = db.get_engine(_DB_URL)
    _SEED_ROWS.update(_seeded_rows(eng))
    yield eng
    db.dispose_engines()


@pytest.fixture(autouse=True)
def _clock_and_tasks() -> Iterator[tasks.ManualRunner]:
    runner = tasks.ManualRunner()
    tasks.set_runner(runner)
    yield runner
    tasks.set_runner(None)
    clock.unfreeze()


@pytest.fixture
def task_runner(_clock_and_tasks: tasks.ManualRunner) -> tasks.ManualRunner:
    """Tasks sent after commit collect here; ``task_runner.drain()`` runs them."""
    return _clock_and_tasks


@pytest.fixture
def session(engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction rolled back at the end.

    Every ``unit_of_work`` in the code under test (requests, tasks) joins the same transaction.
    """
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    db.set_session_factory(factory)
    s = factory()
    try:
        yield s
    finally:
        s.close()
        db.set_session_factory(None)
        outer.rollback()
        connection.close()


# Reference rows the migrations seed (grades, default workflow, …): restored after a truncation.
_SEED_ROWS: dict[str, list[dict]] = {}


def _seeded_rows(eng) -> dict[str, list[dict]]:  # noqa: ANN001
    from sqlalchemy import inspect, select

    seeded = {}
    with eng.connect() as conn:
        existing = set(inspect(conn).get_table_names())
        for table in db.Base.metadata.sorted_tables:
            if table.name not in existing:  # a model whose migration is not written yet: test_core_schema says so
                continue
            rows = [dict(r._mapping) for r in conn.execute(select(table))]
            if rows:
                seeded[table.name] = rows
    return seeded


def _used_tables(conn) -> set[str]:  # noqa: ANN001
    """Tables holding rows, or whose serial sequence has handed out values (a row inserted then deleted)."""
    names = [t.name for t in db.Base.metadata.sorted_tables]
    probe = " UNION ALL ".join(f"SELECT '{n}' WHERE EXISTS (SELECT 1 FROM {n})" for n in names)
    used = set(conn.scalars(text(probe)))
    used.update(conn.scalars(text(
        "SELECT t.relname FROM pg_sequences q "
        "JOIN pg_namespace n ON n.nspname = q.schemaname "
        "JOIN pg_class s ON s.relname = q.sequencename AND s.relnamespace = n.oid AND s.relkind = 'S' "
        "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
        "AND d.refclassid = 'pg_class'::regclass "
        "JOIN pg_class t ON t.oid = d.refobjid "
        "WHERE q.schemaname = current_schema() AND q.last_value IS NOT NULL")))
    return used


def _seed_intact(conn) -> bool:  # noqa: ANN001
    """Every seeded table holds exactly its seed rows, and its id sequence stands at their highest id."""
    from sqlalchemy import select

    for table in db.Base.metadata.sorted_tables:
        rows = _SEED_ROWS.get(table.name)
        if not rows:
            continue
        key = [c.name for c in table.primary_key.columns]
        current = sorted((dict(r._mapping) for r in conn.execute(select(table))), key=lambda r: [r[k] for k in key])
        if current != sorted(rows, key=lambda r: [r[k] for k in key]):
            return False
        if "id" in table.c:
            seq = conn.scalar(text(f"SELECT pg_get_serial_sequence('{table.name}', 'id')"))
            if seq and conn.scalar(text(f"SELECT last_value FROM {seq}")) != max(r["id"] for r in rows):
                return False
    return True


def _truncate_all(url: str) -> None:
    """Empty what the test used and restore the seed rows, as a TRUNCATE of every table would.

    Only the used tables are truncated: a TRUNCATE of all 120-odd tables costs seconds on PostgreSQL, and
    ``committed`` tests are many. The seeded tables (grades, fee types, …) are referenced by almost every
    table, so they are truncated (CASCADE) and re-seeded only when a test changed them.
    """
    eng = db.get_engine(url)
    with eng.begin() as conn:
        used = _used_tables(conn) - set(_SEED_ROWS)
        tables = [t.name for t in reversed(db.Base.metadata.sorted_tables) if t.name in used]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        if _seed_intact(conn):
            return
        tables = [t.name for t in reversed(db.Base.metadata.sorted_tables)]
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        for table in db.Base.metadata.sorted_tables:
            rows = _SEED_ROWS.get(table.name)
            if not rows:
                continue
            conn.execute(table.insert(), rows)
            if "id" in table.c:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                  f"(SELECT max(id) FROM {table.name}))"))


_SQLITE_TEMPLATE = _TMP / "migrated-template.db"


def _migrated_sqlite_template() -> Path:
    """A freshly migrated SQLite file, made once per test process; each ``committed`` test gets a copy
    (a file copy takes milliseconds, running every migration about a second)."""
    if not _SQLITE_TEMPLATE.exists():
        scratch = _TMP / "migrating-template.db"
        migrate(f"sqlite:///{scratch}")
        conn = sqlite3.connect(scratch)
        try:  # everything in the main file, so that one file copy has it all
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        scratch.replace(_SQLITE_TEMPLATE)
    return _SQLITE_TEMPLATE


@pytest.fixture
def committed(engine, tmp_path) -> Iterator[sessionmaker[Session]]:
    """Real commits, visible to other connections, threads and processes.

    SQLite: a fresh migrated database file for this test. PostgreSQL: the test database, emptied
    afterwards. Yields the session factory every unit of work uses during the test.
    """
    if IS_POSTGRES:
        url = _DB_URL
    else:
        path = tmp_path / "committed.db"
        shutil.copyfile(_migrated_sqlite_template(), path)
        url = f"sqlite:///{path}"
    os.environ["SCRM_DATABASE_URL"] = url
    reset_settings_cache()
    factory = sessionmaker(bind=db.get_engine(url), expire_on_commit=False)
    db.set_session_factory(factory)
    try:
        yield factory
    finally:
        db.set_session_factory(None)
        os.environ["SCRM_DATABASE_URL"] = _DB_URL
        reset_settings_cache()
        if IS_POSTGRES:
            _truncate_all(url)
        else:
            db.get_engine(url).dispose()


postgres_only = pytest.mark.skipif(not IS_POSTGRES, reason="needs SCRM_TEST_DATABASE_URL (PostgreSQL)")
redis_only = pytest.mark.skipif(not HAS_REDIS, reason="needs SCRM_TEST_REDIS_URL")
