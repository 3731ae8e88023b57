"""Fault tests of the callback path: what the service does when Redis, PostgreSQL or the web process
dies while signed WeCom callbacks keep arriving, and whether anything answered "success" is lost or
handled twice.

Every scenario runs its OWN Redis (``redis-server`` on a port of its own, append-only file on, as in
production) and, for the PostgreSQL scenario, its OWN PostgreSQL (``initdb`` + ``pg_ctl`` in a temp
dir): the shared servers are never touched. A real ``scrm serve`` and a real Celery worker (with the
outbox relay thread, no beat: the inbox sweep does not help) process the callbacks of the bench kind
(see :mod:`bench.callbacks`); the load is a steady stream of pre-sealed callbacks, ~10% re-deliveries.

- ``redis``: Redis shut down for ``--outage`` seconds (default 30) in the middle of the stream.
- ``postgres``: the private PostgreSQL stopped (``pg_ctl stop -m fast``) for ``--outage`` seconds.
- ``web-kill``: the web process SIGKILLed under load, restarted after ``--outage`` seconds.

Checks (each printed and recorded in BENCHMARKS.md): every answered-200 request's nonce is stored;
inbox rows == the distinct events of the stored requests; the handler's side effect exactly once per
stored event; no outbox row left pending or dead; failed requests failed fast (no hang).

    python -m bench faults redis --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test_outbox_fault
    python -m bench faults postgres
    python -m bench faults web-kill --database-url …
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from bench import callbacks, harness

REDIS_PORT = 18301
PG_PORT = 18302
WEB_PORT = 18310


# --- private servers ------------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, root: Path, port: int = REDIS_PORT) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def stop(self) -> None:
        """SHUTDOWN (SIGTERM): Redis writes its append-only file and exits, as an operator's restart does."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None


class PrivatePostgres:
    def __init__(self, root: Path, port: int = PG_PORT) -> None:
        self.data = root / "pgdata"
        self.sock = root / "pgsock"
        self.port = port
        self.log = root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/scrm_fault"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        """PostgreSQL refuses to run as root: as root, its programs run as the ``postgres`` system user."""
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def init(self) -> None:
        self.sock.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(self.data.parent, 0o755)
            for path in (self.sock, self.data):
                shutil.chown(path, "postgres", "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        subprocess.run(self._as_owner(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E",
                                       "UTF8", "--locale=C.UTF-8"]), check=True, stdout=subprocess.DEVNULL)
        self.start()
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "scrm_fault"],
                       check=True)

    def start(self) -> None:
        subprocess.run(self._as_owner([
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o",
            f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=100", "start"]),
            check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run(self._as_owner(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"]), check=False,
                       stdout=subprocess.DEVNULL)


def _wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


class WebServer:
    def __init__(self, env: dict[str, str], log: Path, port: int = WEB_PORT) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import socket

        with socket.socket() as probe:  # another server answering /healthz here would fake the whole drill
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as exc:
                raise RuntimeError(f"port {self.port} is taken: a server left over from an earlier run?") from exc
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "core.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env={**os.environ, **self.env, "SCRM_LOG_LEVEL": "WARNING"}, cwd=harness.ROOT,
                stdout=fh, stderr=fh)
        deadline = time.monotonic() + 180  # a loaded machine imports the application slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("server did not answer /healthz within 180 s")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


# --- the stream of callbacks ------------------------------------------------------------------------


@dataclass
class Outcome:
    nonce: str
    sent_at: float
    seconds: float
    status: int | None  # None: no answer (connection refused / reset / timeout)
    error: str = ""


@dataclass
class Stream:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def stream(base: str, requests: list[tuple[str, bytes]], rate: float, threads: int, t0: float) -> Stream:
    """Send ``requests`` at ``rate`` per second from ``threads`` threads; every outcome is recorded."""
    out = Stream()
    counter = iter(range(len(requests)))
    counter_lock = threading.Lock()

    def run() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with counter_lock:
                    i = next(counter, None)
                if i is None:
                    return
                due = t0 + i / rate
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                path, body = requests[i]
                nonce = parse_qs(urlsplit(path).query)["nonce"][0]
                started = time.monotonic()
                try:
                    r = client.post(base + path, content=body)
                    outcome = Outcome(nonce, started - t0, time.monotonic() - started, r.status_code,
                                      "" if r.status_code == 200 else r.text[:120])
                except httpx.HTTPError as exc:
                    outcome = Outcome(nonce, started - t0, time.monotonic() - started, None, type(exc).__name__)
                with out.lock:
                    out.outcomes.append(outcome)

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return out


def outbox_counts(database_url: str) -> dict[str, int]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(database_url).connect() as conn:
        rows = conn.execute(text("SELECT status, count(*), count(*) FILTER (WHERE attempts > 0) "
                                 "FROM task_outbox GROUP BY status")).all()
    found: dict[str, int] = {}
    for status, n, relayed in rows:
        found[status] = n
        found[f"{status}_relayed"] = relayed
    return found


def drain(url: str, timeout: float) -> tuple[dict[str, int], float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        now = callbacks.counts(url)
        box = outbox_counts(url)
        if now["pending"] == 0 and now["handled"] >= now["bench_kind"] and not box.get("pending"):
            break
        time.sleep(1)
    time.sleep(3)  # a duplicate delivery, if any, lands now
    return callbacks.counts(url), time.monotonic() - started


def verdict(url: str, result: Stream, event_of: dict[str, int]) -> tuple[dict[str, bool], list[str]]:
    nonces = callbacks.recorded_nonces(url)
    answered_ok = {o.nonce for o in result.outcomes if o.status == 200}
    refused = [o for o in result.outcomes if o.status != 200]
    expected = {event_of[n] for n in nonces if n in event_of}
    final = callbacks.counts(url)
    handled = callbacks.handled_events(url)
    box = outbox_counts(url)
    statuses = Counter(str(o.status) if o.status else o.error for o in result.outcomes)
    slowest_failure = max((o.seconds for o in refused), default=0.0)
    checks = {
        f"most requests outside the fault answered 200 ({len(answered_ok)} of {len(result.outcomes)})":
            len(answered_ok) >= len(result.outcomes) // 3,
        f"every answered-200 request stored ({len(answered_ok)} answered 200)": answered_ok <= nonces,
        f"inbox rows == distinct events of the stored requests ({len(expected)})": final["rows"] == len(expected),
        "handler side effect exactly once per stored event":
            final["handled"] == final["handled_distinct"] == len(expected) and handled == expected,
        "no outbox row left pending or dead": not box.get("pending") and not box.get("dead"),
        f"failures answered fast, no hang (slowest failed request {slowest_failure:.1f} s < 10 s)":
            slowest_failure < 10,
    }
    lines = [
        f"Requests: {len(result.outcomes)}; outcomes {dict(statuses)}; stored (nonces) {len(nonces)}, of which "
        f"{len(nonces & {o.nonce for o in refused})} were among the requests NOT answered 200 (WeCom would "
        "re-deliver those; storing one twice is prevented by the event key).",
        f"Inbox {final}; outbox rows by status {box} (`*_relayed`: rows the relay had to send, attempts > 0).",
    ]
    answers = Counter(f"{o.status}: {o.error[:80]}" for o in refused if o.status)
    if answers:
        lines.append(f"Error answers: {dict(answers.most_common(3))}.")
    return checks, lines


def _timeline(result: Stream, bucket: float = 5.0) -> str:
    """Outcomes per time bucket: how the service behaved before, during and after the fault."""
    buckets: dict[int, Counter] = {}
    for o in result.outcomes:
        buckets.setdefault(int(o.sent_at // bucket), Counter())[str(o.status) if o.status else "no answer"] += 1
    return "; ".join(f"{int(k * bucket)}-{int((k + 1) * bucket)} s: {dict(v)}" for k, v in sorted(buckets.items()))


# --- scenarios ----------------------------------------------------------------------------------


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bench", "callbacks", "--run-worker", "--worker-concurrency", "2"]
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, env={**os.environ, **env, "SCRM_OUTBOX_RELAY_INTERVAL_SECONDS": "1"},
                                cwd=harness.ROOT, stdout=fh, stderr=fh, start_new_session=True)


def _end(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """End a process we started and the children of its session (a prefork worker's pool)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def _worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    proc = _start_worker(env, log)
    try:
        yield proc
    finally:
        _end(proc)


def worker_kill(url: str, env: dict[str, str], root: Path, web: WebServer, requests: list[tuple[str, bytes]],
                args: argparse.Namespace) -> tuple[Stream, list[str], float]:
    """Callbacks stored with no worker running; a worker starts draining them and is SIGKILLed (its whole
    process group) a third of the way; a new worker and beat (the inbox sweep) finish the work."""
    events: list[str] = []
    t0 = time.monotonic()
    result = stream(web.base, requests, args.rate, args.threads, t0)
    stored = callbacks.counts(url)["bench_kind"]
    events.append(f"{stored} events stored with no worker running")
    worker = _start_worker(env, root / "worker.log")
    deadline = time.monotonic() + 300
    while callbacks.counts(url)["handled"] < stored // 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    events.append(f"worker SIGKILLed after {callbacks.counts(url)['handled']} were handled")
    time.sleep(2)
    worker = _start_worker(env, root / "worker2.log")
    with (root / "beat.log").open("ab") as fh:
        beat = subprocess.Popen([sys.executable, "-m", "core.cli", "beat"], env={**os.environ, **env}, cwd=root,
                                stdout=fh, stderr=fh, start_new_session=True)
    events.append("a new worker and `scrm beat` started")
    try:
        final, drain_seconds = drain(url, args.drain_timeout)
    finally:
        _end(worker)
        _end(beat)
    return result, events, drain_seconds


def fault_during_stream(scenario: str, url: str, env: dict[str, str], root: Path, web: WebServer,
                        redis_srv: PrivateRedis, pg: PrivatePostgres | None, requests: list[tuple[str, bytes]],
                        args: argparse.Namespace) -> tuple[Stream, list[str], float]:
    """The fault starts ``--fault-after`` seconds into the stream and ends ``--outage`` seconds later."""
    events: list[str] = []
    with _worker(env, root / "worker.log"):
        t0 = time.monotonic() + 1
        fault_at, back_at = t0 + args.fault_after, t0 + args.fault_after + args.outage

        def inject() -> None:
            time.sleep(max(0.0, fault_at - time.monotonic()))
            {"redis": redis_srv.stop, "postgres": lambda: pg.stop(), "web-kill": web.kill}[scenario]()
            events.append(f"fault at {time.monotonic() - t0:.1f} s")
            time.sleep(max(0.0, back_at - time.monotonic()))
            {"redis": redis_srv.start, "postgres": lambda: pg.start(), "web-kill": web.start}[scenario]()
            events.append(f"back at {time.monotonic() - t0:.1f} s")

        injector = threading.Thread(target=inject, daemon=True)
        injector.start()
        result = stream(web.base, requests, args.rate, args.threads, t0)
        injector.join()
        _, drain_seconds = drain(url, args.drain_timeout)
    return result, events, drain_seconds





def run(scenario: str, args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"scrm-fault-{scenario}-"))
    redis_srv = PrivateRedis(root)
    pg = PrivatePostgres(root) if scenario == "postgres" else None
    try:
        redis_srv.start()
        if pg is not None:
            pg.init()
        url = pg.url if pg is not None else args.database_url
        if not url:
            raise SystemExit("--database-url (a PostgreSQL database of your own) is needed for this scenario")
        env = callbacks.base_env(url, redis_srv.url)
        env["SCRM_BASE_URL"] = f"http://127.0.0.1:{WEB_PORT}"  # the worker reaches the WeCom simulator there
        callbacks.prepare(env, fresh_schema=pg is None)
        rng = random.Random(11)  # noqa: S311
        total = int(args.rate * args.duration)
        requests, event_of = callbacks.seal_all(total, 0.10, 0, rng)
        web = WebServer(env, root / "web.log")
        try:
            web.start()
            if scenario == "worker-kill":
                result, events, drain_seconds = worker_kill(url, env, root, web, requests, args)
            else:
                result, events, drain_seconds = fault_during_stream(scenario, url, env, root, web, redis_srv, pg,
                                                                    requests, args)
        finally:
            web.stop()
        checks, lines = verdict(url, result, event_of)
        lines.insert(0, f"Fault: {DESCRIPTIONS[scenario].format(outage=args.outage)}; {', '.join(events)} into a "
                        f"{args.duration:g} s stream of {args.rate:g} callbacks/s ({args.threads} client threads).")
        lines.append(f"Timeline (request start → outcome): {_timeline(result)}.")
        lines.append(f"Drained {drain_seconds:.0f} s after the stream ended (the worker's outbox relay every 1 s; "
                     f"rows are relayed 30 s after they were due).")
        lines.append("Checks: " + "; ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in checks.items()) + ".")
        database = f"private PostgreSQL (initdb, port {PG_PORT})" if pg else "PostgreSQL (own database)"
        notes = (f"private redis-server (appendonly) on port {REDIS_PORT}; {database}; one `scrm serve` on port "
                 f"{WEB_PORT}; one Celery worker (concurrency 2, its outbox relay"
                 + ("; after the kill a new worker and `scrm beat`)" if scenario == "worker-kill" else ", no beat)")
                 + "; the machine is shared with other engineers' work")
        command = f"python -m bench faults {scenario} --duration {args.duration:g} --rate {args.rate:g} " \
                  f"--outage {args.outage:g}" + (" --database-url …" if pg is None else "")
        if args.no_record:
            print("\n".join([notes, *lines]))
        else:
            print(harness.record(f"Fault: {TITLES[scenario]}", command, lines, notes=notes))
        if not all(checks.values()):
            raise SystemExit(f"fault scenario {scenario}: checks failed; logs in {root}")
    finally:
        with contextlib.suppress(Exception):
            redis_srv.stop()
        if pg is not None:
            pg.stop()
    shutil.rmtree(root, ignore_errors=True)


TITLES = {"redis": "Redis down while WeCom callbacks arrive", "postgres": "PostgreSQL restarted while callbacks arrive",
          "web-kill": "web process SIGKILLed under callback load",
          "worker-kill": "Celery worker SIGKILLed while processing stored callbacks"}
DESCRIPTIONS = {"redis": "Redis shut down for {outage:g} s", "postgres": "PostgreSQL stopped (fast) for {outage:g} s",
                "web-kill": "`scrm serve` SIGKILLed, restarted {outage:g} s later",
                "worker-kill": "the worker killed mid-drain"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench faults")
    parser.add_argument("scenario", choices=sorted(TITLES))
    parser.add_argument("--database-url", default=os.environ.get("SCRM_FAULT_DATABASE_URL", ""),
                        help="redis / web-kill: a PostgreSQL database of your own (its schema is reset)")
    parser.add_argument("--duration", type=float, default=70)
    parser.add_argument("--rate", type=float, default=40, help="callbacks per second")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--fault-after", type=float, default=10)
    parser.add_argument("--outage", type=float, default=30)
    parser.add_argument("--drain-timeout", type=float, default=400)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    run(args.scenario, args)
