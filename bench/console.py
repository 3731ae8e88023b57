"""Requests per second and p50/p99 of an authenticated console page against bare /healthz,
on the same server process, as a ratio."""

from __future__ import annotations

import argparse
import os
import tempfile

from bench import harness

TABLE_HEAD = ["| endpoint | requests | errors | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]


def prepare(env: dict[str, str], staff_count: int) -> str:
    """Migrate, build an organisation of ``staff_count`` people, return a live session cookie."""
    os.environ.update(env)
    from core import plugins
    from core.db import unit_of_work
    from core.settings import reset_settings_cache
    from crm import auth_service, org_service

    reset_settings_cache()
    harness.migrate(env)
    plugins.load_models()
    with unit_of_work() as s:
        company = org_service.create_department(s, "总公司", "company", None)
        admin = org_service.create_staff(s, org_service.StaffInput(
            username="bench_admin", display_name="压测管理员", role="admin", department_id=company.id,
            password="Bench12345"))
        for i in range(staff_count):
            org_service.create_staff(s, org_service.StaffInput(
                username=f"bench{i}", display_name=f"销售{i}", role="sales", department_id=company.id,
                password=None, mobile=f"138{i:08d}"))
        token, _ = auth_service.open_session(s, admin)
    return token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench console")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--staff", type=int, default=200, help="staff rows in the data set")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--page", default="/console/staff", help="authenticated page to measure")
    args = parser.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="scrm-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    env = {"SCRM_DATABASE_URL": url, "SCRM_REDIS_URL": ""}
    env.setdefault("SCRM_SECRET_KEY", os.environ.get("SCRM_SECRET_KEY") or "bench-secret")
    if not os.environ.get("SCRM_PII_KEYS"):
        import base64

        env["SCRM_PII_KEYS"] = "b1:" + base64.b64encode(os.urandom(32)).decode()
        env["SCRM_BLIND_INDEX_KEY"] = base64.b64encode(os.urandom(32)).decode()
    cookie = prepare(env, args.staff)

    from core.settings import get_settings

    with harness.server(env) as base:
        healthz = harness.load("GET /healthz", f"{base}/healthz", concurrency=args.concurrency, total=args.requests)
        page = harness.load(f"GET {args.page} (logged in)", f"{base}{args.page}", concurrency=args.concurrency,
                            total=args.requests, cookies={get_settings().session_cookie_name: cookie})
    if page.errors:
        raise SystemExit(f"{page.errors} errors on {args.page}: is the page there and the cookie accepted?")
    ratio = page.rps / healthz.rps if healthz.rps else 0
    lines = [*TABLE_HEAD, healthz.row(), page.row(), "",
             f"Console page throughput is {ratio:.2f}× that of /healthz "
             f"(p99 {page.pct(99):.1f} ms vs {healthz.pct(99):.1f} ms)."]
    db_kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite (embedded default)"
    section = harness.record(
        "Console page vs /healthz",
        f"python -m bench console --staff {args.staff} --requests {args.requests} "
        f"--concurrency {args.concurrency}" + (" --database-url …" if args.database_url else ""),
        lines,
        notes=f"one `scrm serve` process, {db_kind}, {args.staff} staff rows; load generator "
              f"(httpx, asyncio) on the same machine, {args.concurrency} connections",
    )
    print(section)
