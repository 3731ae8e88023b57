"""The finance center at scale (PostgreSQL): 100,000 agreements with their settlements and 1,000,000 ledger
lines; the settlement list and the finance performance report (p95 of repeated calls through the service
functions the console and the API call), ``scrm finance check`` over the whole ledger, and the streamed
settlement export of 100,000 rows (time, and peak Python memory at 10,000 vs 100,000 rows to show it is flat).

The data set is built in SQL (generate_series). The ledger's balance and period triggers are disabled during
the bulk load only (a bench load, not a business path) and the account balances are then set from the lines,
so the check has a consistent ledger to verify; the earlier months are closed through the real period close.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from datetime import date, timedelta

from bench import harness

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/scrm_h_finance_bench"
STAFF = 200
TEAMS = 10


def build(url: str, agreements: int, entries: int) -> dict[str, float]:
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
        conn.execute(text(f"INSERT INTO staff (id, username, display_name, role, data_scope, department_id, "
                          f"capacity, level, status, failed_logins, created_at) VALUES "
                          f"({STAFF + 1}, 'finance', '财务', 'finance', 'all', 1, 0, 1, 'active', 0, now()), "
                          f"({STAFF + 2}, 'manager', '经理', 'manager', 'all', 1, 0, 1, 'active', 0, now())"))
        for table in ("department", "staff"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        conn.execute(text(f"""
            INSERT INTO customer (name, name_initials, source, customer_type, status, owner_id, assigned_at,
                                  created_at, updated_at, stage, stage_changed_at)
            SELECT '客户' || g, 'kh', '导入', 'credit', 'owned', 1 + (g % {STAFF}), now(), now(), now(), 'signed',
                   now()
            FROM generate_series(1, {agreements}) g"""))
        # Agreements signed over the last year; a settlement for every one (pending / charged / settled).
        conn.execute(text(f"""
            INSERT INTO finance_agreement (number, customer_id, sales_staff_id, case_officer_id, signed_date, status,
                version, loan_amount, term_months, funder_annual_rate, repayment_method, funder_fee_amount,
                service_fee_rate, service_fee_fixed_amount, deposit_amount, other_fees_amount, apr_rate, created_at)
            SELECT 'FA' || lpad(g::text, 10, '0'), g, 1 + (g % {STAFF}), 1 + ((g + 7) % {STAFF}),
                   current_date - (random() * 365)::int,
                   CASE WHEN g % 10 < 4 THEN 'settled' ELSE 'disbursed' END, 1,
                   (10 + (random() * 90)::int) * 1000000, 36, 0.06, 'equal_installment', 0, 0.03, 0, 200000, 0,
                   0.085, now()
            FROM generate_series(1, {agreements}) g"""))
        conn.execute(text("""
            INSERT INTO finance_settlement (agreement_id, source, funder_name, funder_type, disbursed_amount,
                disbursed_date, status, revision, service_fee_amount, discount_kind, discount_amount,
                installment_fee_amount, extra_fees_amount, loan_repaid_amount, deposit_applied_amount,
                total_due_amount, rebate_amount, fee_refunded_amount, settled_at, created_at)
            SELECT a.id, 'manual', '资方' || (a.id % 20),
                   (ARRAY['bank', 'consumer_finance', 'guarantee', 'microloan'])[1 + a.id % 4],
                   a.loan_amount, a.signed_date + 5,
                   CASE WHEN a.status = 'settled' THEN 'settled' WHEN a.id % 10 < 7 THEN 'charged' ELSE 'pending' END,
                   1, a.loan_amount * 3 / 100, 'none', 0, 0, 0, 0, 200000, a.loan_amount * 3 / 100 - 200000, 0, 0,
                   CASE WHEN a.status = 'settled' THEN (a.signed_date + 7)::timestamp AT TIME ZONE 'Asia/Shanghai' END,
                   now()
            FROM finance_agreement a"""))
        timings["agreements_settlements"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # Two-line entries over the last 12 months: cash in against deposits held or fee revenue.
        conn.execute(text("ALTER TABLE finance_journal_entry DISABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE finance_journal_line DISABLE TRIGGER USER"))
        conn.execute(text(f"""
            INSERT INTO finance_journal_entry (id, entry_date, period_month, total_amount, memo, source_type,
                source_id, source_key, created_at)
            SELECT g, d, date_trunc('month', d)::date, 10000 + (g % 5000) * 100, '压测', 'bench', g, 'bench:' || g,
                   now()
            FROM (SELECT g, current_date - (random() * 360)::int AS d FROM generate_series(1, {entries}) g) x"""))
        conn.execute(text("SELECT setval(pg_get_serial_sequence('finance_journal_entry', 'id'), "
                          "(SELECT max(id) FROM finance_journal_entry))"))
        conn.execute(text("""
            INSERT INTO finance_journal_line (entry_id, account_id, debit_amount, credit_amount)
            SELECT e.id, (SELECT id FROM finance_account WHERE code =
                          (ARRAY['cash', 'bank', 'alipay', 'wechat'])[1 + e.id % 4]), e.total_amount, 0
            FROM finance_journal_entry e
            UNION ALL
            SELECT e.id, (SELECT id FROM finance_account WHERE code =
                          CASE WHEN e.id % 2 = 0 THEN 'deposits_held' ELSE 'fee_revenue' END), 0, e.total_amount
            FROM finance_journal_entry e"""))
        conn.execute(text("ALTER TABLE finance_journal_entry ENABLE TRIGGER USER"))
        conn.execute(text("ALTER TABLE finance_journal_line ENABLE TRIGGER USER"))
        conn.execute(text("""
            UPDATE finance_account a SET balance_amount = coalesce(
                (SELECT sum(debit_amount - credit_amount) FROM finance_journal_line l WHERE l.account_id = a.id), 0)"""))
        timings["ledger"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    timings["vacuum_analyze"] = time.perf_counter() - t0
    engine.dispose()
    return timings


def _p(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(q / 100 * (len(data) - 1))))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench finance")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="a PostgreSQL database of its own (rebuilt)")
    parser.add_argument("--agreements", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=500_000, help="two lines each")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the existing data set")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("this benchmark needs PostgreSQL")
    os.environ["SCRM_DATABASE_URL"] = args.database_url
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from core import clock, db, plugins
    from crm.models import Staff
    from crm.scope import Viewer
    from finance import export, ledger, performance, settlements
    from finance.models import JournalLine

    plugins.load_models()
    timings = {} if args.reuse else build(args.database_url, args.agreements, args.entries)
    engine = db.get_engine(args.database_url)
    lines: list[str] = []
    with Session(engine) as session:
        n_lines = session.scalar(select(func.count()).select_from(JournalLine))
        fin = Viewer.of(session.scalar(select(Staff).where(Staff.username == "finance")))
        sales = Viewer.of(session.scalar(select(Staff).where(Staff.username == "sales7")))
        if not args.reuse:  # close the months before the last three, through the real period close
            t0 = time.perf_counter()
            for month in ledger.open_months(session)[:-3]:
                ledger.close_period(session, month, viewer=None)
            session.commit()
            timings["close_months"] = time.perf_counter() - t0

        def timed(fn) -> list[float]:  # noqa: ANN001
            out = []
            for i in range(args.runs):
                t = time.perf_counter()
                fn(i)
                out.append((time.perf_counter() - t) * 1000)
                session.rollback()
            return out

        today = clock.today()
        cases = {
            "settlement list, finance, page 1..30": lambda i: settlements.list_settlements(
                session, fin, limit=50, offset=50 * i),
            "settlement list, finance, status=charged + funder_type=bank": lambda i: settlements.list_settlements(
                session, fin, status="charged", funder_type="bank", limit=50, offset=50 * (i % 5)),
            "settlement list, one salesperson (own scope)": lambda i: settlements.list_settlements(
                session, sales, limit=50, offset=0),
            "finance performance, finance, last 90 days": lambda i: performance.report(
                session, fin, since=today - timedelta(days=90), until=today),
            "finance performance, finance, whole year": lambda i: performance.report(
                session, fin, since=today - timedelta(days=365), until=today),
        }
        load_start = os.getloadavg()
        lines.append(f"Data: {args.agreements:,} agreements and settlements, {n_lines:,} ledger lines; "
                     f"build {', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}.")
        lines.append("")
        lines.append("| measure | runs | median ms | p95 ms |")
        lines.append("|---|---|---|---|")
        for label, fn in cases.items():
            ms = timed(fn)
            lines.append(f"| {label} | {len(ms)} | {statistics.median(ms):.1f} | {_p(ms, 95):.1f} |")
        t = time.perf_counter()
        result = ledger.run_check(session)
        check_s = time.perf_counter() - t
        session.rollback()
        lines.append(f"| finance check over {result.lines:,} lines ({result.closed_months} closed months), "
                     f"ok={result.ok} | 1 | {check_s * 1000:.0f} | — |")
        path = "/tmp/bench_finance_export.xlsx"
        t = time.perf_counter()
        rows = export.export_settlements(session, fin, path)
        export_s = time.perf_counter() - t
        session.rollback()
        lines.append(f"| settlement export, {rows:,} rows ({os.path.getsize(path) / 1e6:.1f} MB) | 1 | "
                     f"{export_s * 1000:.0f} | — |")
        peaks = []
        for limit in (10_000, rows):
            tracemalloc.start()
            export.write_xlsx(path, "x", export.HEADERS, _limited(export.settlement_rows(session, fin), limit))
            peaks.append((limit, tracemalloc.get_traced_memory()[1] / 1e6))
            tracemalloc.stop()
            session.rollback()
        load_end = os.getloadavg()
        lines.append("")
        lines.append(f"Load average (1/5/15 min, {os.cpu_count()} cores): {' / '.join(f'{x:.1f}' for x in load_start)} "
                     f"when the measurements started, {' / '.join(f'{x:.1f}' for x in load_end)} at the end.")
        lines.append("Export peak Python memory (tracemalloc): " + ", ".join(
            f"{limit:,} rows {peak:.1f} MB" for limit, peak in peaks))
    print("\n".join(lines))
    if not args.no_record:
        harness.record("Finance center: settlement list, performance, ledger check, export",
                       "flock /tmp/bench.lock .venv/bin/python -m bench finance", lines,
                       notes=f"date {date.today()}; PostgreSQL 127.0.0.1 shared with seven other engineers' "
                             "work on the same 2-core machine (their tests and benchmarks ran at the same time); "
                             "service-level calls in one process, no HTTP")


def _limited(rows, limit: int):  # noqa: ANN001, ANN202
    for i, row in enumerate(rows):
        if i >= limit:
            return
        yield row
