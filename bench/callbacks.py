"""Signed, encrypted WeCom callbacks accepted per second (POST /wecom/callback), with p50 and p99,
against bare /healthz on the same server; then a real Celery worker drains the inbox and the run is
checked: nothing lost, nothing processed twice.

- Every callback carries a unique nonce and a fresh signature. The bodies are sealed (AES-CBC +
  SHA1 signature) BEFORE the timed window, so the load generator's crypto does not compete with the
  server for the 2 cores during the measurement.
- The load generator is ``wrk`` (Debian package ``wrk``) when installed: it replays the pre-generated
  requests for ``--duration`` seconds at a few microseconds of CPU each (see :mod:`bench.wrk`, also for
  its closed-loop caveat). Without it, the Python/httpx generator (~1 ms CPU per request on the same
  cores) is the fallback, with a hint how to install wrk.
- Checks after the drain: every answered request's nonce is recorded; inbox rows == the distinct events
  of the accepted requests; every row done after one attempt; the handler's side effect exactly once
  per accepted event (the set of handled event ids equals the set accepted).
- CPU per callback from /proc: the server's processes, the PostgreSQL backends of the bench database,
  and wrk itself, which is what the cores-x-CPU arithmetic of the target needs.
- About 10% are re-deliveries: the same event (same content, so the same event key) with a new
  nonce and signature, as WeCom re-sends an unanswered event; they must be accepted and not stored.
- The events are of a benign bench kind (``event:scrm_bench:ping``) whose handler, registered only
  in the bench's worker process, writes one audit row per event inside the inbox transaction: after
  the drain, inbox rows == distinct events, every row ``done`` with one attempt, one audit row per event.

    python -m bench callbacks --database-url postgresql+psycopg://…/scrm_h_cbbench \\
        --redis-url redis://127.0.0.1:6379/9 --workers 2 --duration 20 --fresh-schema
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlencode

from bench import harness, wrk

TABLE_HEAD = ["| endpoint | requests | errors | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
KIND = "event:scrm_bench:ping"
AUDIT_ACTION = "bench.callback_handled"
CORP_ID = "wwbenchcorp0001"
TOKEN = "benchtoken"  # noqa: S105 - a bench corp's callback token, not a secret
AES_KEY = base64.b64encode(b"\x05" * 32).decode().rstrip("=")


def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {"SCRM_DATABASE_URL": database_url, "SCRM_REDIS_URL": redis_url, "SCRM_WECOM_TOKEN": TOKEN,
           "SCRM_WECOM_AES_KEY": AES_KEY, "SCRM_WECOM_CORP_ID": CORP_ID, "SCRM_WECOM_SECRET": "",
           "SCRM_SECRET_KEY": os.environ.get("SCRM_SECRET_KEY") or "bench-secret"}
    if not os.environ.get("SCRM_PII_KEYS"):
        env["SCRM_PII_KEYS"] = "b1:" + base64.b64encode(b"\x03" * 32).decode()
        env["SCRM_PII_ACTIVE_KEY_ID"] = "b1"
        env["SCRM_BLIND_INDEX_KEY"] = base64.b64encode(b"\x04" * 32).decode()
    return env


def prepare(env: dict[str, str], *, fresh_schema: bool = False) -> None:
    """Migrate and empty the inbox and the nonce ledger (audit rows are append-only: each run counts its own).
    ``fresh_schema`` (PostgreSQL): drop and recreate the bench database's public schema first."""
    os.environ.update(env)
    from core.settings import reset_settings_cache

    reset_settings_cache()
    if fresh_schema and env["SCRM_DATABASE_URL"].startswith("postgresql"):
        from sqlalchemy import text

        from core.db import dispose_engines, get_engine

        with get_engine(env["SCRM_DATABASE_URL"]).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        dispose_engines()
    harness.migrate(env)
    from sqlalchemy import delete

    from core import plugins
    from core.db import get_engine

    plugins.load_models()
    from bot.models import WecomInbox, WecomNonce

    with get_engine(env["SCRM_DATABASE_URL"]).begin() as conn:
        conn.execute(delete(WecomInbox))
        conn.execute(delete(WecomNonce))


RUN = secrets.token_hex(4)  # this run's audit rows: entity_type "bench_run_<RUN>"


def seal_all(count: int, redeliver: float, start_id: int, rng: random.Random) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
    """``count`` (url, body) pairs, each with its own nonce and signature; ~``redeliver`` of them repeat an
    earlier event of the same set. Returns the requests and each request's nonce -> its event id."""
    from bot.callback_crypto import CallbackCrypto

    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID, window_seconds=3600)
    now = str(int(time.time()))
    events: list[int] = []
    out = []
    event_of: dict[str, int] = {}
    for _ in range(count):
        if events and rng.random() < redeliver:
            event_id = rng.choice(events[-200:])  # a recent one: its first delivery may still be in flight
        else:
            event_id = start_id + len(events)
            events.append(event_id)
        xml = ("<xml><ToUserName><![CDATA[" + CORP_ID + "]]></ToUserName><FromUserName><![CDATA[sys]]>"
               "</FromUserName><CreateTime>" + now + "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
               "<Event><![CDATA[scrm_bench]]></Event><ChangeType><![CDATA[ping]]></ChangeType>"
               f"<BenchId><![CDATA[{event_id}]]></BenchId><BenchRun><![CDATA[{RUN}]]></BenchRun></xml>")
        nonce = secrets.token_hex(8)
        body, signature = crypto.seal(xml, nonce, now)
        query = urlencode({"msg_signature": signature, "timestamp": now, "nonce": nonce})
        out.append(("/wecom/callback?" + query, body.encode()))
        event_of[nonce] = event_id
    return out, event_of


def run_worker(concurrency: int) -> None:
    """The bench's worker process: the production worker plus the bench event's handler."""
    from core import audit
    from core.cli import _celery
    from core.tasks import QUEUES

    app = _celery()
    from bot import inbox

    @inbox.handles(KIND)
    def _handled(session, fields):  # noqa: ANN001, ANN202
        audit.record(session, AUDIT_ACTION, entity_type="bench_run_" + fields["BenchRun"], entity_id=fields["BenchId"])

    app.worker_main(["worker", "--loglevel", "WARNING", "--concurrency", str(concurrency), "--queues",
                     ",".join(QUEUES), "--without-heartbeat", "--without-gossip", "--without-mingle"])


@contextlib.contextmanager
def worker(env: dict[str, str], concurrency: int):  # noqa: ANN201
    cmd = [sys.executable, "-m", "bench", "callbacks", "--run-worker", "--worker-concurrency", str(concurrency)]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=harness.ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _stat(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])  # ppid, utime + stime (ticks)


def server_cpu_seconds(port: int) -> float:
    """CPU used so far by the `scrm serve` process on ``port`` and its worker processes (from /proc)."""
    stats = {}
    roots = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                stats[int(entry)] = st
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = fh.read().split(b"\x00")
                if b"serve" in args and str(port).encode() in args:
                    roots.append(int(entry))
    family, changed = set(roots), True
    while changed:
        changed = False
        for pid, (ppid, _) in stats.items():
            if ppid in family and pid not in family:
                family.add(pid)
                changed = True
    return sum(stats[p][1] for p in family if p in stats) / os.sysconf("SC_CLK_TCK")


def counts(database_url: str) -> dict[str, int]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(database_url).connect() as conn:
        one = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'pending'),"
            " count(*) FILTER (WHERE attempts = 1 AND status = 'done'), count(*) FILTER (WHERE kind = :k)"
            " FROM wecom_inbox"), {"k": KIND}).one()
        handled = conn.execute(text(
            "SELECT count(*), count(DISTINCT entity_id) FROM audit_log WHERE action = :a AND entity_type = :t"),
            {"a": AUDIT_ACTION, "t": "bench_run_" + RUN}).one()
        nonces = conn.execute(text("SELECT count(*) FROM wecom_nonce")).scalar_one()
    return {"rows": one[0], "done": one[1], "pending": one[2], "done_once": one[3], "bench_kind": one[4],
            "handled": handled[0], "handled_distinct": handled[1], "nonces": nonces}


def recorded_nonces(database_url: str) -> set[str]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(database_url).connect() as conn:
        return set(conn.scalars(text("SELECT nonce FROM wecom_nonce")))


def handled_events(database_url: str) -> set[int]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(database_url).connect() as conn:
        return {int(x) for x in conn.scalars(text(
            "SELECT entity_id FROM audit_log WHERE action = :a AND entity_type = :t"),
            {"a": AUDIT_ACTION, "t": "bench_run_" + RUN})}


def database_cpu_seconds(database_url: str) -> dict[int, float]:
    """CPU used so far by each PostgreSQL backend connected to the bench database (not WAL writer/checkpointer)."""
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(database_url).connect() as conn:
        pids = list(conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND pid <> pg_backend_pid()")))
    hz = os.sysconf("SC_CLK_TCK")
    return {pid: st[1] / hz for pid in pids if (st := _stat(pid))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench callbacks")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", default="", help="Celery broker (tasks to a real worker); empty: embedded")
    parser.add_argument("--workers", type=int, default=1, help="web processes (>1 needs PostgreSQL and Redis)")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto",
                        help="auto: wrk if installed (apt-get install -y wrk), else the Python/httpx generator")
    parser.add_argument("--duration", type=float, default=20, help="seconds per wrk run")
    parser.add_argument("--max-rate", type=int, default=5000,
                        help="wrk: callbacks/s the pre-generated set must cover for --duration (a run that uses "
                             "them all up is flagged)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--requests", type=int, default=6000, help="Python generator: requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--redeliver", type=float, default=0.10)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--run-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true", help="print, do not append to BENCHMARKS.md")
    parser.add_argument("--fresh-schema", action="store_true",
                        help="PostgreSQL: drop and recreate the bench database's schema before migrating")
    parser.add_argument("--notes", default="", help="appended to the notes line (e.g. the machine's load)")
    args = parser.parse_args(argv)
    if args.run_worker:
        run_worker(args.worker_concurrency)
        return

    use_wrk = args.load_generator == "wrk" or (args.load_generator == "auto" and wrk.find() is not None)
    if use_wrk and wrk.find() is None:
        raise SystemExit(wrk.INSTALL_HINT.split(";")[0])
    if not use_wrk and args.load_generator == "auto":
        print(wrk.INSTALL_HINT, file=sys.stderr)

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='scrm-bench-')}/bench.db"
    is_pg = url.startswith("postgresql")
    env = base_env(url, args.redis_url)
    prepare(env, fresh_schema=args.fresh_schema)
    if args.redis_url:  # leftovers of an earlier run in the bench's broker database would be processed too
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()

    rng = random.Random(7)  # noqa: S311 - picking re-deliveries, not security
    t0 = time.perf_counter()
    warm, warm_events = seal_all(300, args.redeliver, 0, rng)
    n_measured = int(args.max_rate * args.duration) if use_wrk else args.requests
    measured, measured_events = seal_all(n_measured, args.redeliver, 1_000_000, rng)
    seal_seconds = time.perf_counter() - t0
    label = f"POST /wecom/callback (signed, encrypted; ~{args.redeliver:.0%} re-deliveries)"

    with harness.server(env, workers=args.workers) as base:
        port = int(base.rsplit(":", 1)[1])
        # warm-up (not measured): every web process opens its pool, imports, JITs nothing but caches plenty
        harness.load("warm-up", lambda i: base + warm[i][0], method="POST", concurrency=min(args.concurrency, 8),
                     total=len(warm), body_factory=lambda i: warm[i][1], warmup=0)
        cpu0 = server_cpu_seconds(port)
        if use_wrk:
            healthz = wrk.run_get("GET /healthz", f"{base}/healthz", duration=args.duration,
                                  connections=args.concurrency, threads=args.wrk_threads)
        else:
            healthz = harness.load("GET /healthz", f"{base}/healthz", concurrency=args.concurrency,
                                   total=args.requests, warmup=0)
        cpu1 = server_cpu_seconds(port)
        time.sleep(1)
        cpu2, db2 = server_cpu_seconds(port), database_cpu_seconds(url) if is_pg else {}
        if use_wrk:
            result = wrk.run_replay(label, base, measured, duration=args.duration, connections=args.concurrency,
                                    threads=args.wrk_threads)
        else:
            result = harness.load(label, lambda i: base + measured[i][0], method="POST",
                                  concurrency=args.concurrency, total=len(measured),
                                  body_factory=lambda i: measured[i][1], warmup=0)
        cpu3, db3 = server_cpu_seconds(port), database_cpu_seconds(url) if is_pg else {}
        load_avg = os.getloadavg()
        accepted_at = counts(url)
        drain_seconds = None
        if args.redis_url:
            started = time.perf_counter()
            with worker(env, args.worker_concurrency):
                deadline = time.monotonic() + args.drain_timeout
                while time.monotonic() < deadline:
                    now = counts(url)
                    if now["pending"] == 0 and now["handled"] >= now["bench_kind"]:
                        break
                    time.sleep(0.5)
                drain_seconds = time.perf_counter() - started
                time.sleep(2)  # a duplicate delivery, if any, would land now
            final = counts(url)
        else:
            time.sleep(5)
            final = counts(url)

    # What the server accepted: the nonces it recorded. Every answered request must be among them; with
    # wrk, requests still in flight when the clock stopped may have been stored too (at most one per connection).
    nonces = recorded_nonces(url)
    event_of = {**warm_events, **measured_events}
    stray = nonces - event_of.keys()
    measured_recorded = len(nonces & measured_events.keys())
    expected_events = {event_of[n] for n in nonces if n in event_of}
    issued = getattr(result, "issued", result.requests)
    checks = {
        "no request failed": result.errors == 0,
        "pre-generated requests not used up": not getattr(result, "exhausted", False),
        f"every answered request's nonce recorded (answered {result.requests} ≤ recorded {measured_recorded} ≤ "
        f"sent {issued})": result.requests <= measured_recorded <= issued and not stray
        and len(nonces & warm_events.keys()) == len(warm),
        f"inbox rows == distinct events of the accepted requests ({len(expected_events)})":
            final["rows"] == len(expected_events),
    }
    if args.redis_url:
        handled = handled_events(url)
        checks.update({
            "every row done, each after one attempt": final["done_once"] == final["rows"] == final["done"],
            "handler side effect exactly once per accepted event":
                final["handled"] == final["handled_distinct"] == len(expected_events) and handled == expected_events,
        })
    target = result.rps >= 1000 and result.pct(99) < 50
    server_ms = 1000 * (cpu3 - cpu2) / max(1, result.requests)
    db_ms = 1000 * sum(cpu - db2.get(pid, 0.0) for pid, cpu in db3.items()) / max(1, result.requests)
    gen_ms = 1000 * result.cpu_seconds / max(1, result.requests) if use_wrk else None
    lines = [*TABLE_HEAD, healthz.row(), result.row(), "",
             f"Callbacks: {result.rps:,.0f}/s, {result.rps / healthz.rps:.2f}× /healthz; p50 {result.pct(50):.1f} ms, "
             f"p99 {result.pct(99):.1f} ms. Target ≥1,000/s with p99 < 50 ms: "
             f"{'met' if target else 'NOT met'}.",
             f"{len(nonces)} callbacks accepted ({len(warm)} warm-up; {len(nonces) - len(expected_events)} "
             f"re-deliveries of {len(expected_events)} distinct events); at the end of the timed run "
             f"{accepted_at['rows']} inbox rows existed.",
             f"CPU per request (from /proc): server (all its processes) /healthz "
             f"{1000 * (cpu1 - cpu0) / max(1, healthz.requests):.2f} ms, callback {server_ms:.2f} ms"
             + (f"; PostgreSQL backends {db_ms:.2f} ms per callback" if is_pg else "")
             + (f"; wrk {gen_ms:.3f} ms" if gen_ms is not None else "")
             + f". Load average at the end {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f} on "
             f"{os.cpu_count()} cores."]
    if use_wrk:
        lines.append(f"wrk percentiles (callbacks): p50 {result.p50_ms:.1f}, p90 {result.p90_ms:.1f}, "
                     f"p99 {result.p99_ms:.1f}, p99.9 {result.p999_ms:.1f}, max {result.max_ms:.1f} ms; "
                     "closed loop (each connection waits for its answer), so stalls hide the requests that would "
                     "have arrived meanwhile (coordinated omission; wrk2 is not packaged).")
    if drain_seconds is not None:
        lines.append(f"A real Celery worker (concurrency {args.worker_concurrency}), started after the timed run, "
                     f"drained {final['rows']} events in {drain_seconds:.1f} s "
                     f"({final['rows'] / drain_seconds:,.0f}/s).")
    lines.append("Checks: " + "; ".join(f"{name}: {'ok' if ok else 'FAILED'}" for name, ok in checks.items())
                 + f" (counts {final}).")
    db_kind = "PostgreSQL" if is_pg else "SQLite (embedded default)"
    generator = (f"wrk ({args.wrk_threads} thread(s), {args.concurrency} connections, {args.duration:g} s per "
                 f"endpoint) replaying {len(measured)} pre-generated requests" if use_wrk else
                 f"Python/httpx generator on the same machine, {args.concurrency} connections")
    notes = (f"{args.workers} `scrm serve` process(es), {db_kind}, "
             f"{'Redis + Celery' if args.redis_url else 'in-process tasks'}; load generator: {generator}; every "
             f"body sealed and signed before the timed window ({seal_seconds:.1f} s)"
             + (f"; {args.notes}" if args.notes else ""))
    command = ("python -m bench callbacks "
               + (f"--duration {args.duration:g} " if use_wrk else f"--requests {args.requests} --load-generator python ")
               + f"--concurrency {args.concurrency} --workers {args.workers}"
               + (" --database-url …" if args.database_url else "") + (" --redis-url …" if args.redis_url else ""))
    if args.no_record:
        print("\n".join([notes, *lines]))
    else:
        print(harness.record("WeCom callbacks accepted vs /healthz", command, lines, notes=notes))
    if not all(checks.values()):
        raise SystemExit("callback bench checks failed: " + ", ".join(n for n, ok in checks.items() if not ok))
