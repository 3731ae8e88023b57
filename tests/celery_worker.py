"""A real `scrm worker` process for the PostgreSQL + Redis tests: started, awaited until it answers, stopped."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from core import tasks

# A loaded machine (the CI's two cores, shared with servers and a browser) starts a worker slowly.
READY_TIMEOUT = 240.0


class Worker:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc, self.log = proc, log

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:]


def _answers() -> bool:
    try:
        return bool(tasks.configure_celery().control.ping(timeout=1.0))
    except Exception:  # noqa: BLE001 - broker not reachable yet: ask again
        return False


@contextlib.contextmanager
def running_worker(tmp_path: Path, **env: str) -> Iterator[Worker]:
    """Start a worker (concurrency 1, solo pool) and yield once it answers a broadcast ping.

    Its output goes to a file, never to a pipe nobody reads (a full pipe would block the worker).
    """
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--concurrency", "1", "--pool", "solo"],
                                env=dict(os.environ, **env), stdout=out, stderr=subprocess.STDOUT)
    worker = Worker(proc, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the worker did not start:\n" + worker.output())
            time.sleep(0.5)
        yield worker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
