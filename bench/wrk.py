"""``wrk`` as the load generator: a C event loop costs the machine a few microseconds per request,
where the Python/httpx generator costs ~1 ms of the same 2 cores the server needs.

Two modes: a plain GET (``run_get``), and the replay of PRE-GENERATED requests (``run_replay``): each
wrk thread reads its own file of ``path<TAB>body`` lines in ``init()``, formats every request before the
clock starts, and ``request()`` only hands out the next one; no request is sent twice. wrk measures for
a fixed duration (``-d``), so the caller generates more requests than the server can take in that time;
a thread that runs out stops and the run is flagged ``exhausted``.

wrk is a closed-loop generator: each connection waits for its answer before sending the next request,
so when the server stalls, the requests that would have arrived meanwhile are never sent and never
measured (coordinated omission). Its percentiles are those of the requests actually sent; an open-loop
arrival at the same rate would see a worse tail. (wrk2, which corrects this, is not packaged in Debian.)
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = ("wrk not found: install the Debian package (`apt-get install -y wrk`, as root) to measure with a "
                "C load generator; falling back to the Python/httpx generator, which competes with the server "
                "for the same cores (~1 ms CPU per request)")

_DONE = r"""
function done(summary, latency, requests)
  local issued, exhausted = 0, false
  for _, t in ipairs(threads) do
    issued = issued + (t:get("issued") or 0)
    if t:get("exhausted") then exhausted = true end
  end
  local e = summary.errors
  local codes, parts = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes") or {}) do codes[k] = (codes[k] or 0) + v end
  end
  for k, v in pairs(codes) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
  io.write(string.format(
    'SCRM_WRK {"duration_us": %d, "requests": %d, "issued": %d, "exhausted": %s, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"max_us": %d, "codes": {%s}}\n',
    summary.duration, summary.requests, issued, tostring(exhausted), e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, table.concat(parts, ", ")))
end
"""

_SETUP = r"""
threads = {}
local next_tid = 0
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end
"""

_REPLAY = r"""
function init(args)
  issued, exhausted, reqs = 0, false, {}
  local headers = {["Content-Type"] = "text/xml"}
  for line in io.lines(args[1] .. tid .. ".txt") do
    local tab = string.find(line, "\t", 1, true)
    reqs[#reqs + 1] = wrk.format("POST", string.sub(line, 1, tab - 1), headers, string.sub(line, tab + 1))
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


# Staff sessions: each line ``path<TAB>cookie`` is a GET as that session (its own cookie); ``delay()`` gives each
# connection a think time between its requests, drawn uniformly within ±50% of the mean (args[2], ms).
_SESSIONS = r"""
function init(args)
  issued, exhausted, reqs = 0, false, {}
  for line in io.lines(args[1] .. tid .. ".txt") do
    local tab = string.find(line, "\t", 1, true)
    reqs[#reqs + 1] = wrk.format("GET", string.sub(line, 1, tab - 1), {["Cookie"] = string.sub(line, tab + 1)})
  end
  count = #reqs
  think = tonumber(args[2]) or 0
  codes = {}
  math.randomseed(tid * 7919)
end

-- answers other than 200 by status (a 303 to the login page is a lost session, not a page), for the breakdown
function response(status, headers, body)
  if status ~= 200 then codes[tostring(status)] = (codes[tostring(status)] or 0) + 1 end
end

function delay()
  if think <= 0 then return 0 end
  return math.random(math.floor(think / 2), math.floor(think * 3 / 2))
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


@dataclass
class WrkResult:
    label: str
    requests: int  # completed
    issued: int  # handed to wrk by request() (replay mode); completed + in flight at the stop
    errors: int
    error_detail: dict[str, int]  # wrk's counts: connect, read, write (socket errors), timeout, status (>= 400)
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    exhausted: bool
    cpu_seconds: float  # wrk's own CPU (user + system)
    codes: dict[str, int] | None = None  # sessions mode: answers other than 200, by HTTP status

    def error_kinds(self) -> str:
        """The errors by kind, in words: timeouts, socket errors, HTTP statuses (and redirects, not errors)."""
        d = self.error_detail
        sockets = d["connect"] + d["read"] + d["write"]
        parts = [f"timeouts {d['timeout']}", f"socket errors {sockets} (connect {d['connect']}, read "
                 f"{d['read']}, write {d['write']})", f"HTTP ≥ 400 {d['status']}"]
        if self.codes:
            parts.append("answers other than 200 by status: " + ", ".join(
                f"{code} × {n}" for code, n in sorted(self.codes.items())))
        return "; ".join(parts)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return {50: self.p50_ms, 90: self.p90_ms, 99: self.p99_ms, 99.9: self.p999_ms}[q]

    def row(self) -> str:
        return (f"| {self.label} | {self.requests} | {self.errors} | {self.rps:,.0f} | "
                f"{self.p50_ms:.1f} | {self.p99_ms:.1f} |")


def find() -> str | None:
    return shutil.which("wrk")


def _run(label: str, url: str, script: str, script_args: list[str], *, duration: float, connections: int,
         threads: int, workdir: Path) -> WrkResult:
    script_path = workdir / f"{abs(hash(script))}.lua"
    script_path.write_text(script, encoding="utf-8")
    cmd = [find() or "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s",
           "--latency", "-s", str(script_path), url]
    if script_args:
        cmd += ["--", *script_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.splitlines() if ln.startswith("SCRM_WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out[-2000:]}")
    data = json.loads(line.split(" ", 1)[1])
    detail = {k: data[k] for k in ("connect", "read", "write", "status", "timeout")}
    return WrkResult(label, data["requests"], data["issued"] or data["requests"], sum(detail.values()), detail,
                     data["duration_us"] / 1e6, data["p50_us"] / 1000, data["p90_us"] / 1000, data["p99_us"] / 1000,
                     data["p999_us"] / 1000, data["max_us"] / 1000, data["exhausted"],
                     (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                     {k: int(v) for k, v in data.get("codes", {}).items()})


def run_get(label: str, url: str, *, duration: float, connections: int, threads: int = 1) -> WrkResult:
    with tempfile.TemporaryDirectory(prefix="scrm-wrk-") as tmp:
        return _run(label, url, _SETUP + _DONE, [], duration=duration, connections=connections, threads=threads,
                    workdir=Path(tmp))


def _write_lines(workdir: Path, lines: list[tuple[str, bytes]], threads: int) -> str:
    """Each thread's file of ``path<TAB>value`` lines (the threads take turns); returns the files' prefix."""
    for t in range(threads):
        with (workdir / f"reqs_{t + 1}.txt").open("wb") as fh:
            for path, value in lines[t::threads]:
                if b"\n" in value or b"\t" in value:
                    raise ValueError("request bodies must be single-line without tabs")
                fh.write(path.encode() + b"\t" + value + b"\n")
    return str(workdir / "reqs_")


def run_replay(label: str, base_url: str, requests: list[tuple[str, bytes]], *, duration: float, connections: int,
               threads: int = 1) -> WrkResult:
    """Replay ``requests`` (path with query, body) as POSTs, each at most once, split over the threads."""
    with tempfile.TemporaryDirectory(prefix="scrm-wrk-") as tmp:
        workdir = Path(tmp)
        prefix = _write_lines(workdir, requests, threads)
        return _run(label, base_url + "/", _SETUP + _REPLAY + _DONE, [prefix], duration=duration,
                    connections=connections, threads=threads, workdir=workdir)


def run_sessions(label: str, base_url: str, requests: list[tuple[str, str]], *, duration: float, connections: int,
                 think_ms: int = 0, threads: int = 1) -> WrkResult:
    """GET ``requests`` (path with query, the session's Cookie header), each at most once, split over the
    threads; every connection waits a think time (mean ``think_ms``) between its requests."""
    with tempfile.TemporaryDirectory(prefix="scrm-wrk-") as tmp:
        workdir = Path(tmp)
        prefix = _write_lines(workdir, [(path, cookie.encode()) for path, cookie in requests], threads)
        return _run(label, base_url + "/", _SETUP + _SESSIONS + _DONE, [prefix, str(think_ms)], duration=duration,
                    connections=connections, threads=threads, workdir=workdir)
