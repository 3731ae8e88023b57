"""SQLAlchemy 2 engine, declarative base and the unit of work.

Services receive a Session and only ``flush()``; the request or task boundary commits through
:func:`unit_of_work`. SQLite (the embedded default) runs with WAL, foreign keys and
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Select,
    create_engine,
    event,
)
from sqlalchemy import exc as exc_module
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from core.clock import ensure_aware
from core.settings import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class InSubquery(ColumnElement[bool]):
    """``<column> IN (<select>)`` that PostgreSQL can answer from the column's index inside an OR: written
    there as ``<column> = ANY(ARRAY(<select>))``, the select runs once (an InitPlan) and its values probe the
    index, so ``owner_id = 7 OR id = ANY(ARRAY(…))`` becomes a BitmapOr of two index scans — where the plain
    ``IN`` is a hashed subplan tested on every row of a sequential scan. Elsewhere a plain ``IN``."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("select", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any], select: Select[Any]) -> None:
        self.column = column
        self.select = select


@compiles(InSubquery)
def _in_subquery(element: InSubquery, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.select), **kw)


@compiles(InSubquery, "postgresql")
def _in_subquery_pg(element: InSubquery, compiler: Any, **kw: Any) -> str:
    return (f"{compiler.process(element.column, **kw)} = ANY(ARRAY("
            f"{compiler.process(element.select.scalar_subquery(), **kw)}))")


class UTCDateTime(TypeDecorator):
    """An instant stored as UTC; naive values are refused on the way in and made aware on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use core.clock.now()")
        value = ensure_aware(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else ensure_aware(value)


# 64-bit integers: BIGINT on PostgreSQL, INTEGER on SQLite (already 64-bit there, and only
# INTEGER PRIMARY KEY autoincrements).
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, int: BigInt}


_engine_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_session_factory: sessionmaker[Session] | None = None


SQLITE_WRITER_WAIT_SECONDS = 30
# Thread ident holding each SQLite engine's writer lock (keyed by the lock's id).
_writer_owners: dict[int, int] = {}


def holds_sqlite_writer() -> bool:
    """Whether this thread has a SQLite write transaction open. A second unit of work opened now by the same
    thread would wait for its own lock (and time out): code that may run inside a transaction checks this."""
    return threading.get_ident() in _writer_owners.values()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # SQLite has one writer. BEGIN IMMEDIATE makes transactions queue instead of failing on a lock
    # upgrade, but its busy handler waits by sleeping and retrying, which under a few concurrent
    # requests starves some of them for a second or more. Inside this process the queue is a lock:
    # a waiting transaction wakes the moment the previous one ends. (Other processes, e.g. a CLI
    # command beside `scrm serve`, still meet SQLite's own lock and busy timeout.)
    writer = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not writer.acquire(timeout=SQLITE_WRITER_WAIT_SECONDS):
            raise TimeoutError("SQLite writer lock not acquired in time")
        conn.info["scrm_writer"] = True
        _writer_owners[id(writer)] = threading.get_ident()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(conn)
            raise

    def _free() -> None:
        _writer_owners.pop(id(writer), None)
        writer.release()

    def _release(conn: Any) -> None:
        if conn.info.pop("scrm_writer", False):
            _free()

    @event.listens_for(engine, "commit")
    def _on_commit(conn: Any) -> None:
        _release(conn)

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: Any) -> None:
        _release(conn)

    # Safety nets: a connection returned to the pool or invalidated mid-transaction frees the lock too.
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop("scrm_writer", False):
            _free()

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi_connection: Any, record: Any, _exc: Any) -> None:
        if record is not None and record.info.pop("scrm_writer", False):
            _free()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    ping_idle = kwargs.pop("ping_after_idle_seconds", PING_AFTER_IDLE_SECONDS)
    # An unreachable server fails a request in seconds (a 503), instead of the OS's minutes-long TCP timeout.
    # JIT off: PostgreSQL compiles a query whose estimated cost passes jit_above_cost (100,000: any dashboard
    # figure over the million customers) before running it, which took 0.3–2.3 s for a 0.2 s query (the funnel,
    # EXPLAIN ANALYZE in BENCHMARKS.md); it pays off only for queries running many seconds, which we do not serve.
    kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS, "options": PG_SESSION_OPTIONS,
                              **kwargs.get("connect_args", {})}
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, ping_idle)
    return engine


# A pooled connection used a moment ago is alive; one that sat idle may have been closed by the server,
# a proxy or a restart. SQLAlchemy's pool_pre_ping costs a SELECT 1 round trip on EVERY checkout (about
# a sixth of a short request's database time); we ping only connections idle longer than this.
PING_AFTER_IDLE_SECONDS = 5.0
PG_CONNECT_TIMEOUT_SECONDS = 5
PG_SESSION_OPTIONS = "-c jit=off"


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["scrm_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("scrm_idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise exc_module.DisconnectionError(f"idle connection is gone: {exc}") from exc
        if not alive:
            raise exc_module.DisconnectionError("idle connection is gone")


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    with _engine_lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def get_session_factory() -> sessionmaker[Session]:
    global _session_factory
    if _session_factory is None:
        _session_factory = sessionmaker(bind=get_engine(), expire_on_commit=False)
    return _session_factory


def set_session_factory(factory: sessionmaker[Session] | None) -> None:
    """Point every unit of work at another factory (tests bind it to their rolled-back connection)."""
    global _session_factory
    _session_factory = factory


def dispose_engines() -> None:
    global _session_factory
    with _engine_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
    _session_factory = None


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: commit on success, roll back on error. Tasks in the outbox go out after commit."""
    session = get_session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def sessions_are_independent() -> bool:
    """Whether each unit of work gets a connection of its own (an engine behind the factory), so
    two threads may use one each at the same time. Tests that bind every unit of work to their one
    rolled-back connection say no."""
    return isinstance(get_session_factory().kw.get("bind"), Engine)


def insert_ignore(session: Session, table: Any, values: dict[str, Any], conflict_columns: list[str]) -> Any | None:
    """INSERT … ON CONFLICT (conflict_columns) DO NOTHING RETURNING id: the new id, or None if it existed.

    The database decides: of two concurrent inserts of the same key exactly one gets an id.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported databases
        raise NotImplementedError(dialect)
    table = getattr(table, "__table__", table)
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    return session.execute(stmt.returning(table.c.id)).scalar_one_or_none()
