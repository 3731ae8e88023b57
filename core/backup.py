"""``scrm backup``: a consistent copy of the database in one file.

* PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot, taken without blocking writers;
  restore with ``pg_restore``; the client must be the server's major version or newer).
* SQLite: the SQLite online backup API (``sqlite3.Connection.backup``), a consistent copy even while
  ``scrm serve`` is writing (WAL). The result is a database file to put in place of ``var/scrm.db``.

The PII keys (``SCRM_PII_KEYS``, ``SCRM_BLIND_INDEX_KEY``) are NOT in the backup and must be kept
apart (a secret store): a restored database is only readable with them. The restore drill (README,
"Backups and the restore drill") restores into a fresh database and checks that the PII decrypts.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupResult:
    path: Path
    kind: str  # "pg_dump" | "sqlite"
    size: int


def libpq_env(database_url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options for the PostgreSQL client programs (the password goes in PGPASSWORD, not argv)."""
    url = make_url(database_url)
    args = ["--dbname", url.database or ""]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def backup(database_url: str, out: Path) -> BackupResult:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if database_url.startswith("postgresql"):
        return _pg_dump(database_url, out)
    if database_url.startswith("sqlite"):
        return _sqlite_copy(database_url, out)
    raise BackupError(f"unsupported database: {make_url(database_url).drivername}")


def _pg_dump(database_url: str, out: Path) -> BackupResult:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump not found: install the PostgreSQL client (same major version as the server)")
    args, env = libpq_env(database_url)
    partial = out.with_name(out.name + ".partial")
    proc = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--file", str(partial), *args],  # noqa: S603
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {proc.stderr.strip()}")
    partial.replace(out)  # a file named like the backup is always complete
    return BackupResult(out, "pg_dump", out.stat().st_size)


def _sqlite_copy(database_url: str, out: Path) -> BackupResult:
    path = make_url(database_url).database
    if not path or path == ":memory:" or not Path(path).exists():
        raise BackupError(f"no SQLite database file at {path!r}")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(partial)
    try:
        with target:
            source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        ok = target.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the copy failed its integrity check: {ok}")
    finally:
        target.close()
        source.close()
    partial.replace(out)
    return BackupResult(out, "sqlite", out.stat().st_size)
