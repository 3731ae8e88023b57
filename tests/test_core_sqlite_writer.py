"""The embedded default's writer queue (SQLite): transactions of this process take turns on a lock,
and every way a transaction ends gives the turn back."""

import threading

import pytest
from sqlalchemy import text

from core import db


@pytest.fixture
def engine(tmp_path):
    eng = db.make_engine(f"sqlite:///{tmp_path}/w.db")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield eng
    eng.dispose()


def test_commit_rollback_and_close_each_give_the_turn_back(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(ZeroDivisionError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        1 / 0  # noqa: B018
    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES (3)"))  # autobegun, never committed
    conn.close()
    with engine.begin() as conn:  # would wait 30 s if any of the above had kept the turn
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_concurrent_writers_all_finish(engine):
    errors = []

    def write(n):
        try:
            for i in range(20):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": n * 100 + i})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 120
