"""Where a console page's time goes: each page kind of the ``--sessions`` bench, in this process, one request
at a time.

For every page variant (the customer list as a salesperson, a supervisor and a manager, pages and filters as
``bench.console.session_urls`` makes them; the customer 360 page; the home dashboard) it reports the wall time,
this process's CPU time (Python: routing, ORM, rendering), the time spent waiting on SQL statements (their count),
and the size of the HTML. Run it under a sampling profiler (``py-spy record``) to see the functions.

    python -m bench pages --database-url postgresql+psycopg://…/scrm_bench --rounds 10
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from bench import console


class SqlTimer:
    """Time inside cursor.execute per request (client side: the server's work plus the round trip)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.seconds = 0.0
        self.count = 0
        self.statements: dict[str, list[float]] = defaultdict(list)
        self.misses: Counter[str] = Counter()  # statements compiled again (not from SQLAlchemy's cache)
        self.backends: set[int] = set()  # PostgreSQL backend pids of this process's connections

    def install(self, engine: Any) -> None:
        from sqlalchemy import event

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
            self.local.t0 = time.perf_counter()
            self.backends.add(conn.connection.dbapi_connection.info.backend_pid)

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
            dt = time.perf_counter() - self.local.t0
            self.seconds += dt
            self.count += 1
            self.statements[" ".join(statement.split())[:160]].append(dt)
            hit = getattr(context, "cache_hit", None)
            if hit is not None and hit.name != "CACHE_HIT":
                self.misses[f"{hit} " + " ".join(statement.split())[:120]] += 1

    def reset(self) -> None:
        self.seconds, self.count = 0.0, 0


def machine_busy_seconds() -> float:
    """CPU time every process of the machine has used since boot (/proc/stat): this process, PostgreSQL's
    backends and parallel workers, Redis. Read around a request on a quiet machine: the page's machine cost."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(pids: set[int]) -> float:
    """CPU time of these PostgreSQL backends (not of the parallel workers they start: see machine CPU)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def variants(sessions: list[dict], rounds: int) -> list[tuple[str, str, str, str]]:
    """(label, role, cookie, path) of every request to time: each kind for each role, the list's variants."""
    rnd = random.Random(5)
    by_role: dict[str, list[dict]] = defaultdict(list)
    for sess in sessions:
        by_role[sess["role"]].append(sess)
    out = []
    for role, members in by_role.items():
        for i in range(rounds):
            sess = members[i % len(members)]
            out.append((f"list {role}", role, sess["cookie"],
                        f"/console/customers?page={rnd.randint(1, 5)}"))
            extra = ["&status=owned", "&sort=updated_desc", "&stage=contacted", "&q=1380"][i % 4]
            out.append((f"list {role} filtered", role, sess["cookie"],
                        f"/console/customers?page={rnd.randint(1, 5)}{extra}"))
            if sess["customers"]:
                out.append((f"detail {role}", role, sess["cookie"],
                            f"/console/customers/{rnd.choice(sess['customers'])}"))
            out.append((f"dashboard {role}", role, sess["cookie"], "/console/"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pages")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--slowest", type=int, default=0, help="print the N statements of most total time")
    parser.add_argument("--no-migrate", action="store_true",
                        help="leave the data set's schema as it is (a data set shared with other branches)")
    parser.add_argument("--only", default="", help="time only the page variants whose label contains this")
    args = parser.parse_args(argv)
    env = {"SCRM_DATABASE_URL": args.database_url, "SCRM_REDIS_URL": args.redis_url,
           "SCRM_LOG_LEVEL": "WARNING", "SCRM_SECRET_KEY": os.environ.get("SCRM_SECRET_KEY") or "bench-secret"}
    if not os.environ.get("SCRM_PII_KEYS"):
        import base64

        env["SCRM_PII_KEYS"] = "b1:" + base64.b64encode(os.urandom(32)).decode()
        env["SCRM_BLIND_INDEX_KEY"] = base64.b64encode(os.urandom(32)).decode()
    sessions = console.prepare_sessions(env, args.sessions, migrate=not args.no_migrate)

    from starlette.testclient import TestClient

    from core.db import get_engine
    from core.settings import get_settings
    from core.web import create_app

    app = create_app(start_tasks=False)
    timer = SqlTimer()
    timer.install(get_engine())
    cookie_name = get_settings().session_cookie_name
    todo = [v for v in variants(sessions, args.rounds) if args.only in v[0]]
    rows: dict[str, list[tuple[float, float, float, int, int]]] = defaultdict(list)
    machine: dict[str, float] = defaultdict(float)
    backend: dict[str, float] = defaultdict(float)
    with TestClient(app) as client:
        for _, _, cookie, path in todo[:8]:  # warm-up: templates compiled, statement caches filled
            client.get(path, headers={"Cookie": f"{cookie_name}={cookie}"})
        timer.statements.clear()
        for label, _, cookie, path in todo:
            timer.reset()
            b0 = backend_cpu_seconds(timer.backends)
            t0, p0, m0 = time.perf_counter(), time.process_time(), machine_busy_seconds()
            r = client.get(path, headers={"Cookie": f"{cookie_name}={cookie}"})
            wall, cpu = time.perf_counter() - t0, time.process_time() - p0
            machine[label] += machine_busy_seconds() - m0
            backend[label] += backend_cpu_seconds(timer.backends) - b0
            if r.status_code != 200:
                raise SystemExit(f"{path}: HTTP {r.status_code}")
            rows[label].append((wall * 1000, cpu * 1000, timer.seconds * 1000, timer.count, len(r.content)))
    print("| page | requests | median wall ms | median CPU ms (this process) | mean PostgreSQL backend CPU ms | "
          "mean machine CPU ms | median SQL ms | statements | HTML KB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, values in sorted(rows.items()):
        med = [statistics.median(v[i] for v in values) for i in range(5)]
        print(f"| {label} | {len(values)} | {med[0]:.1f} | {med[1]:.1f} | {backend[label] / len(values) * 1000:.0f} | "
              f"{machine[label] / len(values) * 1000:.0f} | "
              f"{med[2]:.1f} | {med[3]:.0f} | {med[4] / 1024:.0f} |")
    if args.slowest:
        print()
        for stmt, n in timer.misses.most_common(args.slowest):
            print(f"compiled {n}× {stmt}")
        print()
        worst = sorted(timer.statements.items(), key=lambda kv: -sum(kv[1]))[: args.slowest]
        for stmt, times in worst:
            print(f"{sum(times) * 1000:8.1f} ms {len(times):5d}× {stmt}")
