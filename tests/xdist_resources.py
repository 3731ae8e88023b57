"""One database and one Redis db per pytest-xdist worker, so that `pytest -n 2` runs two halves side by side.

Without xdist (no ``PYTEST_XDIST_WORKER``) everything is exactly what the environment says. Under xdist,
worker ``gwK``:

- SQLite: its own file (the conftest's temp dir is already per process);
- PostgreSQL: the database ``<db>_gwK`` on the same server as ``SCRM_TEST_DATABASE_URL`` (created at session
  start when missing; its ``public`` schema is dropped and recreated like the plain test database's);
- Redis: the K-th URL of ``SCRM_TEST_REDIS_URL`` when it lists several, comma-separated
  (``redis://h:6379/15,redis://h:6379/14``); with one URL, db ``N - K`` of that server. Two workers never
  share a Redis db, so a Celery worker started by one test process never consumes the other's tasks, and
  rate-limit counters and token caches stay apart.

Ports are always free ones picked by the kernel (bind to port 0), so nothing else needs splitting.
"""

from __future__ import annotations

import re


def worker_index(worker: str) -> int:
    """``"gw1"`` → 1; ``""`` (not under xdist) → 0."""
    match = re.fullmatch(r"gw(\d+)", worker or "")
    return int(match.group(1)) if match else 0


def worker_database_url(url: str, worker: str) -> str:
    """The worker's own PostgreSQL database (``<db>_gwK``); SQLite and plain runs unchanged."""
    if not url or not worker or not url.startswith("postgresql"):
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


def worker_redis_url(urls: str, worker: str) -> str:
    """The worker's own Redis db (see the module docstring); ``""`` when Redis is not configured."""
    candidates = [u.strip() for u in (urls or "").split(",") if u.strip()]
    if not candidates:
        return ""
    index = worker_index(worker)
    if index < len(candidates):
        return candidates[index]
    base = candidates[0]
    match = re.fullmatch(r"(.*/)(\d+)", base)
    db_number = int(match.group(2)) - index if match else -1
    if db_number < 0:
        raise RuntimeError(f"xdist worker {worker} needs a Redis db of its own: list one URL per worker in "
                           f"SCRM_TEST_REDIS_URL (comma-separated), got {urls!r}")
    return f"{match.group(1)}{db_number}"


def ensure_postgres_database(url: str) -> None:
    """Create the database of ``url`` when it does not exist (from template0: never blocked by a concurrent
    CREATE DATABASE of the other worker, which template1 would be)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database
    if not re.fullmatch(r"[A-Za-z0-9_]+", name or ""):
        raise RuntimeError(f"refusing to create a test database named {name!r}")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    finally:
        admin.dispose()
