"""Segment counts on a million customers (PostgreSQL): a three-condition rule compiled by
crm.segments, timed as the system (all data) and as one salesperson (own scope).

The data set is built in SQL (generate_series), not through the service, so that a million rows
take seconds: realistic skews of region, grade, stage, type, source, amount and dates, 200 sales
in 10 teams, and 1–3 tags on about 30% of customers (popular tags far more common than rare ones).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench import harness

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/scrm_h_tags_bench"
TAGS = 50
STAFF = 200
TEAMS = 10

# Weighted picks in SQL: the value whose cumulative weight first exceeds a uniform draw.
REGIONS = [("上海", 15), ("北京", 12), ("广州", 10), ("深圳", 10), ("杭州", 8), ("成都", 8), ("武汉", 7),
           ("南京", 7), ("重庆", 6), ("西安", 6), ("苏州", 6), ("天津", 5)]
GRADES = [("A", 10), ("B", 25), ("C", 35), ("D", 20), (None, 10)]
STAGES = [("new", 30), ("contacted", 25), ("intent", 15), ("visited", 8), ("applied", 6), ("approved", 3),
          ("signed", 2), ("disbursed", 2), ("repaying", 3), ("closed", 2), ("lost", 4)]
TYPES = [("credit", 45), ("mortgage", 20), ("car", 15), ("business", 15), ("other", 5)]
SOURCES = [("抖音", 30), ("百度", 20), ("转介绍", 15), ("导入", 20), ("小程序", 10), ("地推", 5)]


def _pick(pairs: list[tuple[str | None, int]], draw: str) -> str:
    total = sum(w for _, w in pairs)
    parts, acc = [], 0
    for value, weight in pairs[:-1]:
        acc += weight
        literal = "NULL" if value is None else f"'{value}'"
        parts.append(f"WHEN {draw} < {acc / total:.4f} THEN {literal}")
    last = pairs[-1][0]
    return f"CASE {' '.join(parts)} ELSE {'NULL' if last is None else repr(last)} END"


def build(url: str, n: int, tag_share: float) -> dict[str, float]:
    """Drop and rebuild the schema, load ``n`` customers; returns seconds per step."""
    from sqlalchemy import text

    from core import db

    timings: dict[str, float] = {}
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    t0 = time.perf_counter()
    harness.migrate({"SCRM_DATABASE_URL": url})
    timings["migrate"] = time.perf_counter() - t0
    engine = db.make_engine(url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(text("INSERT INTO department (id, name, kind, parent_id, path, created_at) "
                          "VALUES (1, '总公司', 'company', NULL, '/1/', now())"))
        conn.execute(text(f"INSERT INTO department (id, name, kind, parent_id, path, created_at) "
                          f"SELECT g + 1, '销售' || g || '组', 'team', 1, '/1/' || (g + 1) || '/', now() "
                          f"FROM generate_series(1, {TEAMS}) g"))
        conn.execute(text(f"INSERT INTO staff (id, username, display_name, role, data_scope, department_id, "
                          f"capacity, level, status, failed_logins, created_at) "
                          f"SELECT g, 'sales' || g, '销售' || g, 'sales', 'own', 2 + (g % {TEAMS}), 100000, 1, "
                          f"'active', 0, now() FROM generate_series(1, {STAFF}) g"))
        conn.execute(text("INSERT INTO crm_pool (id, name, is_default, created_at) VALUES (1, '公共公海', true, now())"))
        conn.execute(text("INSERT INTO crm_tag_group (id, name, sort, created_at) VALUES (1, '画像', 0, now())"))
        conn.execute(text(f"INSERT INTO crm_tag (id, group_id, name, sort, created_at) "
                          f"SELECT g, 1, '标签' || g, g, now() FROM generate_series(1, {TAGS}) g"))
        for table in ("department", "staff", "crm_pool", "crm_tag_group", "crm_tag"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        # status: 70% owned, 28% pool, 2% blacklist; r[] holds independent uniform draws per row.
        conn.execute(text(f"""
            INSERT INTO customer (name, name_initials, source, region, customer_type, demand_amount, grade, stage,
                                  status, owner_id, pool_id, assigned_at, last_followup_at, next_followup_at,
                                  created_at, updated_at, stage_changed_at)
            SELECT '客户' || g, 'kh', {_pick(SOURCES, 'r[1]')}, {_pick(REGIONS, 'r[2]')}, {_pick(TYPES, 'r[3]')},
                   CASE WHEN r[4] < 0.15 THEN NULL
                        ELSE (round(exp(ln(20000) + r[5] * ln(250)) / 1000) * 1000 * 100)::bigint END,
                   {_pick(GRADES, 'r[6]')}, {_pick(STAGES, 'r[7]')},
                   st, CASE WHEN st = 'owned' THEN 1 + (g % {STAFF}) END, CASE WHEN st = 'pool' THEN 1 END,
                   CASE WHEN st = 'owned' THEN created + (now() - created) * r[8] END,
                   CASE WHEN r[9] < 0.6 THEN created + (now() - created) * r[10] END,
                   CASE WHEN st = 'owned' AND r[11] < 0.5 THEN now() + r[12] * interval '30 days' END,
                   created, created, created
            FROM (
                SELECT g, r, now() - r[13] * interval '730 days' AS created,
                       CASE WHEN r[14] < 0.70 THEN 'owned' WHEN r[14] < 0.98 THEN 'pool' ELSE 'blacklist' END AS st
                FROM (SELECT g, ARRAY(SELECT random() FROM generate_series(1, 14) WHERE g > 0) AS r
                      FROM generate_series(1, {n}) g) draws
            ) rows
        """))
    timings["customers"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.begin() as conn:
        # ~tag_share of customers carry 1-3 tags; pow(random, 2) skews towards the low (popular) tag ids.
        conn.execute(text(f"""
            INSERT INTO customer_tag (customer_id, tag_id, added_at)
            SELECT c.id, 1 + floor(pow(random(), 2) * {TAGS})::int, c.created_at
            FROM customer c, generate_series(1, 3) k
            WHERE (hashtext(c.id::text) & 1023) < {int(tag_share * 1024)}
              AND (k = 1 OR random() < CASE k WHEN 2 THEN 0.5 ELSE 0.2 END)
            ON CONFLICT DO NOTHING
        """))
    timings["customer_tag"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    timings["vacuum_analyze"] = time.perf_counter() - t0
    engine.dispose()
    return timings


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(q / 100 * (len(data) - 1))))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench segments")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="a PostgreSQL database of its own (rebuilt)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--tag-share", type=float, default=0.30)
    parser.add_argument("--tag", type=int, default=10, help="tag id of the rule (1 = most popular)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep the existing data set")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("this benchmark needs PostgreSQL")
    os.environ["SCRM_DATABASE_URL"] = args.database_url

    from sqlalchemy import func, select, text
    from sqlalchemy.orm import Session

    from core import db, plugins
    from core.settings import reset_settings_cache
    from crm import segments
    from crm.models import Customer, CustomerTag
    from crm.scope import Viewer

    reset_settings_cache()
    plugins.load_models()
    timings = {} if args.reuse else build(args.database_url, args.customers, args.tag_share)

    rule = {"op": "and", "rules": [
        {"field": "tags", "cmp": "has_any", "value": [args.tag]},
        {"field": "grade", "cmp": "in", "value": ["A", "B"]},
        {"field": "region", "cmp": "equals", "value": "上海"},
    ]}
    engine = db.make_engine(args.database_url)
    sales = Viewer(staff_id=7, role="sales", scope="own", department_id=2 + 7 % TEAMS,
                   department_path=f"/1/{2 + 7 % TEAMS}/", display_name="销售7")
    manager = Viewer(staff_id=1, role="manager", scope="department", department_id=1, department_path="/1/",
                     display_name="经理")
    results: dict[str, tuple[int, list[float]]] = {}
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Customer))
        tagged = session.scalar(select(func.count(func.distinct(CustomerTag.customer_id))))
        with_tag = session.scalar(select(func.count()).where(CustomerTag.tag_id == args.tag))
        tree = segments.parse_rule(rule, session)
        for label, viewer in (("system (all customers)", None), ("manager, department scope", manager),
                              ("salesperson, own scope", sales)):
            for _ in range(2):  # warm the cache
                segments.count(session, tree, viewer)
            times, n = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                n = segments.count(session, tree, viewer)
                times.append((time.perf_counter() - t0) * 1000)
            results[label] = (n, times)
        stmt = select(func.count()).select_from(Customer).where(segments.condition(tree, None))
        compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
        plan = [r[0] for r in session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) {compiled}"))]

    target = 200.0
    lines = [
        f"Data: {total:,} customers, {tagged:,} carry tags ({tagged / total:.0%}), tag {args.tag} on {with_tag:,}. "
        f"Rule: tag {args.tag} AND grade in (A, B) AND region = 上海, compiled by crm.segments; "
        f"{args.runs} timed runs after 2 warm-up runs, each one `SELECT count(*)` round trip.",
        "",
        "| viewer | members | median ms | p95 ms | max ms | target < 200 ms |",
        "|---|---|---|---|---|---|",
    ]
    for label, (n, times) in results.items():
        p95 = pct(times, 95)
        lines.append(f"| {label} | {n:,} | {statistics.median(times):.1f} | {p95:.1f} | {max(times):.1f} | "
                     f"{'met' if p95 < target else 'NOT met'} |")
    if timings:
        lines += ["", "Build: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + "."]
    lines += ["", "Plan of the system count (EXPLAIN ANALYZE, timing off):", "", "```", *plan, "```"]
    print("\n".join(lines))
    if not args.no_record:
        harness.record("Segment count on 1M customers (PostgreSQL)",
                       f"python -m bench segments --customers {args.customers} --runs {args.runs}", lines)
