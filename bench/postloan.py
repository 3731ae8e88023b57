"""Collections (贷后催收) on PostgreSQL: allocation of N unassigned open cases by rules (default 50,000; target
< 10 s), and a collector's queue page over M open cases in all (default 500,000; target p95 < 300 ms).

The book is seeded in SQL (generate_series): customers, contracts and loans (their application and
disbursement foreign keys dropped, as ``bench.cob`` does), one open case per loan with a bucket, tier, amount and
region spread over the book; M − N cases already held by 60 collectors in three groups (junior, intermediate,
senior), N unassigned. Three rules route M1 low/medium risk to the juniors (balanced by count), M2 to the
intermediates (balanced by balance), M3/M3+ and high risk to the seniors. The allocation runs in one unit of
work, timed with its commit; then one `scrm serve` process serves a collector's queue (their own open cases,
longest overdue first) under load, logged in with a real session cookie.
"""

from __future__ import annotations

import argparse
import base64
import os
import time

from bench import harness
from bench.cob import _recreate

ALLOCATE_TARGET_SECONDS = 10.0
QUEUE_TARGET_P95_MS = 300.0
COLLECTORS = 60


def _seed(url: str, total: int, unassigned: int) -> tuple[list[int], int]:
    """Returns the collectors' staff ids and the id of a collector to log in as."""
    from sqlalchemy import text

    from core import db
    from core.db import unit_of_work
    from crm import org_service
    from crm.scope import Viewer
    from postloan import rules

    harness.migrate({"SCRM_DATABASE_URL": url})
    with unit_of_work() as s:
        company = org_service.create_department(s, "总公司", "company", None)
        manager = org_service.create_staff(s, org_service.StaffInput(
            username="manager", display_name="经理", role="manager", department_id=company.id))
        staff = [org_service.create_staff(s, org_service.StaffInput(
            username=f"collector{i}", display_name=f"催收{i}", role="collector", department_id=company.id,
            data_scope="own")) for i in range(COLLECTORS)]
        s.flush()
        boss = Viewer.of(manager)
        groups = [rules.save_group(s, boss, name=n, seniority=k) for n, k in (("初级组", 1), ("中级组", 2), ("资深组", 3))]
        for i, st in enumerate(staff):
            rules.set_member(s, boss, st.id, groups[i % 3].id)
        rules.save_rule(s, boss, name="高风险或长账龄", priority=10, buckets=["M3", "M3+"], group_id=groups[2].id)
        rules.save_rule(s, boss, name="高风险", priority=20, risk_tiers="high", group_id=groups[2].id)
        rules.save_rule(s, boss, name="M2", priority=30, buckets="M2", group_id=groups[1].id, balance_by="balance")
        rules.save_rule(s, boss, name="M1", priority=40, buckets="M1", group_id=groups[0].id, reassign_after_days=7)
        ids = [st.id for st in staff]
        sales_id = manager.id
    engine = db.make_engine(url)
    held = total - unassigned
    ids_sql = "ARRAY[" + ",".join(map(str, ids)) + "]"
    with engine.begin() as conn:
        for table, fk in (("lending_loan", "fk_lending_loan_application_id_lending_application"),
                          ("lending_loan", "fk_lending_loan_disbursement_id_lending_disbursement"),
                          ("lending_contract", "fk_lending_contract_application_id_lending_application"),
                          ("lending_contract", "fk_lending_contract_product_version_id_lending_product_version"),
                          ("lending_contract", "fk_lending_contract_funder_id_lending_funder")):
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {fk}"))
        steps = [
            ("customers", f"""INSERT INTO customer (id, name, name_initials, source, customer_type, stage, status,
                 owner_id, region, phone_masked, created_at, updated_at)
               SELECT g, '客户' || g, 'kh', 'bench', 'credit', 'repaying', 'owned', {sales_id},
                 (ARRAY['上海', '北京', '广州', '成都'])[1 + g % 4], '138****' || lpad((g % 10000)::text, 4, '0'),
                 now(), now()
               FROM generate_series(1, {total}) g"""),
            ("contracts", f"""INSERT INTO lending_contract (id, number, application_id, customer_id, product_version_id,
                 funder_id, status, principal_amount, term_months, annual_rate, parties, start_date, created_at)
               SELECT g, 'HT' || g, g, g, 1, 1, 'disbursed', 1200000, 6, 0.12, '{{}}', DATE '2026-06-01', now()
               FROM generate_series(1, {total}) g"""),
            ("loans", f"""INSERT INTO lending_loan (id, contract_id, application_id, customer_id, disbursement_id,
                 principal_amount, status, start_date, created_at, overdue_days, bucket)
               SELECT g, g, g, g, g, 1200000, 'active', DATE '2026-06-01', now(), 1 + g % 120,
                 CASE WHEN g % 120 < 30 THEN 'M1' WHEN g % 120 < 60 THEN 'M2' WHEN g % 120 < 90 THEN 'M3' ELSE 'M3+' END
               FROM generate_series(1, {total}) g"""),
            ("cases", f"""INSERT INTO postloan_case (loan_id, customer_id, status, opened_date, opened_at, bucket,
                 overdue_days, overdue_amount, outstanding_amount, risk_tier, region, collector_staff_id,
                 assigned_at, progress_at)
               SELECT l.id, l.id, 'open', DATE '2027-01-01', now(), l.bucket, l.overdue_days,
                 10000 + (l.id * 7919) % 2000000, 1200000, (ARRAY['low', 'low', 'medium', 'high'])[1 + l.id % 4],
                 (ARRAY['上海', '北京', '广州', '成都'])[1 + l.id % 4],
                 CASE WHEN l.id <= {held} THEN ({ids_sql})[1 + l.id % {COLLECTORS}] END,
                 CASE WHEN l.id <= {held} THEN now() END, now()
               FROM lending_loan l ORDER BY l.id"""),
            ("mirror", f"""UPDATE lending_loan l SET collector_staff_id = c.collector_staff_id
               FROM postloan_case c WHERE c.loan_id = l.id AND l.id <= {held}"""),
        ]
        for label, sql in steps:
            t0 = time.perf_counter()
            conn.execute(text(sql))
            print(f"  seeded {label} in {time.perf_counter() - t0:.1f} s", flush=True)
        for table in ("customer", "lending_contract", "lending_loan"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    db.dispose_engines()
    return ids, ids[0]


def _unassign(url: str, held: int) -> int:
    """The reused book as seeded: cases after ``held`` unassigned again, their assignment rows gone."""
    from sqlalchemy import text

    from core import db

    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE lending_collection_action DISABLE TRIGGER USER"))
        conn.execute(text("DELETE FROM lending_collection_action WHERE case_id > :h"), {"h": held})
        conn.execute(text("ALTER TABLE lending_collection_action ENABLE TRIGGER USER"))
        conn.execute(text("UPDATE postloan_case SET collector_staff_id = NULL, group_id = NULL, rule_id = NULL,"
                          " assigned_at = NULL WHERE id > :h"), {"h": held})
        conn.execute(text("UPDATE lending_loan SET collector_staff_id = NULL WHERE id > :h"), {"h": held})
        login_id = conn.execute(text("SELECT id FROM staff WHERE username = 'collector0'")).scalar_one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE postloan_case"))
    engine.dispose()
    return int(login_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench postloan")
    parser.add_argument("--database-url", required=True, help="postgresql+psycopg://…/NAME (dropped and recreated)")
    parser.add_argument("--cases", type=int, default=500_000, help="open cases in all")
    parser.add_argument("--allocate", type=int, default=50_000, help="of them unassigned, allocated by the rules")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the seeded book; take the last N cases off their collectors again (no reseeding)")
    args = parser.parse_args(argv)
    env = {"SCRM_DATABASE_URL": args.database_url, "SCRM_REDIS_URL": "",
           "SCRM_SECRET_KEY": os.environ.get("SCRM_SECRET_KEY") or "bench-secret"}
    if not os.environ.get("SCRM_PII_KEYS"):
        env["SCRM_PII_KEYS"] = "b1:" + base64.b64encode(os.urandom(32)).decode()
        env["SCRM_PII_ACTIVE_KEY_ID"] = "b1"
        env["SCRM_BLIND_INDEX_KEY"] = base64.b64encode(os.urandom(32)).decode()
    os.environ.update(env)
    from core.settings import get_settings, reset_settings_cache

    reset_settings_cache()
    from core import plugins

    plugins.load_models()
    plugins.load_tasks()
    name = args.database_url.rsplit("/", 1)[1]
    t0 = time.perf_counter()
    if args.reuse:
        login_id = _unassign(args.database_url, args.cases - args.allocate)
    else:
        print(f"seeding {args.cases:,} open cases ({args.allocate:,} unassigned) into {name} …", flush=True)
        _recreate(args.database_url, name)
        _, login_id = _seed(args.database_url, args.cases, args.allocate)
    seed_seconds = time.perf_counter() - t0

    from sqlalchemy import func, select

    from core.db import unit_of_work
    from crm import auth_service
    from crm.models import Staff
    from postloan import allocation
    from postloan.models import CollectionCase

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with unit_of_work() as s:
        the_plan = allocation.plan(s)
        planned = time.perf_counter() - t0
        moved = allocation.apply(s, the_plan)
    allocate_seconds = time.perf_counter() - t0
    with unit_of_work() as s:
        left = s.scalar(select(func.count()).select_from(CollectionCase).where(
            CollectionCase.status == "open", CollectionCase.collector_staff_id.is_(None)))
        per = sorted(n for _, n in s.execute(select(CollectionCase.collector_staff_id, func.count()).where(
            CollectionCase.status == "open").group_by(CollectionCase.collector_staff_id)))
        collector = s.get(Staff, login_id)
        mine = s.scalar(select(func.count()).select_from(CollectionCase).where(
            CollectionCase.collector_staff_id == login_id, CollectionCase.status == "open"))
        token, _ = auth_service.open_session(s, collector)
    print(f"allocation: {moved:,} cases in {allocate_seconds:.2f} s (plan {planned:.2f} s), {left} left", flush=True)

    load_mid = os.getloadavg()
    cookie = {get_settings().session_cookie_name: token}
    with harness.server(env) as base:
        first = harness.load("GET /console/collections/cases (collector, own queue)", f"{base}/console/collections/cases",
                             concurrency=args.concurrency, total=args.requests, cookies=cookie)
        deep = harness.load("GET /console/collections/cases?bucket=M2&page=20", f"{base}/console/collections/cases"
                            "?bucket=M2&page=20", concurrency=args.concurrency, total=args.requests // 2, cookies=cookie)
    if first.errors or deep.errors:
        raise SystemExit(f"errors on the queue page: {first.errors} / {deep.errors}")
    p95 = first.pct(95)
    lines = [
        f"- book: {args.cases:,} open cases, {args.allocate:,} of them unassigned; {COLLECTORS} collectors in 3 groups,"
        f" 4 rules ({'reused, reset' if args.reuse else 'seeded'} in {seed_seconds:.0f} s)",
        f"- allocation of {args.allocate:,} cases by the rules (plan + set-based apply + commit): "
        f"**{allocate_seconds:.2f} s** (plan {planned:.2f} s), target < {ALLOCATE_TARGET_SECONDS:.0f} s: "
        f"{'met' if allocate_seconds < ALLOCATE_TARGET_SECONDS else 'NOT met'}; {moved:,} assigned, {left} left "
        f"unassigned; open cases per collector after: min {per[0]:,}, max {per[-1]:,}",
        f"- a collector's queue page ({mine:,} own open cases among {args.cases:,}), "
        f"{args.concurrency} connections:",
        "", "| endpoint | requests | errors | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|",
        first.row(), deep.row(), "",
        f"- queue page p95: **{p95:.1f} ms** (page 20 of M2: {deep.pct(95):.1f} ms), target < "
        f"{QUEUE_TARGET_P95_MS:.0f} ms: {'met' if p95 < QUEUE_TARGET_P95_MS else 'NOT met'}",
        f"- load average (1/5/15 min) before the allocation {load_before[0]:.2f}/{load_before[1]:.2f}/"
        f"{load_before[2]:.2f}, before the page load {load_mid[0]:.2f}/{load_mid[1]:.2f}/{load_mid[2]:.2f}",
    ]
    print(harness.record("Collections: allocation and the collector's queue (PostgreSQL)",
                         f"flock /tmp/bench.lock .venv/bin/python -m bench postloan --database-url …/{name} "
                         f"--cases {args.cases} --allocate {args.allocate}" + (" --reuse" if args.reuse else ""), lines,
                         "one `scrm serve` process; load generator (httpx, asyncio) on the same machine; other "
                         "engineers' work shared the 2-core machine during the run."))
