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
from collections.abc import Callable, Iterator
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


def _start_beat(env: dict[str, str], root: Path) -> subprocess.Popen:
    """`scrm beat`, the one periodic scheduler of a production deployment (the inbox sweep, the import sweep)."""
    with (root / "beat.log").open("ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "core.cli", "beat"], env={**os.environ, **env}, cwd=root,
                                stdout=fh, stderr=fh, start_new_session=True)


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
    beat = _start_beat(env, root)
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


# --- work drills: a worker SIGKILLed mid-way through a handover, a lead import, a mass send --------------
#
# Each seeds its work through the services (as the console would), lets a real worker start on it, SIGKILLs
# the worker's process group once ``--kill-at`` of it is done, starts a new worker, and checks the database
# and the WeCom simulator's own records: every customer handled exactly once. The worker runs with a short
# broker visibility timeout (SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS, ``--visibility``) so that the task the
# killed worker held comes back in a drill's time, not Celery's default hour.

DRILL_SOURCE = "fault-drill"


@dataclass
class Drill:
    """One work drill: ``seed`` starts the work (returns a description), ``progress`` is (done, total),
    ``finished`` is true when the work is complete, ``checks`` reads the outcome."""

    seed: Callable[[], str]
    progress: Callable[[], tuple[int, int]]
    finished: Callable[[], bool]
    checks: Callable[[], tuple[dict[str, bool], list[str]]]
    after_restart: Callable[[], list[str]] = lambda: []


def _sim(web: WebServer, path: str, body: dict | None = None, *, get: bool = False) -> dict:
    url = f"{web.base}/_wecom_sim/_admin/{path}"
    r = httpx.get(url, timeout=120) if get else httpx.post(url, json=body or {}, timeout=120)
    r.raise_for_status()
    return r.json()


def _org(admin_name: str = "drill_admin") -> tuple[int, int]:
    """A company department and an admin; returns their ids."""
    from core.db import unit_of_work
    from crm import org_service

    with unit_of_work() as s:
        company = org_service.create_department(s, "总公司", "company", None)
        admin = org_service.create_staff(s, org_service.StaffInput(
            username=admin_name, display_name="演练管理员", role="admin", department_id=company.id))
        return company.id, admin.id


def _viewer(admin_id: int):  # noqa: ANN202
    from core.db import unit_of_work
    from crm import org_service
    from crm.scope import Viewer

    with unit_of_work() as s:
        return Viewer.of(org_service.get_staff(s, admin_id))


def _scalar(url: str, sql: str, **params: object) -> int:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one() or 0)


def handover_drill(url: str, web: WebServer, args: argparse.Namespace) -> Drill:
    """离职继承 of a salesperson with ``--customers`` customers, every one a WeCom contact of the leaver in the
    simulator: the CRM moves them in one transaction, the worker requests 100 transfers per WeCom call."""
    n = args.customers
    state: dict[str, int] = {}

    def seed() -> str:
        from sqlalchemy import insert

        from core import clock
        from core.db import unit_of_work
        from crm import handover_flows, org_service
        from crm.handover import Plan
        from crm.models import Customer

        company_id, admin_id = _org()
        with unit_of_work() as s:
            home = org_service.create_department(s, "销售一部", "center", company_id)
            leaver = org_service.create_staff(s, org_service.StaffInput(
                username="leaver", display_name="离职销售", role="sales", department_id=home.id,
                wecom_userid="DrillLeaver", capacity=100_000))
            successor = org_service.create_staff(s, org_service.StaffInput(
                username="successor", display_name="接班人", role="sales", department_id=home.id,
                wecom_userid="DrillSuccessor", capacity=100_000))
            now = clock.now()
            rows = [{"name": f"客户{i}", "name_initials": "kh", "source": DRILL_SOURCE, "customer_type": "credit",
                     "stage": "new", "status": "owned", "owner_id": leaver.id, "assigned_at": now, "created_at": now,
                     "updated_at": now, "wecom_external_userid": f"wmdrill{i:06d}"} for i in range(n)]
            for start in range(0, n, 2000):
                s.execute(insert(Customer), rows[start:start + 2000])
            leaver_id, successor_id = leaver.id, successor.id
        for start in range(0, n, 2000):
            _sim(web, "contacts", {"contacts": [{"userid": "DrillLeaver", "external_userid": f"wmdrill{i:06d}"}
                                                for i in range(start, min(n, start + 2000))]})
        _sim(web, "user/leave", {"userid": "DrillLeaver"})
        viewer = _viewer(admin_id)
        with unit_of_work() as s:
            case_id = handover_flows.start_departure(s, viewer, leaver_id).id
        with unit_of_work() as s:
            result = handover_flows.execute_case(s, viewer, case_id, Plan("successor", to_staff_id=successor_id))
            moved, requested = result.moved, result.transfers_requested
        state.update(case=case_id, successor=successor_id)
        return (f"case {case_id}: {moved} customers moved to the successor in the CRM (one transaction), "
                f"{requested} WeCom transfers requested")

    def progress() -> tuple[int, int]:
        return _scalar(url, "SELECT count(*) FROM wecom_transfer WHERE case_id = :c AND status <> 'requested'",
                       c=state["case"]), n

    def finished() -> bool:
        return progress()[0] >= n

    def checks() -> tuple[dict[str, bool], list[str]]:
        sim = _sim(web, "state", get=True)
        per_customer = Counter(t["external_userid"] for t in sim["transfers"] if t["handover"] == "DrillLeaver")
        calls = [r for r in _sim(web, "requests?path=resigned/transfer_customer", get=True).get("requests", [])]
        by_status = dict(_rows(url, "SELECT status, count(*) FROM wecom_transfer WHERE case_id = :c GROUP BY status",
                               c=state["case"]))
        rows_per_customer = _scalar(url, "SELECT count(*) FROM (SELECT customer_id FROM wecom_transfer WHERE case_id = :c "
                                         "GROUP BY customer_id HAVING count(*) > 1) d", c=state["case"])
        owned = _scalar(url, "SELECT count(*) FROM customer WHERE owner_id = :o AND source = :src",
                        o=state["successor"], src=DRILL_SOURCE)
        expected = {f"wmdrill{i:06d}" for i in range(n)}
        checks = {
            f"every customer owned by the successor in the CRM ({owned} of {n})": owned == n,
            f"one transfer row per customer (customers with more than one: {rows_per_customer})": rows_per_customer == 0,
            f"every transfer row settled, none still requested or failed ({by_status})":
                set(by_status) == {"waiting"} and by_status["waiting"] == n,
            f"the simulator holds exactly one transfer per customer ({len(per_customer)} customers, "
            f"max {max(per_customer.values(), default=0)} each)":
                set(per_customer) == expected and max(per_customer.values(), default=0) == 1,
        }
        answered = Counter(c.get("errcode", 0) for c in calls)
        return checks, [f"Simulator: {sum(per_customer.values())} transfers recorded; transfer calls in its log "
                        f"(last {len(calls)}): errcodes {dict(answered)}. Transfer rows by status: {by_status}."]

    return Drill(seed, progress, finished, checks)


def _rows(url: str, sql: str, **params: object) -> list[tuple]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def _import_file(root: Path, rows: int, dups: int) -> Path:
    """A lead file of ``rows`` distinct phone numbers plus ``dups`` in-file repeats of earlier rows."""
    import csv

    path = root / "drill-leads.csv"
    rng = random.Random(5)  # noqa: S311
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["客户姓名", "手机号码", "所在城市", "贷款金额(万元)", "备注"])
        for i in range(rows):
            w.writerow([f"演练客户{i}", f"166{i:08d}", "上海", "10", ""])
            if i and rng.random() < dups / rows:
                j = rng.randrange(i)
                w.writerow([f"演练客户{j}", f"166{j:08d}", "上海", "10", "重复"])
    return path


def _file_phone_indexes(rows: int) -> set[str]:
    from core import pii

    return {pii.blind_index("phone", pii.normalize_phone(f"166{i:08d}")) for i in range(rows)}


def import_drill(url: str, web: WebServer, args: argparse.Namespace, root: Path) -> Drill:
    """A lead import of ``--rows`` rows (plus ~3% in-file repeats) uploaded as the console does; the worker
    runs it in batches. A killed run's job is shown interrupted once its heartbeat is older than
    SCRM_IMPORT_STALE_MINUTES; the periodic sweep (`scrm beat`) then re-runs it by itself (a new job, the same
    file): nobody clicks 重新导入."""
    n = args.rows
    state: dict[str, int] = {}

    def seed() -> str:
        from core.db import unit_of_work
        from crm.importer import uploads

        _, admin_id = _org()
        path = _import_file(root, n, n * 3 // 100)
        with unit_of_work() as s, path.open("rb") as fh:
            job = uploads.start(s, _viewer(admin_id), fh, "演练线索.csv", source=DRILL_SOURCE)
            state.update(job=job.id, admin=admin_id)
        return f"import job {state['job']} queued ({n} distinct phone numbers)"

    def progress() -> tuple[int, int]:
        return _scalar(url, "SELECT count(*) FROM customer WHERE source = :s", s=DRILL_SOURCE), n

    def finished() -> bool:
        return _scalar(url, "SELECT count(*) FROM crm_import_job WHERE status IN ('queued', 'running')") == 0 and (
            _scalar(url, "SELECT count(*) FROM crm_import_job WHERE status = 'done'") > 0)

    def after_restart() -> list[str]:
        return await_import(url)

    def checks() -> tuple[dict[str, bool], list[str]]:
        return import_checks(url, n)

    return Drill(seed, progress, finished, checks, after_restart)


def await_import(url: str, timeout: float = 900) -> list[str]:
    """Until an import job is done, with nobody re-running anything: the sweep (``crm.expire_import_jobs``, sent
    by `scrm beat`) declares an interrupted job failed and re-runs it by itself. Returns what it did."""
    import re

    from crm.importer import jobs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _scalar(url, "SELECT count(*) FROM crm_import_job WHERE status = 'done'"):
        time.sleep(2)
    note = re.compile(re.escape(jobs.RESUMED).replace(r"\{id\}", r"(\d+)"))
    events = []
    for job_id, status, message in _rows(url, "SELECT id, status, coalesce(message, '') FROM crm_import_job "
                                              "ORDER BY id"):
        found = note.search(message)
        if found:
            events.append(f"job {job_id} ({message.partition('。')[0]}) re-run by the sweep as job {found[1]}")
        elif status == "failed":
            events.append(f"job {job_id} failed and was NOT re-run by the sweep")
    if not _scalar(url, "SELECT count(*) FROM crm_import_job WHERE status = 'done'"):
        events.append("gave up waiting for the import")
    return events


def import_checks(url: str, n: int) -> tuple[dict[str, bool], list[str]]:
    from sqlalchemy import text

    from core.db import get_engine

    with get_engine(url).connect() as conn:
        indexes = set(conn.scalars(text("SELECT phone_index FROM customer WHERE source = :s"), {"s": DRILL_SOURCE}))
        total = conn.execute(text("SELECT count(*), count(DISTINCT phone_index) FROM customer")).one()
        jobs_ = [tuple(r) for r in conn.execute(text(
            "SELECT id, status, processed, created, duplicates_in_file, duplicates_existing, errors, "
            "coalesce(message, '') FROM crm_import_job ORDER BY id"))]
    created = sum(j[3] for j in jobs_)
    expected = _file_phone_indexes(n)
    checks = {
        f"every row of the file imported: {len(indexes & expected)} of {n} phone numbers present":
            expected <= indexes,
        f"no duplicates: {total[0]} customers, {total[1]} distinct phone numbers, nothing outside the file":
            total[0] == total[1] == n and indexes == expected,
        f"the jobs' created counters add up to the customers ({created})": created == n,
        "the last job finished (done)": bool(jobs_) and jobs_[-1][1] == "done",
    }
    lines = ["Jobs (id, status, processed, created, duplicates in file, existing, errors, message): "
             + "; ".join(f"{j[:7]}" + (f" «{j[7][:80]}»" if j[7] else "") for j in jobs_) + "."]
    return checks, lines


def mass_drill(url: str, web: WebServer, args: argparse.Namespace) -> Drill:
    """群发 to ``--customers`` customers owned by ``--senders`` salespeople (one add_msg_template each, over
    real HTTP to the simulator), every customer a contact of its owner in the simulator."""
    n, senders = args.customers, args.senders
    state: dict[str, int] = {}

    def seed() -> str:
        from sqlalchemy import insert

        from bot import mass_messages
        from core import clock
        from core.db import unit_of_work
        from crm import org_service, segments
        from crm.models import Customer

        company_id, admin_id = _org()
        with unit_of_work() as s:
            staff = [org_service.create_staff(s, org_service.StaffInput(
                username=f"sales{k}", display_name=f"销售{k}", role="sales", department_id=company_id,
                wecom_userid=f"DrillSales{k:03d}", capacity=100_000)) for k in range(senders)]
            now = clock.now()
            rows = [{"name": f"客户{i}", "name_initials": "kh", "source": DRILL_SOURCE, "customer_type": "credit",
                     "stage": "new", "status": "owned", "owner_id": staff[i % senders].id, "assigned_at": now,
                     "created_at": now, "updated_at": now, "region": "上海",
                     "wecom_external_userid": f"wmmass{i:06d}"} for i in range(n)]
            for start in range(0, n, 2000):
                s.execute(insert(Customer), rows[start:start + 2000])
        for start in range(0, n, 2000):
            _sim(web, "contacts", {"contacts": [{"userid": f"DrillSales{i % senders:03d}",
                                                 "external_userid": f"wmmass{i:06d}"}
                                                for i in range(start, min(n, start + 2000))]})
        viewer = _viewer(admin_id)
        with unit_of_work() as s:
            segment = segments.create_segment(s, None, "演练客户", {"op": "and", "rules": [
                {"field": "region", "cmp": "equals", "value": "上海"}]}, for_mass_message=True)
            message = mass_messages.create_message(s, viewer, mass_messages.MassInput(
                title="故障演练", segment_id=segment.id, text="演练群发：本周利率优惠"))
            s.flush()
            mass_messages.submit(s, viewer, message.id)
            state["message"] = message.id
        sends = _scalar(url, "SELECT count(*) FROM wecom_mass_message_send WHERE mass_message_id = :m",
                        m=state["message"])
        return f"mass message {state['message']} submitted: {n} recipients, {sends} templates (one per sender)"

    def progress() -> tuple[int, int]:
        return _scalar(url, "SELECT count(*) FROM wecom_mass_message_send WHERE mass_message_id = :m "
                            "AND status NOT IN ('pending', 'submitting')", m=state["message"]), senders

    def finished() -> bool:
        return progress()[0] >= senders

    def checks() -> tuple[dict[str, bool], list[str]]:
        sim = _sim(web, "state", get=True)
        drill = [m for m in sim["messages"].values() if (m.get("text") or {}).get("content") == "演练群发：本周利率优惠"]
        per_customer = Counter(r["external_userid"] for m in drill for r in m["results"] if "external_userid" in r)
        expected = {f"wmmass{i:06d}" for i in range(n)}
        sends = dict(_rows(url, "SELECT status, count(*) FROM wecom_mass_message_send WHERE mass_message_id = :m "
                                "GROUP BY status", m=state["message"]))
        recipients = dict(_rows(url, "SELECT status, count(*) FROM wecom_mass_message_recipient "
                                     "WHERE mass_message_id = :m GROUP BY status", m=state["message"]))
        msgids = {m["msgid"] for m in drill}
        ours = {r[0] for r in _rows(url, "SELECT msgid FROM wecom_mass_message_send WHERE mass_message_id = :m",
                                    m=state["message"])}
        twice = sum(1 for v in per_customer.values() if v > 1)
        checks = {
            f"every customer in a template the simulator recorded ({len(per_customer)} of {n})":
                set(per_customer) == expected,
            f"each customer messaged exactly once (customers in more than one template: {twice})": twice == 0,
            f"one template per sender in the simulator ({len(drill)} for {senders} senders)": len(drill) == senders,
            f"every send row created with the simulator's msgid ({sends})":
                sends == {"created": senders} and ours == msgids,
            f"every recipient waiting for the salesperson's confirmation ({recipients})": recipients == {"pending": n},
        }
        calls = len(_sim(web, "requests?path=add_msg_template", get=True)["requests"])
        adopted = _scalar(url, "SELECT count(*) FROM audit_log WHERE action = 'wecom.mass.adopted'")
        return checks, [f"Simulator: {calls} add_msg_template calls, {len(drill)} templates, "
                        f"{sum(per_customer.values())} recipients in them; templates adopted by a retry (created by "
                        f"a killed attempt whose answer was lost): {adopted}."]

    return Drill(seed, progress, finished, checks)


def work_kill(scenario: str, url: str, env: dict[str, str], root: Path, web: WebServer,
              args: argparse.Namespace) -> tuple[dict[str, bool], list[str]]:
    drill = {"handover-kill": lambda: handover_drill(url, web, args), "mass-kill": lambda: mass_drill(url, web, args),
             "import-kill": lambda: import_drill(url, web, args, root)}[scenario]()
    env = {**env, "SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS": str(args.visibility),
           "SCRM_IMPORT_STALE_MINUTES": str(args.stale_minutes)}
    events = [drill.seed()]
    t0 = time.monotonic()
    worker = _start_worker(env, root / "worker.log")
    beat = _start_beat(env, root)  # as in production: never killed here
    kills = 0
    watcher: threading.Thread | None = None
    watched: list[str] = []
    try:
        for fraction in args.kill_at:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done, total = drill.progress()
                if done >= total * fraction or drill.finished():
                    break
                time.sleep(0.02)
            done, total = drill.progress()
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
            kills += 1
            events.append(f"worker SIGKILLed at {time.monotonic() - t0:.1f} s with {done} of {total} done")
            time.sleep(1)
            worker = _start_worker(env, root / f"worker{kills + 1}.log")
            events.append(f"new worker started at {time.monotonic() - t0:.1f} s")
            if watcher is None:  # from now on: what happens to an interrupted job (the import's automatic re-run)
                watcher = threading.Thread(target=lambda: watched.extend(drill.after_restart()), daemon=True)
                watcher.start()
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline and not drill.finished():
            time.sleep(1)
        time.sleep(3)  # a duplicate delivery, if any, lands now
        if watcher is not None:
            watcher.join(30)
        events += watched
        events.append(f"{'finished' if drill.finished() else 'NOT finished'} at {time.monotonic() - t0:.1f} s "
                      f"({drill.progress()[0]} of {drill.progress()[1]})")
    finally:
        _end(worker)
        _end(beat)
    checks, lines = drill.checks()
    return checks, ["; ".join(events) + ".", *lines]


def run(scenario: str, args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"scrm-fault-{scenario}-"))
    redis_srv = PrivateRedis(root)
    pg = PrivatePostgres(root) if scenario in ("postgres", "import-postgres") else None
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
        if scenario in WORK_DRILLS:
            run_work_drill(scenario, url, env, root, pg, args)
            shutil.rmtree(root, ignore_errors=True)
            return
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


def import_postgres(url: str, env: dict[str, str], root: Path, web: WebServer, pg: PrivatePostgres | None,
                    args: argparse.Namespace) -> tuple[dict[str, bool], list[str]]:
    """A lead import uploaded through the staff API; PostgreSQL stopped (fast) for ``--outage`` seconds once
    ``--kill-at`` of it is written. While it is down an API client polls the job and the CLI imports a file:
    both must get a clear answer fast. After it returns: the service answers again by itself, and the import
    finishes with every row once: the sweep (`scrm beat`) re-runs the job the outage interrupted."""
    if pg is None:
        raise SystemExit("import-postgres runs on its own private PostgreSQL")
    from core.db import unit_of_work
    from crm import auth_service

    env = {**env, "SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS": str(args.visibility),
           "SCRM_IMPORT_STALE_MINUTES": str(args.stale_minutes)}
    n = args.rows
    _, admin_id = _org()
    with unit_of_work() as s:
        token, _ = auth_service.issue_api_token(s, admin_id, "故障演练")
    path = _import_file(root, n, n * 3 // 100)
    auth = {"Authorization": f"Bearer {token}"}
    events: list[str] = []
    t0 = time.monotonic()
    worker = _start_worker(env, root / "worker.log")
    beat = _start_beat(env, root)
    probes: list[tuple[float, int | None, float, str]] = []  # (at, status, seconds, body)
    cli: dict[str, object] = {}
    try:
        with path.open("rb") as fh:
            r = httpx.post(f"{web.base}/api/v1/imports", headers=auth, timeout=60,
                           files={"file": ("演练线索.csv", fh, "text/csv")}, data={"source": DRILL_SOURCE})
        r.raise_for_status()
        job_id = r.json()["id"]
        events.append(f"job {job_id} uploaded through POST /api/v1/imports ({r.status_code})")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and _scalar(url, "SELECT count(*) FROM customer WHERE source = :s",
                                                      s=DRILL_SOURCE) < n * args.kill_at[0]:
            time.sleep(0.05)
        done_before = _scalar(url, "SELECT count(*) FROM customer WHERE source = :s", s=DRILL_SOURCE)
        stop_at = time.monotonic()
        pg.stop()
        events.append(f"PostgreSQL stopped (fast) at {stop_at - t0:.1f} s with {done_before} of {n} rows written "
                      f"(stop took {time.monotonic() - stop_at:.1f} s)")

        def probe() -> None:
            with httpx.Client(timeout=30, headers=auth) as client:
                while not cli.get("stop_probes"):
                    started = time.monotonic()
                    try:
                        resp = client.get(f"{web.base}/api/v1/imports/{job_id}")
                        probes.append((started - t0, resp.status_code, time.monotonic() - started, resp.text[:100]))
                    except httpx.HTTPError as exc:
                        probes.append((started - t0, None, time.monotonic() - started, type(exc).__name__))
                    time.sleep(0.5)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "core.cli", "leads", "import", str(path), "--source",
                              DRILL_SOURCE], env={**os.environ, **env}, cwd=harness.ROOT, capture_output=True,
                             text=True, timeout=120)
        cli.update(code=out.returncode, seconds=time.monotonic() - started,
                   stderr=next((line for line in out.stderr.splitlines() if "数据库" in line),
                               out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""),
                   traceback="Traceback" in out.stderr)
        time.sleep(max(0.0, args.outage - (time.monotonic() - stop_at)))
        pg.start()
        back_at = time.monotonic()
        events.append(f"PostgreSQL back at {back_at - t0:.1f} s")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (probes and probes[-1][1] == 200 and probes[-1][0] > back_at - t0):
            time.sleep(0.2)
        cli["stop_probes"] = True
        prober.join(10)
        events += await_import(url, timeout=args.drain_timeout)
        events.append(f"import done at {time.monotonic() - t0:.1f} s")
    finally:
        _end(worker)
        _end(beat)
    down = [p for p in probes if p[0] < back_at - t0]
    after = [p for p in probes if p[0] >= back_at - t0]
    first_ok = next((p[0] - (back_at - t0) for p in after if p[1] == 200), None)
    slowest = max((p[2] for p in down), default=0.0)
    down_codes = Counter(str(p[1]) if p[1] else p[3] for p in down)
    checks, lines = import_checks(url, n)
    checks = {
        f"the API answered 503 while PostgreSQL was down ({dict(down_codes)})": bool(down) and set(down_codes) == {"503"},
        f"no hang: slowest answer while down {slowest:.1f} s < 10 s": slowest < 10,
        f"the CLI import failed fast with a clear message (exit {cli.get('code')}, {cli.get('seconds', 0):.1f} s, "
        f"«{cli.get('stderr')}», traceback: {cli.get('traceback')})":
            cli.get("code") not in (0, None) and not cli.get("traceback") and float(cli.get("seconds") or 99) < 30
            and "数据库" in str(cli.get("stderr")),
        "the API answered 200 again by itself after PostgreSQL returned"
        + (f" ({first_ok:.1f} s after)" if first_ok is not None else ""): first_ok is not None,
        **checks,
    }
    body = next((p[3] for p in down if p[1] == 503), "")
    return checks, ["; ".join(events) + ".", f"While down: {len(down)} API polls, {dict(down_codes)}; body «{body}».",
                    *lines]


WORK_DRILLS = ("handover-kill", "import-kill", "mass-kill", "import-postgres")


def run_work_drill(scenario: str, url: str, env: dict[str, str], root: Path, pg: PrivatePostgres | None,
                   args: argparse.Namespace) -> None:
    from core import plugins
    from core.settings import reset_settings_cache

    # This process reads the settings the worker gets too (an interrupted import is judged by the same rule).
    os.environ.update({"SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS": str(args.visibility),
                       "SCRM_IMPORT_STALE_MINUTES": str(args.stale_minutes)})
    reset_settings_cache()
    plugins.load_tasks()  # as in the web process: a service enqueues only registered tasks (bot.transfer_customers)
    web = WebServer(env, root / "web.log")
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        web.start()
        if scenario == "import-postgres":
            checks, lines = import_postgres(url, env, root, web, pg, args)
        else:
            checks, lines = work_kill(scenario, url, env, root, web, args)
    finally:
        web.stop()
    load_after = os.getloadavg()
    lines.append("Checks: " + "; ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in checks.items()) + ".")
    lines.append(f"Whole drill {time.monotonic() - started:.0f} s; load average before {load_before[0]:.1f}, "
                 f"after {load_after[0]:.1f} (2 cores, shared).")
    size = {"handover-kill": f"--customers {args.customers}", "mass-kill": f"--customers {args.customers} --senders "
            f"{args.senders}", "import-kill": f"--rows {args.rows}", "import-postgres": f"--rows {args.rows}"}[scenario]
    command = (f"python -m bench faults {scenario} {size} --kill-at {' '.join(f'{k:g}' for k in args.kill_at)} "
               f"--visibility {args.visibility} --stale-minutes {args.stale_minutes:g}"
               + (" --database-url …" if pg is None else ""))
    database = f"private PostgreSQL (initdb, port {PG_PORT})" if pg else "PostgreSQL (own database, schema reset)"
    notes = (f"private redis-server (appendonly) on port {REDIS_PORT}; {database}; one `scrm serve` on port {WEB_PORT} "
             "(with the WeCom simulator, reached by the worker over HTTP); one Celery worker (concurrency 2, its "
             f"outbox relay), SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS={args.visibility}, "
             f"SCRM_IMPORT_STALE_MINUTES={args.stale_minutes:g}; the machine is shared with other engineers' work")
    if args.no_record:
        print("\n".join([command, notes, *lines]))
    else:
        print(harness.record(f"Fault: {TITLES[scenario]}", command, lines, notes=notes))
    if not all(checks.values()):
        raise SystemExit(f"fault scenario {scenario}: checks failed; logs in {root}")


TITLES = {"redis": "Redis down while WeCom callbacks arrive", "postgres": "PostgreSQL restarted while callbacks arrive",
          "web-kill": "web process SIGKILLed under callback load",
          "worker-kill": "Celery worker SIGKILLed while processing stored callbacks",
          "handover-kill": "Celery worker SIGKILLed during a 10,000-customer handover (离职继承)",
          "import-kill": "Celery worker SIGKILLed during a lead import",
          "mass-kill": "Celery worker SIGKILLed during a mass send (群发)",
          "import-postgres": "PostgreSQL restarted during a lead import"}
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
    parser.add_argument("--customers", type=int, default=10_000, help="handover-kill / mass-kill: customers")
    parser.add_argument("--senders", type=int, default=60, help="mass-kill: salespeople (one template each)")
    parser.add_argument("--rows", type=int, default=10_000, help="import-kill / import-postgres: rows in the file")
    parser.add_argument("--kill-at", type=float, nargs="+", default=[0.3, 0.7],
                        help="work drills: SIGKILL the worker when this fraction of the work is done (each a kill)")
    parser.add_argument("--visibility", type=int, default=20,
                        help="work drills: the worker's SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS")
    parser.add_argument("--stale-minutes", type=int, default=1,
                        help="work drills: SCRM_IMPORT_STALE_MINUTES (an interrupted import is re-run after this)")
    args = parser.parse_args(argv)
    run(args.scenario, args)
