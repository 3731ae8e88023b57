"""The task app: one set of task definitions, two ways of running them.

* Production (``SCRM_REDIS_URL`` set): Celery on Redis; ``scrm worker`` and ``scrm beat``.
* Embedded default (no Redis): the same task functions and the same periodic schedule run in
  background threads of the serving process (:class:`InProcessRunner`), off the request path.

Tasks are declared with :func:`task`, take ids, must be idempotent, and retry with exponential
backoff a bounded number of times. They are sent through :mod:`core.outbox`, never directly from
inside a transaction.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery

from core.settings import get_settings

log = logging.getLogger(__name__)

celery_app = Celery("scrm")
celery_app.conf.update(
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    timezone="Asia/Shanghai",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
)

# name -> seconds between runs; shared by Celery beat and the in-process scheduler.
PERIODIC: dict[str, float] = {}
# Tasks that must not wait behind a backlog run on their own queue (and jump the in-process queue).
URGENT_QUEUE = "urgent"
URGENT: set[str] = set()
QUEUES = (URGENT_QUEUE, "celery")


def configure_celery() -> Celery:
    settings = get_settings()
    if settings.redis_url:
        celery_app.conf.broker_url = settings.redis_url
    celery_app.conf.task_default_retry_delay = 5
    celery_app.conf.task_routes = {name: {"queue": URGENT_QUEUE} for name in URGENT}
    celery_app.conf.beat_schedule = {
        name: {"task": name, "schedule": seconds} for name, seconds in PERIODIC.items()
    }
    return celery_app


def task(name: str, *, max_retries: int | None = None, urgent: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Declare a task. The body opens its own unit of work; failures retry with backoff.

    ``urgent`` tasks go to their own Celery queue (workers consume it first) and to the front of the
    in-process queue.
    """
    if urgent:
        URGENT.add(name)

    def decorator(fn: Callable[..., Any]) -> Any:
        return celery_app.task(
            name=name,
            autoretry_for=(Exception,),
            retry_backoff=True,
            retry_backoff_max=600,
            retry_jitter=True,
            max_retries=max_retries if max_retries is not None else get_settings().task_max_retries,
        )(fn)

    return decorator


def is_registered(name: str) -> bool:
    return name in celery_app.tasks


def periodic(name: str, every: timedelta) -> None:
    PERIODIC[name] = every.total_seconds()


# --- dispatch -------------------------------------------------------------------------------------

_runner: InProcessRunner | ManualRunner | None = None


def set_runner(runner: InProcessRunner | ManualRunner | None) -> None:
    global _runner
    _runner = runner


def get_runner() -> InProcessRunner | ManualRunner | None:
    return _runner


def dispatch(name: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
             countdown: float | None = None) -> None:
    """Send a task now (called by the outbox after commit)."""
    kwargs = kwargs or {}
    if _runner is not None:
        _runner.submit(name, args, kwargs, countdown)
        return
    if get_settings().embedded_tasks:
        raise RuntimeError("embedded task runner not started (call core.tasks.start_inprocess())")
    configure_celery().send_task(name, args=list(args), kwargs=kwargs, countdown=countdown)


def run_task(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a task's body in this thread (no retry handling)."""
    return celery_app.tasks[name].run(*args, **kwargs)


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    name: str = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False)
    attempt: int = field(compare=False, default=0)


class InProcessRunner:
    """Runs tasks on background threads of this process, with retries and the periodic schedule."""

    def __init__(self, workers: int = 2, *, periodic_jobs: bool = True) -> None:
        self._ready: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._delayed: list[_Job] = []
        self._delayed_lock = threading.Condition()
        self._seq = 0
        self._workers = workers
        self._periodic = periodic_jobs
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()

    def start(self) -> None:
        for i in range(self._workers):
            t = threading.Thread(target=self._work, name=f"scrm-task-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._timer, name="scrm-task-timer", daemon=True)
        t.start()
        self._threads.append(t)
        if self._periodic:
            t = threading.Thread(target=self._beat, name="scrm-beat", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        for _ in range(self._workers):
            self._ready.put((-1, 0, None))
        with self._delayed_lock:
            self._delayed_lock.notify_all()
        for t in self._threads:
            t.join(timeout)

    def submit(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               countdown: float | None = None, attempt: int = 0) -> None:
        with self._delayed_lock:
            self._seq += 1
            job = _Job(time.monotonic() + (countdown or 0), self._seq, name, args, kwargs, attempt)
            if countdown:
                heapq.heappush(self._delayed, job)
                self._delayed_lock.notify_all()
                return
        self._put(job)

    def _put(self, job: _Job) -> None:
        self._ready.put((0 if job.name in URGENT else 1, job.seq, job))

    def idle(self) -> bool:
        with self._busy_lock, self._delayed_lock:
            return self._ready.empty() and self._busy == 0 and not self._delayed

    def wait_idle(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.01)
        return False

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt + 1``: 1, 2, 4, … capped at 10 minutes."""
        return float(min(600, 2 ** attempt))

    def _work(self) -> None:
        while not self._stop.is_set():
            _, _, job = self._ready.get()
            if job is None:
                return
            with self._busy_lock:
                self._busy += 1
            try:
                run_task(job.name, job.args, job.kwargs)
            except Exception:
                task_obj = celery_app.tasks[job.name]
                if job.attempt < task_obj.max_retries:
                    delay = self.backoff(job.attempt)
                    log.warning("task %s failed (attempt %s), retrying in %ss", job.name, job.attempt + 1,
                                delay, exc_info=True)
                    self.submit(job.name, job.args, job.kwargs, countdown=delay, attempt=job.attempt + 1)
                else:
                    log.exception("task %s failed for good after %s attempts", job.name, job.attempt + 1)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _timer(self) -> None:
        while not self._stop.is_set():
            with self._delayed_lock:
                now = time.monotonic()
                while self._delayed and self._delayed[0].due <= now:
                    self._put(heapq.heappop(self._delayed))
                wait = (self._delayed[0].due - now) if self._delayed else 1.0
                self._delayed_lock.wait(timeout=max(0.01, min(wait, 1.0)))

    def _beat(self) -> None:
        next_run = {name: time.monotonic() + seconds for name, seconds in PERIODIC.items()}
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for name, seconds in PERIODIC.items():
                due = next_run.setdefault(name, now + seconds)
                if now >= due:
                    next_run[name] = now + seconds
                    self.submit(name, (), {})


class ManualRunner:
    """Collects dispatched tasks; tests run them with :meth:`drain` in the test's own thread."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def submit(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               countdown: float | None = None) -> None:
        self.sent.append((name, args, kwargs))

    def drain(self, limit: int = 1000) -> list[str]:
        """Run queued tasks (and the tasks they enqueue) until none is left; return their names."""
        ran: list[str] = []
        while self.sent and len(ran) < limit:
            name, args, kwargs = self.sent.pop(0)
            run_task(name, args, kwargs)
            ran.append(name)
        return ran


def start_inprocess() -> InProcessRunner:
    from core import plugins

    plugins.load_tasks()
    runner = InProcessRunner(workers=get_settings().inprocess_workers)
    runner.start()
    set_runner(runner)
    return runner
