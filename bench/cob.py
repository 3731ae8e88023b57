"""Nightly close of business (COB) over N active loans (default 1,000,000), a share of them overdue (default 5%),
on PostgreSQL; compared in the same run with a bare UPDATE over the same rows; a second run of the same
business date; a run killed at a random point and rerun, compared with the uninterrupted one.

The book is seeded in SQL (generate_series): customers, contracts, loans of 6 monthly bills each, due on
days spread over the month; every bill due before the business date is paid except, for the overdue share,
the latest one (1–30 days overdue). Applications and disbursements are not read by the COB: the bench drops
the loan table's foreign keys to them and fills the ids without the rows. Two databases of the same book:
``<db>`` runs uninterrupted, ``<db>_kill`` is killed and rerun (a copy made with CREATE DATABASE … TEMPLATE).
The children load the tasks modules as a worker does, so collections' hooks (``postloan``) run in the COB.

The end states are compared by a digest (:data:`FINGERPRINT`) of the tables the COB writes: loans, bills, reminders,
bucket audit entries, the interest accrual, collection cases and actions, and the steps recorded.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date

from bench import harness

BUSINESS_DATE = date(2027, 3, 15)
TARGET_SECONDS = 60.0


def _url(base: str, name: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + name


def _admin(base: str):  # noqa: ANN202 - an engine on the maintenance database
    from sqlalchemy import create_engine

    return create_engine(_url(base, "postgres"), isolation_level="AUTOCOMMIT")


def _recreate(base: str, name: str, template: str | None = None) -> None:
    from sqlalchemy import text

    engine = _admin(base)
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")))
    engine.dispose()


def _seed(url: str, loans: int, overdue_share: float) -> None:
    from sqlalchemy import text

    from core import db
    from core.db import unit_of_work
    from crm import org_service
    from lending import products

    harness.migrate({"SCRM_DATABASE_URL": url})
    with unit_of_work() as s:
        company = org_service.create_department(s, "总公司", "company", None)
        for i in range(20):
            org_service.create_staff(s, org_service.StaffInput(
                username=f"collector{i}", display_name=f"催收{i}", role="collector", department_id=company.id))
        sales = org_service.create_staff(s, org_service.StaffInput(
            username="sales0", display_name="销售", role="sales", department_id=company.id))
        funder = products.create_funder(s, name="压测银行")
        product = products.create_product(s, code="BENCH", name="压测产品", funder_id=funder.id,
                                          terms=products.ProductTerms(
                                              min_amount=100_000, max_amount=100_000_000, terms_months=[6],
                                              repayment_method="equal_principal", annual_rate="0.12",
                                              penalty_rate="0.0005"))
        version_id, funder_id, sales_id = product.current_version_id, funder.id, sales.id
    every = max(1, round(1 / overdue_share))
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for table, fk in (("lending_loan", "fk_lending_loan_application_id_lending_application"),
                          ("lending_loan", "fk_lending_loan_disbursement_id_lending_disbursement"),
                          ("lending_contract", "fk_lending_contract_application_id_lending_application")):
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {fk}"))
        steps = [
            ("customers", f"""INSERT INTO customer (id, name, name_initials, source, customer_type, stage, status,
                 owner_id, created_at, updated_at)
               SELECT g, '客户' || g, 'kh', 'bench', 'credit', 'repaying', 'owned', {sales_id}, now(), now()
               FROM generate_series(1, {loans}) g"""),
            ("contracts", f"""INSERT INTO lending_contract (id, number, application_id, customer_id, product_version_id,
                 funder_id, status, principal_amount, term_months, annual_rate, parties, start_date, created_at)
               SELECT g, 'HT' || g, g, g, {version_id}, {funder_id}, 'disbursed', 1200000, 6, 0.12, '{{}}',
                 DATE '{BUSINESS_DATE}' - 100 + (g % 60), now()
               FROM generate_series(1, {loans}) g"""),
            # start 40..99 days before the business date: two or three bills are due before it
            ("loans", f"""INSERT INTO lending_loan (id, contract_id, application_id, customer_id, disbursement_id,
                 principal_amount, status, start_date, created_at, overdue_days, bucket)
               SELECT g, g, g, g, g, 1200000, 'active', DATE '{BUSINESS_DATE}' - 100 + (g % 60), now(), 0, 'C'
               FROM generate_series(1, {loans}) g"""),
            ("installments", f"""INSERT INTO lending_loan_installment (loan_id, number, due_date, principal_amount,
                 interest_amount, fee_amount, paid_principal_amount, paid_interest_amount, paid_fee_amount, status,
                 penalty_amount, paid_penalty_amount)
               SELECT l.id, n, (l.start_date + make_interval(months => n))::date, 200000, 12000 - 2000 * (n - 1), 0,
                 CASE WHEN paid THEN 200000 ELSE 0 END, CASE WHEN paid THEN 12000 - 2000 * (n - 1) ELSE 0 END, 0,
                 CASE WHEN paid THEN 'paid' ELSE 'pending' END, 0, 0
               FROM lending_loan l, generate_series(1, 6) n,
                 LATERAL (SELECT (l.start_date + make_interval(months => n))::date < DATE '{BUSINESS_DATE}'
                   AND NOT (l.id % {every} = 0 AND (l.start_date + make_interval(months => n + 1))::date
                            >= DATE '{BUSINESS_DATE}') AS paid) p"""),
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
    db.dispose_engines()  # no connection may stay on the database copied as a template


FINGERPRINT = {
    "loans": "SELECT md5(string_agg(id || ':' || bucket || ':' || overdue_days || ':' || COALESCE(rolled_over_date::text, '')"
             " || ':' || COALESCE(collector_staff_id::text, ''), ',' ORDER BY id)) FROM lending_loan",
    "bills": "SELECT md5(string_agg(id || ':' || status || ':' || penalty_amount || ':' ||"
             " COALESCE(penalty_through_date::text, ''), ',' ORDER BY id)) FROM lending_loan_installment",
    "reminders": "SELECT count(*) || ':' || md5(string_agg(installment_id || ':' || offset_days || ':' || audience || ':'"
                 " || status, ',' ORDER BY installment_id, offset_days, audience)) FROM lending_reminder",
    "audit": "SELECT count(*) || ':' || md5(string_agg(entity_id || (after::text), ',' ORDER BY entity_id))"
             " FROM audit_log WHERE action = 'lending.loan.bucket'",
    "assignments": "SELECT count(*) || ':' || md5(string_agg(loan_id || note, ',' ORDER BY loan_id))"
                   " FROM lending_collection_action WHERE kind = 'assign'",
    "accrual": "SELECT string_agg(business_date || ':' || product_version_id || ':' || loans || ':' || accrued_amount,"
               " ',' ORDER BY business_date, product_version_id) FROM lending_interest_accrual",
    # by loan, never by a row id: a killed run's rolled-back inserts used sequence numbers the rerun does not get
    "cases": "SELECT count(*) || ':' || md5(string_agg(loan_id || ':' || status || ':' || bucket || ':' || overdue_days"
             " || ':' || overdue_amount || ':' || outstanding_amount || ':' || COALESCE(collector_staff_id::text, '')"
             " || ':' || opened_date || ':' || COALESCE(close_reason, ''), ',' ORDER BY loan_id, opened_date))"
             " FROM postloan_case",
    "actions": "SELECT count(*) || ':' || md5(string_agg(loan_id || ':' || kind || ':' || COALESCE(note, '') || ':'"
               " || COALESCE(bucket, '') || ':' || COALESCE(overdue_days::text, ''), ',' ORDER BY loan_id, kind, note))"
               " FROM lending_collection_action",
    "steps": "SELECT string_agg(step || '=' || rows, ',' ORDER BY step) FROM lending_cob_step",
}


def fingerprint(url: str) -> dict[str, str]:
    from sqlalchemy import text

    from core import db

    engine = db.make_engine(url)
    with engine.connect() as conn:
        out = {k: str(conn.execute(text(sql)).scalar()) for k, sql in FINGERPRINT.items()}
    engine.dispose()
    return out


def _step_times(url: str) -> str:
    from sqlalchemy import text

    from core import db

    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT step, EXTRACT(EPOCH FROM done_at - started_at) FROM lending_cob_step"
                                 " ORDER BY started_at")).all()
    engine.dispose()
    return ", ".join(f"{step} {float(seconds):.1f}" for step, seconds in rows)


def _bare_update(url: str) -> float:
    """The same rows as the COB changes, written once with a bare UPDATE each (in a transaction rolled back)."""
    from sqlalchemy import text

    from core import db

    engine = db.make_engine(url)
    d = f"DATE '{BUSINESS_DATE}'"
    with engine.connect() as conn:
        t0 = time.perf_counter()
        with conn.begin() as tx:
            conn.execute(text(f"""UPDATE lending_loan SET rolled_over_date = {d} WHERE status = 'active' AND id IN
                (SELECT loan_id FROM lending_loan_installment WHERE status <> 'paid' AND due_date < {d})"""))
            conn.execute(text(f"""UPDATE lending_loan_installment SET penalty_through_date = {d}, penalty_amount = 1
                WHERE loan_id IN (SELECT id FROM lending_loan WHERE rolled_over_date = {d})"""))
            conn.execute(text(f"UPDATE lending_loan SET bucket = 'M1', overdue_days = 1 WHERE rolled_over_date = {d}"))
            seconds = time.perf_counter() - t0
            tx.rollback()
    engine.dispose()
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench cob")
    parser.add_argument("--database-url", required=True,
                        help="postgresql+psycopg://…/NAME: NAME and NAME_kill are dropped and recreated")
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--overdue", type=float, default=0.05)
    parser.add_argument("--run-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.update({"SCRM_DATABASE_URL": args.database_url, "SCRM_REDIS_URL": ""})
    from core.settings import reset_settings_cache

    reset_settings_cache()
    from core import plugins

    plugins.load_models()
    plugins.load_tasks()  # as in a worker: collections' hooks join the COB (postloan.tasks registers them)
    if args.run_only:
        from lending.servicing import cob

        print("START", flush=True)  # the business date is explicit; the clock stays real (step timings)
        t0 = time.perf_counter()
        steps = cob.run_date(BUSINESS_DATE)
        print(f"{time.perf_counter() - t0:.2f} {steps}", flush=True)
        return

    name = args.database_url.rsplit("/", 1)[1]
    print(f"seeding {args.loans:,} loans ({args.overdue:.0%} overdue) into {name} …", flush=True)
    _recreate(args.database_url, name)
    t0 = time.perf_counter()
    _seed(args.database_url, args.loans, args.overdue)
    seed_seconds = time.perf_counter() - t0
    _recreate(args.database_url, f"{name}_kill", template=name)
    kill_url = _url(args.database_url, f"{name}_kill")

    load_before = os.getloadavg()
    bare = _bare_update(args.database_url)
    child = [sys.executable, "-m", "bench", "cob", "--database-url", args.database_url, "--run-only"]

    def timed(cmd: list[str]) -> tuple[float, str]:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split("START", 1)[1].strip()
        seconds, steps = out.split(" ", 1)
        return float(seconds), steps

    print(f"bare UPDATE over the same rows: {bare:.2f} s", flush=True)
    cob_seconds, first = timed(child)
    after_first = fingerprint(args.database_url)
    step_times = _step_times(args.database_url)
    print(f"COB: {cob_seconds:.2f} s, rows {first}, seconds per step {step_times}", flush=True)
    second_seconds, second = timed(child)
    after_second = fingerprint(args.database_url)
    print(f"second run: {second_seconds:.2f} s, {second}, unchanged: {after_first == after_second}", flush=True)

    kill_at = random.uniform(0.05, cob_seconds * 0.95)  # after the child has started the COB itself
    killed_child = [*child[:5], kill_url, "--run-only"]
    proc = subprocess.Popen(killed_child, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # log lines may come first
        if line.strip() == "START":
            break
    time.sleep(kill_at)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_kill = fingerprint(kill_url)["steps"]
    timed(killed_child)
    after_kill = fingerprint(kill_url)

    load_after = os.getloadavg()
    same_second = after_first == after_second
    same_kill = after_first == after_kill
    lines = [
        f"- book: {args.loans:,} active loans × 6 bills, {args.overdue:.0%} overdue (seeded in {seed_seconds:.0f} s)",
        f"- COB of {BUSINESS_DATE}: **{cob_seconds:.1f} s** (target < {TARGET_SECONDS:.0f} s); rows per step: "
        f"{first}; seconds per step: {step_times}",
        f"- bare UPDATE over the same rows (claim, bills, loans; rolled back): {bare:.1f} s",
        f"- second run of the same date: {second_seconds:.2f} s, steps run: {second}; "
        f"end state unchanged: {'yes' if same_second else 'NO'}",
        f"- killed at {kill_at:.1f} s (steps recorded then: {done_before_kill}), rerun: end state equals the "
        f"uninterrupted run: {'yes' if same_kill else 'NO'}",
        f"- fingerprint: {after_first['steps']}",
        f"- load average (1/5/15 min, 2 cores): {' '.join(f'{x:.2f}' for x in load_before)} before the bare UPDATE,"
        f" {' '.join(f'{x:.2f}' for x in load_after)} after the killed run's rerun",
    ]
    print(harness.record("COB (close of business)", "flock /tmp/bench.lock .venv/bin/python -m bench cob "
                         f"--database-url …/{name} --loans {args.loans}", lines,
                         "Other engineers' work shared the 2-core machine during the run."))
    if not (same_second and same_kill):
        print("MISMATCH", after_first, after_second, after_kill, file=sys.stderr)
        raise SystemExit(1)
