"""Telephony result callbacks accepted per second (POST /postloan/telephony/callback), p50 and p99, against
bare /healthz on the same server; then a real Celery worker applies them and the run is checked: nothing
lost, nothing applied twice.

Same method as :mod:`bench.payments`: every callback is signed (HMAC-SHA256 with the simulator's callback
secret, as the call center signs) BEFORE the timed window; wrk replays them (each at most once) for
``--duration`` seconds; ~10% are re-deliveries (the same event id, a fresh nonce and signature). Each
distinct callback finishes its own call (calls in status ``dialing`` created beforehand). Checks: inbox
rows == distinct events among the answered requests (none lost; none of the unsent stored); after the
worker, every stored callback done after one attempt, every one of their calls finished, one timeline
event per call.

    python -m bench telephony --database-url postgresql+psycopg://…/bench --redis-url redis://…/5 --fresh-schema
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import harness, wrk
from bench.callbacks import base_env, database_cpu_seconds, server_cpu_seconds
from bench.callbacks import worker as callbacks_worker

RUN = os.environ.get("BENCH_TEL_RUN") or secrets.token_hex(4)

_REPLAY = r"""
function init(args)
  issued, exhausted, reqs = 0, false, {}
  for line in io.lines(args[1] .. tid .. ".txt") do
    local a = string.find(line, "\t", 1, true)
    local b = string.find(line, "\t", a + 1, true)
    local c = string.find(line, "\t", b + 1, true)
    local headers = {["Content-Type"] = "application/json",
                     ["X-Telephony-Signature"] = string.sub(line, 1, a - 1),
                     ["X-Telephony-Timestamp"] = string.sub(line, a + 1, b - 1),
                     ["X-Telephony-Nonce"] = string.sub(line, b + 1, c - 1)}
    reqs[#reqs + 1] = wrk.format("POST", "/postloan/telephony/callback", headers, string.sub(line, c + 1))
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
    from postloan.telephony.models import DialBatch, DoNotCall, TelephonyCall, TelephonyCallback

    with get_engine(env["SCRM_DATABASE_URL"]).begin() as conn:
        for model in (TelephonyCallback, TelephonyCall, DialBatch, DoNotCall):
            conn.execute(delete(model))


def make_calls(url: str, count: int) -> list[str]:
    """``count`` calls in status dialing, of one collector to one customer."""
    from sqlalchemy import insert

    from core.db import get_engine, unit_of_work
    from crm import org_service
    from crm.customers import CustomerInput, intake
    from postloan.telephony.models import TelephonyCall

    with unit_of_work() as session:
        dept = org_service.create_department(session, f"催收{RUN}", "company", None)
        staff = org_service.create_staff(session, org_service.StaffInput(
            username=f"tel{RUN}", display_name="压测坐席", role="collector", department_id=dept.id, password=None))
        customer = intake(session, CustomerInput(name="压测客户", phone=f"137{random.randrange(10**8):08d}"),  # noqa: S311
                          channel="manual").customer
        staff_id, customer_id = staff.id, customer.id
    now = datetime.now(UTC)
    numbers = [f"B{RUN}{i:010d}" for i in range(count)]
    rows = [{"out_call_no": no, "provider_call_id": "SIM" + no, "staff_id": staff_id, "customer_id": customer_id,
             "phone_masked": "137****0000", "status": "dialing", "created_at": now, "dialed_at": now} for no in numbers]
    with get_engine(url).begin() as conn:
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(TelephonyCall), rows[start:start + 10_000])
    return numbers


def sign_all(numbers: list[str], count: int, redeliver: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """``count`` callback lines (signature, timestamp, nonce, body) and each line's event id."""
    from postloan.telephony import signing
    from postloan.telephony.config import SIM_CALLBACK_SECRET

    now = str(int(time.time()))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    lines, events, sent = [], [], []
    for _ in range(count):
        if sent and rng.random() < redeliver:
            no = rng.choice(sent[-200:])
        else:
            no = numbers[len(sent)]
            sent.append(no)
        body = json.dumps({"event_id": "EV" + no, "out_call_no": no, "call_id": "SIM" + no, "result": "answered",
                           "duration_seconds": 61, "recording_url": f"https://rec.example.com/{no}.wav",
                           "started_at": started, "answered_at": started, "ended_at": started},
                          separators=(",", ":"))
        nonce = secrets.token_hex(12)
        lines.append(f"{signing.sign(SIM_CALLBACK_SECRET, now, nonce, body.encode())}\t{now}\t{nonce}\t{body}")
        events.append("EV" + no)
    return lines, events


def replay(label: str, base: str, lines: list[str], *, duration: float, connections: int) -> wrk.WrkResult:
    with tempfile.TemporaryDirectory(prefix="scrm-wrk-") as tmp:
        workdir = Path(tmp)
        (workdir / "reqs_1.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return wrk._run(label, base + "/", wrk._SETUP + _REPLAY + wrk._DONE, [str(workdir / "reqs_")],
                        duration=duration, connections=connections, threads=1, workdir=workdir)


def counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        inbox = conn.execute(text(
            "SELECT count(*), sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN status = 'done' AND attempts = 1 THEN 1 ELSE 0 END) FROM telephony_callback")).one()
        finished = conn.execute(text("SELECT count(*) FROM telephony_call WHERE status = 'finished'")).scalar_one()
        events = conn.execute(text(
            "SELECT count(*), count(DISTINCT ref_id) FROM customer_event WHERE kind = 'call'"
            " AND ref_type = 'telephony_call'")).one()
    return {"rows": inbox[0], "pending": inbox[1] or 0, "done_once": inbox[2] or 0, "finished": finished,
            "timeline": events[0], "timeline_distinct": events[1]}


def stored_events(url: str) -> set[str]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        return set(conn.scalars(text("SELECT event_key FROM telephony_callback")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench telephony")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", default="", help="Celery broker (a real worker applies); empty: embedded")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--max-rate", type=int, default=2500, help="callbacks/s pre-generated for --duration")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--redeliver", type=float, default=0.10)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--fresh-schema", action="store_true")
    parser.add_argument("--notes", default="")
    args = parser.parse_args(argv)
    if wrk.find() is None:
        raise SystemExit(wrk.INSTALL_HINT.split(";")[0])
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='scrm-bench-')}/bench.db"
    env = {**base_env(url, args.redis_url), "SCRM_TELEPHONY_API_BASE": "", "SCRM_TELEPHONY_CALLBACK_WINDOW_SECONDS": "900"}
    prepare(env, fresh_schema=args.fresh_schema)
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    is_pg = url.startswith("postgresql")
    rng = random.Random(13)  # noqa: S311 - picking re-deliveries, not security
    n_measured, n_warm = int(args.max_rate * args.duration), 300
    numbers = make_calls(url, n_warm + n_measured)
    t0 = time.perf_counter()
    warm, warm_events = sign_all(numbers[:n_warm], n_warm, args.redeliver, rng)
    measured, measured_events = sign_all(numbers[n_warm:], n_measured, args.redeliver, rng)
    sign_seconds = time.perf_counter() - t0
    label = f"POST /postloan/telephony/callback (signed; ~{args.redeliver:.0%} re-deliveries)"
    with harness.server(env, workers=args.workers) as base:
        port = int(base.rsplit(":", 1)[1])
        warm_result = replay("warm-up", base, warm, duration=2, connections=4)
        cpu0 = server_cpu_seconds(port)
        healthz = wrk.run_get("GET /healthz", f"{base}/healthz", duration=args.duration, connections=args.concurrency)
        cpu1 = server_cpu_seconds(port)
        time.sleep(1)
        cpu2, db2 = server_cpu_seconds(port), database_cpu_seconds(url) if is_pg else {}
        result = replay(label, base, measured, duration=args.duration, connections=args.concurrency)
        cpu3, db3 = server_cpu_seconds(port), database_cpu_seconds(url) if is_pg else {}
        load_avg = os.getloadavg()
        time.sleep(2)
        stored = stored_events(url)
        drain_seconds = None
        if args.redis_url:
            started = time.perf_counter()
            with callbacks_worker(env, args.worker_concurrency):
                deadline = time.monotonic() + args.drain_timeout
                while time.monotonic() < deadline:
                    now = counts(url)
                    if now["pending"] == 0 and now["finished"] >= now["rows"]:
                        break
                    time.sleep(0.5)
                drain_seconds = time.perf_counter() - started
                time.sleep(2)
        final = counts(url)
    # One wrk thread keeps at most --concurrency requests outstanding: at the stop, only the last that many
    # issued can be unanswered; every request issued before them was answered (errors == 0), so its event
    # must be stored. Nothing beyond what was issued may be stored. wrk calls request() once when a thread
    # starts, to probe the script, and never sends that first request: line 0 is counted as issued, not sent.
    issued_n = min(result.issued, len(measured_events))
    answered = set(measured_events[1:max(1, issued_n - args.concurrency)]) - {measured_events[0]}
    issued = set(measured_events[:issued_n])
    stored_measured = stored & set(measured_events)
    warm_issued = min(warm_result.issued, len(warm_events))
    checks = {
        "no request failed": result.errors == 0 and warm_result.errors == 0,
        "pre-generated requests not used up": not result.exhausted,
        f"nothing lost: every answered callback stored (distinct surely answered {len(answered)} ≤ stored "
        f"{len(stored_measured)} ≤ distinct sent {len(issued)})": answered <= stored_measured <= issued,
        "warm-up stored": set(warm_events[1:max(1, warm_issued - 4)]) - {warm_events[0]} <= stored,
    }
    if args.redis_url:
        checks.update({
            "every callback done after one attempt": final["done_once"] == final["rows"],
            "every call finished once, one timeline event each":
                final["finished"] == final["rows"] == final["timeline"] == final["timeline_distinct"],
        })
    target = result.rps >= 500
    server_ms = 1000 * (cpu3 - cpu2) / max(1, result.requests)
    db_ms = 1000 * sum(cpu - db2.get(pid, 0.0) for pid, cpu in db3.items()) / max(1, result.requests)
    lines = ["| endpoint | requests | errors | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|",
             healthz.row(), result.row(), "",
             f"Telephony callbacks: {result.rps:,.0f}/s accepted, {result.rps / healthz.rps:.2f}× /healthz; p50 "
             f"{result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms (p99.9 {result.p999_ms:.1f}, max {result.max_ms:.1f}). "
             f"Target ≥500/s accepted, nothing lost: {'met' if target and all(checks.values()) else 'NOT met'}.",
             f"CPU per request (from /proc): server /healthz {1000 * (cpu1 - cpu0) / max(1, healthz.requests):.2f} ms, "
             f"callback {server_ms:.2f} ms" + (f"; PostgreSQL backends {db_ms:.2f} ms" if is_pg else "")
             + f". Load average at the end {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f} on "
             f"{os.cpu_count()} cores. wrk is closed-loop (coordinated omission, see bench/wrk.py)."]
    if drain_seconds is not None:
        lines.append(f"A real Celery worker (concurrency {args.worker_concurrency}), started after the timed run, "
                     f"applied {final['rows']} callbacks in {drain_seconds:.1f} s.")
    lines.append("Checks: " + "; ".join(f"{n}: {'ok' if ok else 'FAILED'}" for n, ok in checks.items())
                 + f" (counts {final}).")
    notes = (f"{args.workers} `scrm serve` process(es), {'PostgreSQL' if is_pg else 'SQLite'}, "
             f"{'Redis + Celery' if args.redis_url else 'in-process tasks'}; wrk (1 thread, {args.concurrency} "
             f"connections, {args.duration:g} s per endpoint) replaying {len(measured)} callbacks signed before the "
             f"timed window ({sign_seconds:.1f} s); load average before the run {args.notes or 'see below'}")
    command = (f"python -m bench telephony --duration {args.duration:g} --concurrency {args.concurrency} "
               f"--workers {args.workers}" + (" --database-url …" if args.database_url else "")
               + (" --redis-url …" if args.redis_url else ""))
    if args.no_record:
        print(notes)
        print("\n".join(lines))
    else:
        print(harness.record("Telephony callbacks accepted vs /healthz (issue 16)", command, lines, notes=notes))
    if not all(checks.values()):
        raise SystemExit("telephony bench checks failed: " + ", ".join(n for n, ok in checks.items() if not ok))
