"""``scrm backup`` and the restore drill: the restored database is at the same migration, holds what was
committed before the backup (not after), and its personal data decrypts with the kept keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, select, text

from core import pii
from core.db import unit_of_work
from finance import ledger
from tests.conftest import IS_POSTGRES, postgres_only
from tests.factories import make_customer


def _backup(out) -> dict:
    proc = subprocess.run([sys.executable, "-m", "core.cli", "backup", "--out", str(out)], env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _finance_check(url) -> dict:
    """`scrm finance check` on the restored database: the ledger's invariants hold there too."""
    proc = subprocess.run([sys.executable, "-m", "core.cli", "finance", "check", "--json"],
                          env=dict(os.environ, SCRM_DATABASE_URL=url), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _customers_and_head(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            head = conn.scalar(text("SELECT version_num FROM alembic_version"))
            rows = conn.execute(text("SELECT name, phone_enc FROM customer ORDER BY id")).all()
        return head, [(name, pii.open_sealed("phone", token)) for name, token in rows]
    finally:
        engine.dispose()


def _seed():
    with unit_of_work() as session:
        make_customer(session, name="备份甲", phone="13900001111")
        make_customer(session, name="备份乙", phone="13900002222")
        ledger.post(session, source_type="test", source_key="backup:1", memo="收定金",
                    lines=[ledger.Line("cash", debit=50_000), ledger.Line("deposits_held", credit=50_000)])
    with unit_of_work() as session:
        return session.scalar(text("SELECT version_num FROM alembic_version"))


@pytest.mark.skipif(IS_POSTGRES, reason="the SQLite copy; the PostgreSQL drill is the test below")
def test_sqlite_backup_restores_with_pii_readable(committed, tmp_path):
    head = _seed()
    out = tmp_path / "backup" / "scrm.sqlite3"
    result = _backup(out)
    assert result["kind"] == "sqlite" and result["bytes"] > 0 and out.exists()
    with unit_of_work() as session:  # written after the backup: not in it
        make_customer(session, name="备份后", phone="13900003333")
    restored_head, customers = _customers_and_head(f"sqlite:///{out}")
    assert restored_head == head
    assert customers == [("备份甲", "13900001111"), ("备份乙", "13900002222")]
    check = _finance_check(f"sqlite:///{out}")
    assert check["ok"] and check["entries"] == 1 and check["lines"] == 2


@postgres_only
def test_pg_dump_backup_restores_into_a_fresh_database_with_pii_readable(committed, tmp_path):
    from sqlalchemy.engine import make_url

    from core import backup

    head = _seed()
    out = tmp_path / "scrm.dump"
    result = _backup(out)
    assert result["kind"] == "pg_dump" and result["bytes"] > 0
    with unit_of_work() as session:
        make_customer(session, name="备份后", phone="13900003333")

    # The drill of the README: a fresh database, pg_restore, then check.
    url = make_url(os.environ["SCRM_DATABASE_URL"])
    restore_db = f"{url.database}_restore"  # beside this test process's own database (one per xdist worker)
    restore_url = url.set(database=restore_db).render_as_string(hide_password=False)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {restore_db}"))
            conn.execute(text(f"CREATE DATABASE {restore_db}"))
        args, env = backup.libpq_env(restore_url)
        proc = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", *args, str(out)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        restored_head, customers = _customers_and_head(restore_url)
        assert restored_head == head
        assert customers == [("备份甲", "13900001111"), ("备份乙", "13900002222")]
        # The append-only audit log's triggers came back with the schema.
        engine = create_engine(restore_url)
        try:
            with engine.connect() as conn:
                assert conn.scalar(select(text("count(*)")).select_from(text("pg_trigger"))
                                   .where(text("tgname LIKE '%audit%'"))) > 0
        finally:
            engine.dispose()
        check = _finance_check(restore_url)
        assert check["ok"] and check["entries"] == 1 and check["lines"] == 2
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {restore_db}"))
        admin.dispose()


def test_backup_of_a_missing_sqlite_file_fails_clearly(tmp_path):
    env = dict(os.environ, SCRM_DATABASE_URL=f"sqlite:///{tmp_path}/nothing.db")
    proc = subprocess.run([sys.executable, "-m", "core.cli", "backup", "--out", str(tmp_path / "x")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no SQLite database file" in proc.stderr
