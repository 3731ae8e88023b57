"""Payment notifications accepted per second (POST /payments/wechat/notify), p50 and p99, against bare
/healthz on the same server, then a real Celery worker applies them and the run is checked: nothing lost,
nothing applied twice. And the reconciliation of a 100,000-line bill.

Same method as :mod:`bench.callbacks`: every notification is signed (RSA-SHA256 with the simulator's
platform key, as WeChat Pay signs) and its resource encrypted (AES-256-GCM with the APIv3 key) BEFORE the
timed window; wrk replays them (each at most once) for ``--duration`` seconds; ~10% are re-deliveries (the
same notification id with a fresh nonce and signature, as WeChat Pay re-sends). Each distinct notification
pays its own order (orders of the bench purpose ``bench.noop``, created beforehand); the worker's applier
writes one audit row per application. Checks: every answered request's nonce recorded; inbox rows ==
distinct notifications accepted; every one of their orders succeeded, applied exactly once.

Reconciliation: 100,000 succeeded orders of one day and the provider's bill for that day rendered in WeChat
Pay's format with 150 differences (50 amounts differ, 50 lines missing, 50 unknown lines); timed: parse the
bill text, match, write the items, reconcile the rest, commit (the bill's download is not in the figure).

    python -m bench payments --database-url postgresql+psycopg://…/bench --redis-url redis://…/5 --fresh-schema
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench import harness, wrk
from bench.callbacks import base_env, database_cpu_seconds, server_cpu_seconds

PURPOSE = "bench.noop"
AUDIT_ACTION = "bench.payment_applied"
RUN = os.environ.get("BENCH_PAY_RUN") or secrets.token_hex(4)

_REPLAY = r"""
function init(args)
  issued, exhausted, reqs = 0, false, {}
  for line in io.lines(args[1] .. tid .. ".txt") do
    local a = string.find(line, "\t", 1, true)
    local b = string.find(line, "\t", a + 1, true)
    local c = string.find(line, "\t", b + 1, true)
    local headers = {["Content-Type"] = "application/json", ["Wechatpay-Serial"] = "%SERIAL%",
                     ["Wechatpay-Signature-Type"] = "WECHATPAY2-SHA256-RSA2048",
                     ["Wechatpay-Signature"] = string.sub(line, 1, a - 1),
                     ["Wechatpay-Timestamp"] = string.sub(line, a + 1, b - 1),
                     ["Wechatpay-Nonce"] = string.sub(line, b + 1, c - 1)}
    reqs[#reqs + 1] = wrk.format("POST", "/payments/wechat/notify", headers, string.sub(line, c + 1))
  end
  count = #reqs
end

function request()
  issued = issued + 1
  if issued > count then
    exhausted = true
    wrk.thread:stop()
    return reqs[count]
  end
  return reqs[issued]
end
"""


def prepare(env: dict[str, str], *, fresh_schema: bool) -> None:
    from bench import callbacks

    callbacks.prepare(env, fresh_schema=fresh_schema)
    from sqlalchemy import delete

    from core.db import get_engine
    from payments.models import (
        PaymentNonce,
        PaymentNotification,
        PaymentOrder,
        PaymentTransition,
        ReconciliationItem,
        ReconciliationRun,
    )

    with get_engine(env["SCRM_DATABASE_URL"]).begin() as conn:
        for model in (ReconciliationItem, ReconciliationRun, PaymentTransition, PaymentNotification, PaymentNonce,
                      PaymentOrder):
            conn.execute(delete(model))


def make_orders(url: str, count: int, prefix: str, *, status: str = "submitted", paid_day: date | None = None,
                amount: int = 10_000) -> list[str]:
    from sqlalchemy import insert

    from core.db import get_engine
    from payments.models import PaymentOrder

    now = datetime.now(UTC)
    numbers = [f"{prefix}{i:010d}" for i in range(count)]
    rows = [{"out_trade_no": no, "purpose": PURPOSE, "obligation_ref": no, "attempt_no": 1, "customer_id": None,
             "method": "jsapi", "description": "bench", "total_amount": amount, "status": status, "checks": 0,
             "created_at": now, "updated_at": now,
             **({"paid_amount": amount, "paid_at": now, "paid_date": paid_day, "transaction_id": "42" + no}
                if paid_day else {"paid_amount": None, "paid_at": None, "paid_date": None, "transaction_id": None})}
            for no in numbers]
    with get_engine(url).begin() as conn:
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(PaymentOrder), rows[start:start + 10_000])
    return numbers


def sign_all(numbers: list[str], count: int, redeliver: float, rng: random.Random) -> tuple[list[str], dict[str, str]]:
    """``count`` notification lines (signature, timestamp, nonce, body), ~``redeliver`` of them re-deliveries.
    Returns the lines and each nonce -> the out_trade_no it pays."""
    from payments.config import SIM_APIV3_KEY, SIM_PUBLIC_KEY_ID
    from payments.notify_crypto import build
    from payments.simulator.state import STATE

    now = str(int(time.time()))
    success = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    lines, paid_by, sent = [], {}, []
    for _ in range(count):
        if sent and rng.random() < redeliver:
            no = rng.choice(sent[-200:])
        else:
            no = numbers[len(sent)]
            sent.append(no)
        nonce = secrets.token_hex(12)
        headers, body = build(STATE.platform_key, SIM_PUBLIC_KEY_ID, SIM_APIV3_KEY, event_id="EV" + no,
                              event_type="TRANSACTION.SUCCESS",
                              resource={"out_trade_no": no, "transaction_id": "42" + no, "trade_state": "SUCCESS",
                                        "amount": {"total": 10_000, "payer_total": 10_000}, "success_time": success},
                              timestamp=now, nonce=nonce, resource_nonce=secrets.token_hex(6))
        lines.append(f"{headers['Wechatpay-Signature']}\t{now}\t{nonce}\t{body.decode()}")
        paid_by[nonce] = no
    return lines, paid_by


def replay(label: str, base: str, lines: list[str], *, duration: float, connections: int) -> wrk.WrkResult:
    from payments.config import SIM_PUBLIC_KEY_ID

    with tempfile.TemporaryDirectory(prefix="scrm-wrk-") as tmp:
        workdir = Path(tmp)
        (workdir / "reqs_1.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        script = wrk._SETUP + _REPLAY.replace("%SERIAL%", SIM_PUBLIC_KEY_ID) + wrk._DONE
        return wrk._run(label, base + "/", script, [str(workdir / "reqs_")], duration=duration,
                        connections=connections, threads=1, workdir=workdir)


def run_worker(concurrency: int) -> None:
    from core import audit
    from core.cli import _celery
    from core.tasks import QUEUES
    from payments import purposes

    app = _celery()

    def _apply(session, settlement):  # noqa: ANN001, ANN202
        audit.record(session, AUDIT_ACTION, entity_type="bench_pay_" + RUN, entity_id=settlement.order_id)
        return f"bench:{settlement.order_id}"

    purposes.register(PURPOSE, "bench", _apply)
    app.worker_main(["worker", "--loglevel", "WARNING", "--concurrency", str(concurrency), "--queues",
                     ",".join(QUEUES), "--without-heartbeat", "--without-gossip", "--without-mingle"])


@contextlib.contextmanager
def worker(env: dict[str, str], concurrency: int):  # noqa: ANN201
    cmd = [sys.executable, "-m", "bench", "payments", "--run-worker", "--worker-concurrency", str(concurrency)]
    proc = subprocess.Popen(cmd, env={**os.environ, **env, "BENCH_PAY_RUN": RUN}, cwd=harness.ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        inbox = conn.execute(text(
            "SELECT count(*), sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN status = 'done' AND attempts = 1 THEN 1 ELSE 0 END) FROM payment_notification")).one()
        orders = conn.execute(text(
            "SELECT sum(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN applied_at IS NOT NULL THEN 1 ELSE 0 END) FROM payment_order")).one()
        applied = conn.execute(text(
            "SELECT count(*), count(DISTINCT entity_id) FROM audit_log WHERE action = :a AND entity_type = :t"),
            {"a": AUDIT_ACTION, "t": "bench_pay_" + RUN}).one()
        succeeded_moves = conn.execute(text(
            "SELECT count(*) FROM payment_transition WHERE to_status = 'succeeded'")).scalar_one()
    return {"rows": inbox[0], "pending": inbox[1] or 0, "done_once": inbox[2] or 0, "succeeded": orders[0] or 0,
            "applied": orders[1] or 0, "audit": applied[0], "audit_distinct": applied[1],
            "succeeded_transitions": succeeded_moves}


def recorded_nonces(url: str) -> set[str]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        return set(conn.scalars(text("SELECT nonce FROM payment_nonce")))


def bench_notifications(args: argparse.Namespace, env: dict[str, str], url: str) -> tuple[list[str], dict]:
    is_pg = url.startswith("postgresql")
    rng = random.Random(11)  # noqa: S311 - picking re-deliveries, not security
    n_measured = int(args.max_rate * args.duration)
    n_warm = 300
    numbers = make_orders(url, n_warm + n_measured, "B" + RUN)
    t0 = time.perf_counter()
    warm, warm_paid = sign_all(numbers[:n_warm], n_warm, args.redeliver, rng)
    measured, measured_paid = sign_all(numbers[n_warm:], n_measured, args.redeliver, rng)
    sign_seconds = time.perf_counter() - t0
    label = f"POST /payments/wechat/notify (signed, encrypted; ~{args.redeliver:.0%} re-deliveries)"
    with harness.server(env, workers=args.workers) as base:
        port = int(base.rsplit(":", 1)[1])
        replay("warm-up", base, warm, duration=2, connections=4)
        cpu0 = server_cpu_seconds(port)
        healthz = wrk.run_get("GET /healthz", f"{base}/healthz", duration=args.duration, connections=args.concurrency)
        cpu1 = server_cpu_seconds(port)
        time.sleep(1)
        cpu2, db2 = server_cpu_seconds(port), database_cpu_seconds(url) if is_pg else {}
        result = replay(label, base, measured, duration=args.duration, connections=args.concurrency)
        cpu3, db3 = server_cpu_seconds(port), database_cpu_seconds(url) if is_pg else {}
        load_avg = os.getloadavg()
        drain_seconds = None
        if args.redis_url:
            started = time.perf_counter()
            with worker(env, args.worker_concurrency):
                deadline = time.monotonic() + args.drain_timeout
                while time.monotonic() < deadline:
                    now = counts(url)
                    if now["pending"] == 0 and now["audit"] >= now["rows"]:
                        break
                    time.sleep(0.5)
                drain_seconds = time.perf_counter() - started
                time.sleep(2)
        else:
            time.sleep(5)  # requests still in flight when wrk stopped are stored now
        final = counts(url)
    nonces = recorded_nonces(url)
    paid_by = {**warm_paid, **measured_paid}
    accepted_orders = {paid_by[n] for n in nonces if n in paid_by}
    measured_recorded = len(nonces & measured_paid.keys())
    checks = {
        "no request failed": result.errors == 0,
        "pre-generated requests not used up": not result.exhausted,
        f"every answered request's nonce recorded (answered {result.requests} ≤ recorded {measured_recorded} ≤ "
        f"sent {result.issued})": result.requests <= measured_recorded <= result.issued
        and not (nonces - paid_by.keys()),
        f"inbox rows == distinct notifications accepted ({len(accepted_orders)})": final["rows"] == len(accepted_orders),
    }
    if args.redis_url:
        checks.update({
            "every notification done after one attempt": final["done_once"] == final["rows"],
            "every paid order succeeded and applied exactly once":
                final["succeeded"] == final["applied"] == final["audit"] == final["audit_distinct"]
                == final["succeeded_transitions"] == len(accepted_orders),
        })
    target = result.rps >= 1000 and result.p99_ms < 50
    server_ms = 1000 * (cpu3 - cpu2) / max(1, result.requests)
    db_ms = 1000 * sum(cpu - db2.get(pid, 0.0) for pid, cpu in db3.items()) / max(1, result.requests)
    lines = ["| endpoint | requests | errors | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|",
             healthz.row(), result.row(), "",
             f"Payment notifications: {result.rps:,.0f}/s, {result.rps / healthz.rps:.2f}× /healthz; p50 "
             f"{result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms (p99.9 {result.p999_ms:.1f}, max {result.max_ms:.1f}). "
             f"Target ≥1,000/s with p99 < 50 ms: {'met' if target else 'NOT met'}.",
             f"CPU per request (from /proc): server /healthz {1000 * (cpu1 - cpu0) / max(1, healthz.requests):.2f} ms, "
             f"notification {server_ms:.2f} ms" + (f"; PostgreSQL backends {db_ms:.2f} ms" if is_pg else "")
             + f". Load average at the end {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f} on "
             f"{os.cpu_count()} cores. wrk is closed-loop (coordinated omission, see bench/wrk.py)."]
    if drain_seconds is not None:
        lines.append(f"A real Celery worker (concurrency {args.worker_concurrency}), started after the timed run, "
                     f"applied {final['rows']} notifications in {drain_seconds:.1f} s.")
    lines.append("Checks: " + "; ".join(f"{n}: {'ok' if ok else 'FAILED'}" for n, ok in checks.items())
                 + f" (counts {final}).")
    notes = (f"{args.workers} `scrm serve` process(es), {'PostgreSQL' if is_pg else 'SQLite'}, "
             f"{'Redis + Celery' if args.redis_url else 'in-process tasks'}; wrk (1 thread, {args.concurrency} "
             f"connections, {args.duration:g} s per endpoint) replaying {len(measured)} notifications signed and "
             f"encrypted before the timed window ({sign_seconds:.1f} s)" + (f"; {args.notes}" if args.notes else ""))
    return [notes, *lines], checks


def bench_reconciliation(url: str, lines_count: int) -> tuple[list[str], dict]:
    import gc

    from core.db import get_session_factory, unit_of_work
    from core.settings import reset_settings_cache
    from payments import bill_format, reconciliation
    from payments.models import ReconciliationRun

    reset_settings_cache()
    day = date.today() - timedelta(days=1)
    numbers = make_orders(url, lines_count, "R" + RUN, status="succeeded", paid_day=day)
    at = datetime.now(UTC)
    rows = [{"out_trade_no": no, "transaction_id": "42" + no, "trade_state": "SUCCESS",
             "amount": 9_999 if i < 50 else 10_000, "refund_amount": 0, "at": at, "description": "bench"}
            for i, no in enumerate(numbers) if not 50 <= i < 100]
    rows += [{"out_trade_no": f"X{RUN}{i:010d}", "transaction_id": f"42X{i}", "trade_state": "SUCCESS",
              "amount": 10_000, "refund_amount": 0, "at": at} for i in range(50)]
    text = bill_format.render(rows, appid="wxbench", mchid="1900000109")
    get_session_factory()
    gc.collect()
    started = time.perf_counter()
    parsed = bill_format.parse(text)
    parse_seconds = time.perf_counter() - started
    with unit_of_work() as session:
        recon = ReconciliationRun(bill_date=day, status="running", started_at=datetime.now(UTC))
        session.add(recon)
        session.flush()
        reconciliation.match(session, recon, parsed)
        result = (recon.bill_lines, recon.matched, recon.mismatched)
    total = time.perf_counter() - started
    checks = {"150 differences found": result[2] == 150,
              f"{lines_count - 100} matched": result[1] == lines_count - 100}
    out = [f"Reconciliation of a {len(parsed):,}-line bill against {lines_count:,} orders: {total:.1f} s "
           f"(parse {parse_seconds:.1f} s, match + write + commit {total - parse_seconds:.1f} s); target < 30 s: "
           f"{'met' if total < 30 else 'NOT met'}. Lines {result[0]}, matched {result[1]}, differences {result[2]}.",
           "Checks: " + "; ".join(f"{n}: {'ok' if ok else 'FAILED'}" for n, ok in checks.items()) + "."]
    return out, checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench payments")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", default="", help="Celery broker (a real worker applies); empty: embedded")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--max-rate", type=int, default=2500, help="notifications/s pre-generated for --duration")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--redeliver", type=float, default=0.10)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--reconcile-lines", type=int, default=100_000, help="0: skip the reconciliation bench")
    parser.add_argument("--skip-notifications", action="store_true")
    parser.add_argument("--run-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--fresh-schema", action="store_true")
    parser.add_argument("--notes", default="")
    args = parser.parse_args(argv)
    if args.run_worker:
        run_worker(args.worker_concurrency)
        return
    if wrk.find() is None:
        raise SystemExit(wrk.INSTALL_HINT.split(";")[0])
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='scrm-bench-')}/bench.db"
    env = {**base_env(url, args.redis_url), "SCRM_WECHATPAY_MCHID": "", "SCRM_WECHATPAY_NOTIFY_WINDOW_SECONDS": "900"}
    prepare(env, fresh_schema=args.fresh_schema)
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    lines: list[str] = []
    checks: dict[str, bool] = {}
    if not args.skip_notifications:
        more, ok = bench_notifications(args, env, url)
        lines += more
        checks.update(ok)
    if args.reconcile_lines:
        more, ok = bench_reconciliation(url, args.reconcile_lines)
        lines += ["", *more]
        checks.update(ok)
    command = (f"python -m bench payments --duration {args.duration:g} --concurrency {args.concurrency} "
               f"--workers {args.workers} --reconcile-lines {args.reconcile_lines}"
               + (" --database-url …" if args.database_url else "") + (" --redis-url …" if args.redis_url else ""))
    if args.no_record:
        print("\n".join(lines))
    else:
        print(harness.record("Payment notifications accepted vs /healthz; reconciliation of a daily bill", command,
                             lines[1:] if not args.skip_notifications else lines,
                             notes=lines[0] if not args.skip_notifications else ""))
    if not all(checks.values()):
        raise SystemExit("payment bench checks failed: " + ", ".join(n for n, ok in checks.items() if not ok))
