"""Handover execution time: one salesperson with N customers (half WeCom contacts) handed over
to one successor, and evenly across a team of 10; the timed part is ``execute_case`` + commit."""

from __future__ import annotations

import argparse
import base64
import os
import time

from bench import harness

TARGET_SECONDS = 2.0


def _env(url: str) -> dict[str, str]:
    env = {"SCRM_DATABASE_URL": url, "SCRM_REDIS_URL": ""}
    env["SCRM_SECRET_KEY"] = os.environ.get("SCRM_SECRET_KEY") or "bench-secret"
    if not os.environ.get("SCRM_PII_KEYS"):
        env["SCRM_PII_KEYS"] = "b1:" + base64.b64encode(os.urandom(32)).decode()
        env["SCRM_PII_ACTIVE_KEY_ID"] = "b1"
        env["SCRM_BLIND_INDEX_KEY"] = base64.b64encode(os.urandom(32)).decode()
    return env


def _reset_schema(url: str) -> None:
    from sqlalchemy import text

    from core import db

    if url.startswith("postgresql"):
        engine = db.make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def _seed_leaver(round_no: int, team_dept_id: int, company_id: int, customers: int, label: str) -> int:
    """A salesperson (with a WeCom account) owning ``customers`` customers, half of them WeCom contacts."""
    from sqlalchemy import insert

    from core import clock
    from core.db import unit_of_work
    from crm import org_service
    from crm.models import Customer

    with unit_of_work() as s:
        leaver = org_service.create_staff(s, org_service.StaffInput(
            username=f"leaver_{label}_{round_no}", display_name=f"离职销售{label}{round_no}", role="sales",
            department_id=team_dept_id, wecom_userid=f"Leaver{label}{round_no}", capacity=100_000))
        now = clock.now()
        rows = [{
            "name": f"客户{i}", "name_initials": "kh", "source": "bench", "customer_type": "credit", "stage": "new",
            "status": "owned", "owner_id": leaver.id, "assigned_at": now, "created_at": now, "updated_at": now,
            "wecom_external_userid": f"wm{label}{round_no}_{i}" if i % 2 == 0 else None,
        } for i in range(customers)]
        for start in range(0, len(rows), 2000):
            s.execute(insert(Customer), rows[start:start + 2000])
        return leaver.id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench handover")
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database of its own (schema is reset)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--team", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    os.environ.update(_env(args.database_url))
    from core.settings import reset_settings_cache

    reset_settings_cache()
    from core import pii, plugins

    pii.reset_keyring_cache()
    _reset_schema(args.database_url)
    harness.migrate({"SCRM_DATABASE_URL": args.database_url})
    plugins.load_models()

    from core.db import unit_of_work
    from crm import handover, handover_flows, org_service
    from crm.handover import Plan
    from crm.scope import Viewer

    with unit_of_work() as s:
        company = org_service.create_department(s, "总公司", "company", None)
        team = org_service.create_department(s, "接收团队", "center", company.id)
        home = org_service.create_department(s, "原团队", "center", company.id)
        admin = org_service.create_staff(s, org_service.StaffInput(
            username="bench_admin", display_name="压测管理员", role="admin", department_id=company.id))
        successor = org_service.create_staff(s, org_service.StaffInput(
            username="successor", display_name="接班人", role="sales", department_id=home.id,
            wecom_userid="Successor", capacity=100_000))
        for i in range(args.team):
            org_service.create_staff(s, org_service.StaffInput(
                username=f"team{i}", display_name=f"团队成员{i}", role="sales", department_id=team.id,
                wecom_userid=f"Team{i}", capacity=100_000))
        admin_id, successor_id, team_id, home_id, company_id = admin.id, successor.id, team.id, home.id, company.id

    timings: dict[str, list[float]] = {"successor": [], "team": []}
    opens: list[float] = []
    transfers: dict[str, int] = {}
    for r in range(args.rounds):
        for mode in ("successor", "team"):
            leaver_id = _seed_leaver(r, home_id, company_id, args.customers, mode[0])
            t0 = time.perf_counter()
            with unit_of_work() as s:
                viewer = Viewer.of(org_service.get_staff(s, admin_id))
                case_id = handover_flows.start_departure(s, viewer, leaver_id).id
            opens.append(time.perf_counter() - t0)
            plan = Plan("successor", to_staff_id=successor_id) if mode == "successor" else Plan(
                "team", department_id=team_id)
            with unit_of_work() as s:
                viewer = Viewer.of(org_service.get_staff(s, admin_id))
            t0 = time.perf_counter()
            with unit_of_work() as s:
                result = handover_flows.execute_case(s, viewer, case_id, plan)
                moved, requested = result.moved, result.transfers_requested
            timings[mode].append(time.perf_counter() - t0)
            if moved != args.customers:
                raise SystemExit(f"{mode}: moved {moved} of {args.customers}")
            transfers[mode] = requested
            with unit_of_work() as s:
                counts = handover.case_counts(s, case_id)
            assert counts["moved"] == args.customers, counts

    lines = ["| handover | customers | WeCom transfers requested | median s | max s | target |",
             "|---|---|---|---|---|---|"]
    met = True
    for mode, label in (("successor", "to one successor"), ("team", f"evenly across a team of {args.team}")):
        med, worst = harness.median(timings[mode]), max(timings[mode])
        met = met and worst < TARGET_SECONDS
        lines.append(f"| {label} | {args.customers:,} | {transfers[mode]:,} | {med:.2f} | {worst:.2f} | "
                     f"< {TARGET_SECONDS:.0f} s {'met' if worst < TARGET_SECONDS else 'MISSED'} |")
    lines += ["", f"Opening the departure case (mark departed + list {args.customers:,} customers, + commit): "
              f"median {harness.median(opens):.2f} s. Target {'met' if met else 'MISSED'} "
              f"(criterion: every round under {TARGET_SECONDS:.0f} s)."]
    load = os.getloadavg()
    section = harness.record(
        "Handover execution (set-based, one transaction)",
        f"python -m bench handover --database-url … --customers {args.customers} --team {args.team} "
        f"--rounds {args.rounds}",
        lines,
        notes=f"PostgreSQL, timed: `handover_flows.execute_case` + commit, {args.rounds} rounds per mode, each on "
              f"a fresh salesperson with {args.customers:,} customers (half WeCom contacts); load average at the "
              f"end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (the machine is shared with other test runs)",
    )
    print(section)
