"""Lead import end to end on PostgreSQL: a database already holding 1,000,000 customers, then a
100,000-row .csv (with duplicates inside the file, duplicates of existing customers, collisions
with other salespeople's customers and bad rows) imported with parsing, validation, dedup,
encryption and round-robin assignment; rows/s, and the ratio to a raw COPY of the same file into a
plain table.

    python -m bench imports --database-url postgresql+psycopg://postgres@127.0.0.1:5432/scrm_h_import_bench

The database's public schema is dropped and rebuilt. The 1M existing customers are generated in
Python with the same sealing and blind-index code the import uses (checked against core.pii in the
tests) and COPYed in; that setup is timed separately and not part of the figure.

``--reuse``: keep a data set an earlier run built (its keys are kept in the table ``bench_meta``):
new migrations are applied, what earlier imports wrote is deleted, and the import runs again.
``--worker-process``: prepare rows in a worker process (off by default), for comparison.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import csv
import io
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alembic.script import ScriptDirectory

from bench import harness

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强玉兰婷雪梅海燕红梅鹏辉波斌宇浩凯健俊帆帅旭宁龙林欣晨阳"
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "成都", "武汉", "南京", "苏州", "重庆"]
TYPES = ["信用贷", "房抵贷", "车抵贷", "经营贷"]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def id_number(n: int) -> str:
    """A valid, distinct resident ID number for every n < 14,600,000 (a birth date per 1,000)."""
    from datetime import date, timedelta

    born = date(1960, 1, 1) + timedelta(days=n // 1000)
    body = f"310101{born:%Y%m%d}{n % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def existing_phone(i: int) -> str:
    return f"13{i:09d}"


def new_phone(i: int) -> str:
    return f"15{i:09d}"


def build_existing(url: str, count: int, owned_every: int, sales_ids: list[int], pool_id: int) -> float:
    """COPY ``count`` customers (every ``owned_every``-th owned by a salesperson); returns seconds."""
    import psycopg

    from core import clock, pii
    from crm.importer.writer import Sealer, name_keys

    sealer = Sealer()
    rng = random.Random(1)
    now = clock.now()
    t0 = time.perf_counter()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    cols = ("name", "name_initials", "name_pinyin", "phone_enc", "phone_index", "phone_masked", "source", "region", "customer_type",
            "stage", "status", "owner_id", "pool_id", "assigned_at", "created_at", "updated_at", "stage_changed_at")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY customer ({', '.join(cols)}) FROM STDIN") as copy:
            for i in range(count):
                phone = existing_phone(i)
                nm = name(rng)
                owner = sales_ids[i % len(sales_ids)] if owned_every and i % owned_every == 0 else None
                copy.write_row((nm, *name_keys(nm), sealer.seal(pii.PHONE, phone), sealer.index(pii.PHONE, phone),
                                pii.mask_phone(phone), "seed", rng.choice(CITIES), "credit", "new",
                                "owned" if owner else "pool", owner, None if owner else pool_id,
                                now if owner else None, now, now, now))
        cur.execute("ANALYZE customer")
    return time.perf_counter() - t0


def write_csv(path: Path, rows: int, existing: int, owned_every: int, rng: random.Random) -> dict[str, int]:
    """The import file; returns how many rows of each kind it was built with."""
    plan = {"new": 0, "dup_in_file": 0, "dup_existing": 0, "collision": 0, "bad": 0}
    written_new: list[int] = []
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["客户姓名", "手机号码", "身份证号", "所在城市", "贷款金额(万元)", "期限", "贷款类型", "备注"])
        for r in range(rows):
            roll = rng.random()
            ident = ""
            if roll < 0.03 and written_new:
                phone, kind = new_phone(rng.choice(written_new)), "dup_in_file"
            elif roll < 0.06:
                i = rng.randrange(existing)
                if owned_every and i % owned_every == 0:
                    i += 1
                phone, kind = existing_phone(i), "dup_existing"
            elif roll < 0.065 and owned_every:
                phone, kind = existing_phone(rng.randrange(existing // owned_every) * owned_every), "collision"
            elif roll < 0.085:
                phone, kind = rng.choice(["1234", "2" * 11, "138abc", ""]), "bad"
            else:
                phone, kind = new_phone(r), "new"
                written_new.append(r)
                if rng.random() < 0.3:
                    ident = id_number(r)
            plan[kind] += 1
            w.writerow([name(rng), phone, ident, rng.choice(CITIES), rng.choice(["5", "10", "30.5", "100"]),
                        rng.choice(["12", "24个月", "3年"]), rng.choice(TYPES), ""])
    return plan


def raw_copy_seconds(url: str, path: Path) -> float:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_raw_import")
        cur.execute("CREATE TABLE bench_raw_import (name text, phone text, id_number text, city text, amount text, "
                    "term text, type text, note text)")
        conn.commit()
        t0 = time.perf_counter()
        with path.open("rb") as fh, cur.copy("COPY bench_raw_import FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - t0
        cur.execute("DROP TABLE bench_raw_import")
        conn.commit()
    return seconds


def backend_cpu_seconds(dsn: str) -> float:
    """CPU time of every other server process of this database (PostgreSQL runs on this machine)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()")]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _machine_busy() -> float:
    """CPU seconds all processes of the machine have spent busy so far (/proc/stat: all but idle, iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _read_meta(dsn: str) -> dict[str, str] | None:
    """What an earlier run recorded about its data set, if the set is still there and whole."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('public.bench_meta')").fetchone()[0] is None:
            return None
        meta = dict(conn.execute("SELECT key, value FROM bench_meta").fetchall())
        seeded = conn.execute("SELECT count(*) FROM customer WHERE source = 'seed'").fetchone()[0]
    return meta if meta and seeded == int(meta.get("existing", -1)) else None


def _tidy_versions(dsn: str) -> None:
    """Drop recorded versions that another recorded version already depends on (``depends_on``
    leaves both in alembic_version, and alembic then refuses a targeted upgrade as overlapping)."""
    import psycopg

    from core.cli import alembic_config

    script = ScriptDirectory.from_config(alembic_config())

    def ancestors(rev: str, seen: set[str]) -> set[str]:
        node = script.get_revision(rev)
        for parent in (node._all_down_revisions if node else ()):
            if parent not in seen:
                seen.add(parent)
                ancestors(parent, seen)
        return seen

    with psycopg.connect(dsn) as conn:
        current = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
        covered = set().union(*(ancestors(v, set()) for v in current)) if current else set()
        for version in current:
            if version in covered:
                conn.execute("DELETE FROM alembic_version WHERE version_num = %s", (version,))


def _write_meta(dsn: str, values: dict[str, object]) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        conn.execute("TRUNCATE bench_meta")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO bench_meta VALUES (%s, %s)", [(k, str(v)) for k, v in values.items()])


def _reset(dsn: str, existing: int) -> None:
    """Back to the seeded state: only the ``existing`` seeded customers, none of what imports wrote."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM customer_event")
        conn.execute("DELETE FROM customer_owner_change")
        conn.execute("DELETE FROM customer_collision")
        conn.execute("DELETE FROM staff_notification")
        conn.execute("DELETE FROM crm_import_job")
        conn.execute("DELETE FROM crm_allocation_cursor")
        conn.execute("DELETE FROM customer WHERE source <> 'seed'")
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("customer", "customer_event", "customer_owner_change", "customer_collision",
                      "staff_notification"):
            conn.execute(f"VACUUM ANALYZE {table}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench imports")
    parser.add_argument("--database-url", required=True, help="PostgreSQL; its public schema is rebuilt")
    parser.add_argument("--existing", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sales", type=int, default=20)
    parser.add_argument("--assign", default="round_robin", help="'' for no assignment")
    parser.add_argument("--profile", action="store_true", help="cProfile the import, print the top functions")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the existing customers an earlier run built (when intact), else rebuild")
    parser.add_argument("--worker-process", action="store_true",
                        help="prepare rows in a worker process (service.WORKER_PROCESS_ROWS), for comparison")
    parser.add_argument("--revision", default="heads",
                        help="with --reuse: the migration the kept schema is brought to")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("this benchmark needs PostgreSQL (--database-url postgresql+psycopg://…)")

    tmp = Path(tempfile.mkdtemp(prefix="scrm-bench-import-"))
    env = {"SCRM_DATABASE_URL": args.database_url, "SCRM_REDIS_URL": "", "SCRM_IMPORT_DIR": str(tmp / "reports"),
           "SCRM_LOG_LEVEL": "WARNING"}
    import psycopg

    dsn = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    owned_every = 50
    meta = _read_meta(dsn) if args.reuse else None
    if meta is not None and (int(meta["existing"]) != args.existing or int(meta["sales"]) != args.sales):
        meta = None
    if meta is not None:
        env["SCRM_PII_KEYS"], env["SCRM_BLIND_INDEX_KEY"] = meta["pii_keys"], meta["blind_index_key"]
    elif os.environ.get("SCRM_PII_KEYS"):
        env["SCRM_PII_KEYS"] = os.environ["SCRM_PII_KEYS"]
        env["SCRM_BLIND_INDEX_KEY"] = os.environ.get("SCRM_BLIND_INDEX_KEY", "")
    else:
        env["SCRM_PII_KEYS"] = "b1:" + base64.b64encode(os.urandom(32)).decode()
        env["SCRM_BLIND_INDEX_KEY"] = base64.b64encode(os.urandom(32)).decode()
    os.environ.update(env)

    from core import pii, plugins, tasks
    from core.db import unit_of_work
    from core.settings import reset_settings_cache
    from crm import customers, org_service

    reset_settings_cache()
    pii.reset_keyring_cache()
    if meta is None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
        harness.migrate(env)
    else:  # only what the customer tables need (other branches' revisions are not this data set's)
        _tidy_versions(dsn)
        subprocess.run([sys.executable, "-m", "core.cli", "db", "upgrade", args.revision],
                       env={**os.environ, **env}, cwd=harness.ROOT, check=True, stdout=subprocess.DEVNULL)
    plugins.load_models()
    plugins.load_tasks()
    tasks.set_runner(tasks.ManualRunner())  # notifications' push tasks are collected, not run

    if meta is not None:
        print("reusing the existing customers; deleting what earlier imports wrote …", flush=True)
        t0 = time.perf_counter()
        _reset(dsn, args.existing)
        print(f"  reset {time.perf_counter() - t0:.1f} s", flush=True)
        manager_id, setup_s = int(meta["manager_id"]), float(meta["setup_s"])
    else:
        with unit_of_work() as s:
            company = org_service.create_department(s, "总公司", "company", None)
            manager = org_service.create_staff(s, org_service.StaffInput(
                username="bench_manager", display_name="导入经理", role="manager", department_id=company.id))
            sales = [org_service.create_staff(s, org_service.StaffInput(
                username=f"bench_sales{i}", display_name=f"销售{i}", role="sales", department_id=company.id,
                capacity=100_000)).id for i in range(args.sales)]
            pool_id = customers.default_pool(s).id
            manager_id = manager.id

        print(f"building {args.existing:,} existing customers …", flush=True)
        setup_s = build_existing(args.database_url, args.existing, owned_every, sales, pool_id)
        print(f"  setup {setup_s:.1f} s", flush=True)
        _write_meta(dsn, {"existing": args.existing, "sales": args.sales, "manager_id": manager_id,
                          "setup_s": round(setup_s, 1), "pii_keys": env["SCRM_PII_KEYS"],
                          "blind_index_key": env["SCRM_BLIND_INDEX_KEY"]})

    path = tmp / "leads.csv"
    plan = write_csv(path, args.rows, args.existing, owned_every, random.Random(7))
    copy_s = raw_copy_seconds(args.database_url, path)

    from core.db import dispose_engines
    from crm.importer import service

    if args.worker_process:
        service.WORKER_PROCESS_ROWS = 1
    dispose_engines()  # the import's server processes start with no CPU time on them
    profiler = cProfile.Profile() if args.profile else None
    load_before = os.getloadavg()[0]
    busy_before = _machine_busy()
    cpu0 = time.process_time()
    child_cpu0 = os.times().children_user + os.times().children_system
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    result = service.import_file(path, source="bench", assign_mode=args.assign or None, created_by=manager_id)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - t0
    py_cpu = time.process_time() - cpu0
    children = os.times()
    worker_cpu = children.children_user + children.children_system - child_cpu0
    pg_cpu = backend_cpu_seconds(dsn)
    load_after = os.getloadavg()[0]
    others = max(0.0, _machine_busy() - busy_before - py_cpu - worker_cpu - pg_cpu)
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    c = result.counts
    if result.status != "done":  # a failed import is no figure
        raise SystemExit(f"the import did not finish: {result.status}: {result.message}")
    rate = args.rows / seconds
    lines = [
        f"- existing customers: {args.existing:,} (setup by COPY in {setup_s:.1f} s, not counted)",
        f"- file: {args.rows:,} rows .csv ({path.stat().st_size / 1e6:.1f} MB); built with {plan}",
        f"- result: status {result.status}, created {c['created']:,}, duplicates in file "
        f"{c['duplicates_in_file']:,}, existing {c['duplicates_existing']:,}, collisions {c['collisions']:,}, "
        f"errors {c['errors']:,}, assigned ({args.assign or 'none'}) {c['assigned']:,}",
        "",
        "| step | seconds | rows/s |",
        "|---|---|---|",
        f"| import end to end (parse, validate, dedup, encrypt, insert, assign, report) | {seconds:.2f} | {rate:,.0f} |",
        f"| raw PostgreSQL COPY of the same file into a plain text table | {copy_s:.2f} | {args.rows / copy_s:,.0f} |",
        "",
        f"- ratio import / raw COPY: {seconds / copy_s:.1f}× the time; target ≥ 20,000 rows/s end to end: "
        f"{'met' if rate >= 20_000 else 'NOT met'}",
        f"- CPU: Python {py_cpu:.1f} s ({py_cpu / args.rows * 1e6:.0f} µs/row, both threads) + worker process "
        f"{worker_cpu:.1f} s ({worker_cpu / args.rows * 1e6:.0f} µs/row), PostgreSQL server "
        f"processes {pg_cpu:.1f} s ({pg_cpu / args.rows * 1e6:.0f} µs/row); load average {load_before:.1f} → "
        f"{load_after:.1f} on {os.cpu_count()} cores; other work on the machine meanwhile: {others:.1f} CPU s "
        f"({others / seconds:.2f} cores)",
        f"- rows prepared (parse, validate, index, seal) "
        f"{'in a worker process' if args.worker_process else 'in the importing process'}; wall seconds by stage "
        "(reading thread: read = the file and, in the importing process, parse+validate+seal; prepare = waiting "
        "for the worker process; lookahead = the look-ahead thread: the next batch's lookup and ids on a "
        "connection of its own; wait = the reading thread blocked handing a batch on or waiting for the writer; writer thread: lookup = re-checking the rows found ahead, assign = planning owners, "
        "insert = the COPYs, duplicates = merges, collisions, notifications, commit): "
        + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()),
        f"- CPU-bound projection on an idle machine: ~{args.rows / max(py_cpu, pg_cpu, worker_cpu):,.0f} rows/s if "
        "each process had a core to itself (the busiest one limits); on 2 cores, with all "
        f"{(py_cpu + pg_cpu + worker_cpu) / args.rows * 1e6:.0f} µs/row shared: "
        f"~{args.rows * 2 / (py_cpu + pg_cpu + worker_cpu):,.0f} rows/s",
    ]
    print("\n".join(lines))
    if not args.no_record:
        harness.record("Lead import (scrm leads import)", "python -m bench imports --database-url <postgres>",
                       lines, notes=f"PostgreSQL, {args.sales} salespeople, manager imports (collisions counted)")
