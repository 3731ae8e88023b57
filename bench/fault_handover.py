"""Fault drill: a Celery worker SIGKILLed in the middle of the WeCom side of a 10,000-customer handover.

A departed salesperson's 10,000 customers (half of them WeCom contacts) go to one successor:
``execute_case`` moves them in one transaction and enqueues ``bot.transfer_customers`` through the
outbox. A real worker submits the 5,000 WeCom transfers to the WeCom simulator (served by a real
``scrm serve``) in batches of 100, each batch's rows locked in its own transaction; it is SIGKILLed
(its whole process group) once a fifth of them are submitted. A new worker is started, and the
periodic ``bot.poll_transfers`` (beat sends it every 10 minutes; the drill sends it at once) re-sends
the case's rows still ``requested``. Checks: every customer moved once, exactly one transfer row per
WeCom contact, none left ``requested``, none failed, no outbox row pending or dead.

    python -m bench faults handover-kill --database-url postgresql+psycopg://…/test_x_fault
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import faults, handover, harness


def _transfer_counts(url: str) -> Counter:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        return Counter(dict(conn.execute(text("SELECT status, count(*) FROM wecom_transfer GROUP BY status")).all()))


def run(args: argparse.Namespace) -> None:
    if not args.database_url:
        raise SystemExit("--database-url (a PostgreSQL database of your own) is needed")
    root = Path(tempfile.mkdtemp(prefix="scrm-fault-handover-"))
    redis_srv = faults.PrivateRedis(root)
    redis_srv.start()
    url = args.database_url
    env = {**handover._env(url), "SCRM_REDIS_URL": redis_srv.url,
           "SCRM_BASE_URL": f"http://127.0.0.1:{faults.WEB_PORT}"}
    os.environ.update(env)
    from core import pii, plugins
    from core.settings import reset_settings_cache

    reset_settings_cache()
    pii.reset_keyring_cache()
    handover._reset_schema(url)
    harness.migrate({"SCRM_DATABASE_URL": url})
    plugins.load_models()
    plugins.load_tasks()
    from sqlalchemy import text

    from core import tasks
    from core.db import get_engine, unit_of_work
    from crm import handover_flows, org_service
    from crm.handover import Plan
    from crm.scope import Viewer

    customers = args.customers
    admin_id, successor_id, _, home_id, company_id = handover.seed_org(0)
    leaver_id = handover._seed_leaver(0, home_id, company_id, customers, "k")
    web = faults.WebServer(env, root / "web.log")
    lines: list[str] = []
    worker = None
    try:
        web.start()
        with unit_of_work() as s:
            viewer = Viewer.of(org_service.get_staff(s, admin_id))
            case_id = handover_flows.start_departure(s, viewer, leaver_id).id
        with unit_of_work() as s:
            result = handover_flows.execute_case(s, viewer, case_id, Plan("successor", to_staff_id=successor_id))
        assert tasks.stop_sender(30), "the transfer task did not reach the broker"
        wecom = result.transfers_requested
        lines.append(f"Handover of {result.moved:,} customers executed (one transaction); {wecom:,} WeCom transfers "
                     "requested; `bot.transfer_customers` enqueued through the outbox.")
        worker = faults._start_worker(env, root / "worker.log")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = sum(n for status, n in _transfer_counts(url).items() if status != "requested")
            if done >= wecom // 5:
                break
            time.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        at_kill = _transfer_counts(url)
        lines.append(f"Worker SIGKILLed (process group) with transfers by status {dict(at_kill)}.")
        time.sleep(2)
        worker = faults._start_worker(env, root / "worker2.log")
        from core import outbox

        with unit_of_work() as s:
            outbox.enqueue(s, "bot.poll_transfers")  # what beat sends every 10 minutes
        assert tasks.stop_sender(30)
        started = time.monotonic()
        while time.monotonic() - started < args.drain_timeout:
            if not _transfer_counts(url).get("requested"):
                break
            time.sleep(0.5)
        recovery = time.monotonic() - started
        time.sleep(3)
        final = _transfer_counts(url)
        with get_engine(url).connect() as conn:
            per_customer = conn.execute(text(
                "SELECT count(*) FROM (SELECT customer_id FROM wecom_transfer GROUP BY customer_id "
                "HAVING count(*) > 1) d")).scalar_one()
            moved = conn.execute(text("SELECT count(*) FROM customer WHERE owner_id = :s"),
                                 {"s": successor_id}).scalar_one()
            contacts = conn.execute(text("SELECT count(*) FROM customer WHERE owner_id = :s AND "
                                         "wecom_external_userid IS NOT NULL"), {"s": successor_id}).scalar_one()
        box = faults.outbox_counts(url)
        lines.append(f"A new worker started and `bot.poll_transfers` sent; {recovery:.0f} s later transfers by "
                     f"status {dict(final)}; outbox rows {box}.")
        checks = {
            f"every customer moved to the successor once ({moved:,} of {customers:,})": moved == customers,
            f"one transfer row per WeCom contact ({sum(final.values()):,} rows, {contacts:,} contacts)":
                sum(final.values()) == contacts == wecom and per_customer == 0,
            "none left requested, none failed": not final.get("requested") and not final.get("failed"),
            "no outbox row pending or dead": not box.get("pending") and not box.get("dead"),
        }
        lines.append("Checks: " + "; ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in checks.items()) + ".")
        notes = (f"private redis-server (appendonly) on port {faults.REDIS_PORT}; PostgreSQL (own database); "
                 f"`scrm serve` (WeCom simulator) on port {faults.WEB_PORT}; Celery workers of concurrency 2; the "
                 "machine is shared with other engineers' work")
        command = f"python -m bench faults handover-kill --customers {customers} --database-url …"
        if args.no_record:
            print("\n".join([notes, *lines]))
        else:
            print(harness.record("Fault: worker SIGKILLed during a 10,000-customer handover's WeCom transfers",
                                 command, lines, notes=notes))
        if not all(checks.values()):
            raise SystemExit(f"handover fault drill: checks failed; logs in {root}")
    finally:
        faults._end(worker)
        web.stop()
        redis_srv.stop()
