"""What every benchmark shares: data sets of a chosen size, a real server process, a load
generator on loopback, percentiles, and appending the figures to BENCHMARKS.md."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "BENCHMARKS.md"


def machine() -> str:
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        kb = int(fh.readline().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LoadResult:
    label: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q / 100 * len(data)))]

    def row(self) -> str:
        return (f"| {self.label} | {self.requests} | {self.errors} | {self.rps:,.0f} | "
                f"{self.pct(50):.1f} | {self.pct(99):.1f} |")


async def _load(url: str, *, method: str, concurrency: int, total: int, headers: dict[str, str],
                cookies: dict[str, str], body_factory=None) -> tuple[list[float], int, float]:  # noqa: ANN001
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(headers=headers, cookies=cookies, limits=limits, timeout=30) as client:
        async def worker() -> None:
            nonlocal errors
            for i in counter:
                content = body_factory(i) if body_factory else None
                t0 = time.perf_counter()
                try:
                    r = await client.request(method, url if not callable(url) else url(i), content=content)
                    ok = r.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - start


def load(label: str, url, *, method: str = "GET", concurrency: int = 16, total: int = 3000,  # noqa: ANN001
         headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None,
         body_factory=None, warmup: int = 100) -> LoadResult:  # noqa: ANN001
    """Send ``total`` requests with ``concurrency`` in flight; bounded in count, so it always stops."""
    if warmup:
        asyncio.run(_load(url, method=method, concurrency=min(concurrency, 4), total=warmup,
                          headers=headers or {}, cookies=cookies or {}, body_factory=body_factory))
    latencies, errors, seconds = asyncio.run(
        _load(url, method=method, concurrency=concurrency, total=total, headers=headers or {},
              cookies=cookies or {}, body_factory=body_factory))
    return LoadResult(label, len(latencies), errors, seconds, latencies)


@contextlib.contextmanager
def server(env: dict[str, str], *, workers: int = 1, start_timeout: float = 60) -> Iterator[str]:
    """Run `scrm serve` in its own process; yield its base URL."""
    port = free_port()
    full_env = {**os.environ, **env, "SCRM_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "core.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"server did not answer /healthz within {start_timeout:g} s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "core.cli", "db", "upgrade"], env={**os.environ, **env}, cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)


def record(title: str, command: str, lines: list[str], notes: str = "") -> str:
    """Append one result section to BENCHMARKS.md and return it."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        f"\n## {title} — {stamp}\n",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        *([f"- {notes}"] if notes else []),
        "",
        *lines,
        "",
    ])
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmarks\n\nEvery figure here was measured by a script under `bench/`; "
                           "newest sections last.\n", encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(section)
    return section


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
