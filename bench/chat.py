"""Chat commands end to end: signed, encrypted text callbacks POSTed to a real `scrm serve`
(embedded task runner, built-in WeCom simulator), latency measured from the callback POST to the
reply app message recorded by the simulator (message/send). Target (issue): replies within 5 s.

    python -m bench chat --database-url postgresql+psycopg://…/db --customers 5000 --commands 300
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import httpx

from bench import harness

TABLE_HEAD = ["| scenario | commands | no reply | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
STAFF = 20
TARGET_MS = 5000.0


def _env(url: str, port: int) -> dict[str, str]:
    env = {"SCRM_DATABASE_URL": url, "SCRM_REDIS_URL": "", "SCRM_BASE_URL": f"http://127.0.0.1:{port}",
           "SCRM_WECOM_TOKEN": "benchtoken", "SCRM_WECOM_AES_KEY": base64.b64encode(b"\x05" * 32).decode().rstrip("="),
           "SCRM_WECOM_CORP_ID": "", "SCRM_WECOM_SECRET": "", "SCRM_WECOM_API_BASE": "", "SCRM_WECOM_AGENT_ID": "1000002",
           "SCRM_SECRET_KEY": os.environ.get("SCRM_SECRET_KEY") or "bench-secret", "SCRM_LOG_LEVEL": "WARNING"}
    if not os.environ.get("SCRM_PII_KEYS"):
        env["SCRM_PII_KEYS"] = "b1:" + base64.b64encode(os.urandom(32)).decode()
        env["SCRM_PII_ACTIVE_KEY_ID"] = "b1"
        env["SCRM_BLIND_INDEX_KEY"] = base64.b64encode(os.urandom(32)).decode()
    return env


def prepare(env: dict[str, str], customers_count: int) -> dict[str, list[tuple[int, str, str]]]:
    """Fresh schema; STAFF salespeople bound to WeCom, each owning customers_count / STAFF customers;
    a tag library. Returns userid -> [(customer id, name, phone)]."""
    os.environ.update(env)
    from sqlalchemy import text

    from core import db, plugins
    from core.settings import reset_settings_cache

    reset_settings_cache()
    url = env["SCRM_DATABASE_URL"]
    if url.startswith("postgresql"):
        with db.get_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        db.dispose_engines()
    harness.migrate(env)
    plugins.load_models()
    from crm import customers, org_service, tags

    owned: dict[str, list[tuple[int, str, str]]] = {}
    surnames, given = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨", "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
    rng = random.Random(7)
    with db.unit_of_work() as s:
        company = org_service.create_department(s, "总公司", "company", None)
        group = tags.create_group(s, None, "意向")
        tags.create_tag(s, None, group.id, "高意向")
        staff = [org_service.create_staff(s, org_service.StaffInput(
            username=f"chat{i}", display_name=f"销售{i}", role="sales", department_id=company.id,
            wecom_userid=f"chat{i}", data_scope="own", capacity=100000)) for i in range(STAFF)]
    per = max(1, customers_count // STAFF)
    for k, person in enumerate(staff):
        rows = []
        with db.unit_of_work() as s:
            for j in range(per):
                name = rng.choice(surnames) + rng.choice(given) + rng.choice(given)
                phone = f"13{k % 10}{(k * per + j):08d}"
                c = customers.intake(s, customers.CustomerInput(name=name, phone=phone), channel="manual",
                                     owner_id=person.id).customer
                rows.append((c.id, name, phone))
        owned[person.wecom_userid] = rows
    return owned


@contextlib.contextmanager
def serve(env: dict[str, str], port: int):  # noqa: ANN201 - a context manager
    cmd = [sys.executable, "-m", "core.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=harness.ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def commands_for(rng: random.Random, rows: list[tuple[int, str, str]]) -> str:
    cid, name, phone = rng.choice(rows)
    return rng.choice([f"查 {phone}", f"查 {name}", f"跟进 #{cid} 电话沟通，有意向 下次 明天10点", "提醒",
                       f"标签 #{cid} 高意向", f"查 #{cid}"])


def run(base: str, owned: dict[str, list[tuple[int, str, str]]], total: int, concurrency: int,
        label: str) -> harness.LoadResult:
    from bot.simulator.driver import Driver

    sim = base + "/_wecom_sim"
    users = list(owned)[:concurrency]
    latencies: list[float] = []
    missing = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def replies_to(http: httpx.Client, userid: str) -> int:
        data = http.get(f"{sim}/_admin/requests", params={"path": "message/send"}).json()["requests"]
        return sum(1 for r in data if r["body"].get("touser") == userid and r.get("errcode") in (0, None))

    def worker(userid: str) -> None:
        nonlocal missing
        rng = random.Random(userid)
        driver = Driver(sim_base=sim, callback_url=base + "/wecom/callback")
        http = httpx.Client(timeout=10)
        try:
            seen = replies_to(http, userid)
            for _ in counter:
                text = commands_for(rng, owned[userid])
                t0 = time.perf_counter()
                driver.text_message(userid, text)
                got = False
                while time.perf_counter() - t0 < 30:
                    now_seen = replies_to(http, userid)
                    if now_seen > seen:
                        seen, got = now_seen, True
                        break
                    time.sleep(0.003)
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    if got:
                        latencies.append(elapsed)
                    else:
                        missing += 1
        finally:
            driver.close()
            http.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return harness.LoadResult(label, len(latencies) + missing, missing, time.perf_counter() - start, latencies)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench chat")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--customers", type=int, default=4000, help="customers in the data set (owned by 20 people)")
    parser.add_argument("--commands", type=int, default=300, help="commands per scenario")
    args = parser.parse_args(argv)

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='scrm-bench-')}/bench.db"
    port = harness.free_port()
    env = _env(url, port)
    owned = prepare(env, args.customers)
    results = []
    with serve(env, port) as base:
        run(base, owned, 10, 1, "warm-up")  # the access token, connection pools, first imports
        for concurrency in (1, 4):
            results.append(run(base, owned, args.commands, concurrency,
                               f"{concurrency} salesperson{'s' if concurrency > 1 else ''} typing at once"))
    lines = TABLE_HEAD + [f"| {r.label} | {r.requests} | {r.errors} | {r.pct(50):.0f} | {r.pct(99):.0f} | "
                          f"{max(r.latencies_ms or [float('nan')]):.0f} |" for r in results]
    met = all(r.errors == 0 and r.pct(99) < TARGET_MS for r in results)
    db_kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    notes = (f"{db_kind}, embedded task runner (2 threads), built-in WeCom simulator; {args.customers} customers, "
             f"{STAFF} salespeople; commands mixed (查 phone/name/#id, 跟进 with 下次 明天10点, 标签, 提醒); "
             f"latency = callback POST → reply recorded by the simulator's message/send. "
             f"Target p99 < {TARGET_MS / 1000:.0f} s: {'met' if met else 'NOT met'}")
    section = harness.record("Chat commands: command → reply latency", "python -m bench chat " + " ".join(argv or []),
                             lines, notes)
    print(section)
