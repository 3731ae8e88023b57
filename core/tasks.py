"""The task app: one set of task definitions, two ways of running them.

* Production (``SCRM_REDIS_URL`` set): Celery on Redis; ``scrm worker`` and ``scrm beat``.
* Embedded default (no Redis): the same task functions and the same periodic schedule run in
  background threads of the serving process (:class:`InProcessRunner`), off the request path.

Tasks are declared with :func:`task`, take ids, must be idempotent, and retry with exponential
backoff a bounded number of times. They are sent through :mod:`core.outbox`, never directly from
inside a transaction. On Celery the send itself happens on a background thread (:class:`AsyncSender`),
so a request that committed answers without waiting for the broker.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery, signals

from core.logging_setup import mask_celery_logging
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
    mask_celery_logging()
    if settings.redis_url:
        celery_app.conf.broker_url = settings.redis_url
    celery_app.conf.task_default_retry_delay = 5
    # A SIGKILLed worker never acknowledges the task it held (acks_late): Redis gives it to another worker
    # after the visibility timeout. Every task is idempotent, so a task redelivered while it still runs is safe.
    celery_app.conf.broker_transport_options = {"visibility_timeout": settings.task_visibility_timeout_seconds}
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


class _Delivery:
    """How delivery is reported to the durable outbox. :mod:`core.outbox` sets the two functions when it is
    imported (it dispatches through this module, so this module does not import it: no cycle)."""

    mark_sent: Callable[[list[int]], None] = staticmethod(lambda ids: None)
    record_failure: Callable[..., None] = staticmethod(lambda *args: None)


_delivery = _Delivery()


def set_delivery_listener(mark_sent: Callable[[list[int]], None], record_failure: Callable[..., None]) -> None:
    _delivery.mark_sent = mark_sent  # type: ignore[method-assign]
    _delivery.record_failure = record_failure  # type: ignore[method-assign]


# --- dispatch -------------------------------------------------------------------------------------

_runner: InProcessRunner | ManualRunner | None = None


def set_runner(runner: InProcessRunner | ManualRunner | None) -> None:
    global _runner
    _runner = runner


def get_runner() -> InProcessRunner | ManualRunner | None:
    return _runner


class NoTaskRunner(RuntimeError):
    """Tasks run in-process (no ``SCRM_REDIS_URL``) but this process runs none: a command or script outside
    ``scrm serve``. What it enqueued waits in the outbox for the relay of a process that does."""


def dispatch(name: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
             countdown: float | None = None, outbox_id: int | None = None) -> None:
    """Send a task (called by the outbox after commit, with the id of its ``task_outbox`` row). On Celery
    it is handed to this process's :class:`AsyncSender`: the caller (a request that just committed)
    never waits for the broker. Whoever delivers it marks the row sent (:func:`core.outbox.mark_sent`)."""
    kwargs = kwargs or {}
    if _runner is not None:
        _runner.submit(name, args, kwargs, countdown, outbox_id=outbox_id)
        return
    if get_settings().embedded_tasks:
        raise NoTaskRunner("embedded task runner not started (call core.tasks.start_inprocess())")
    get_sender().submit(name, args, kwargs, countdown, outbox_id=outbox_id)


@dataclass(frozen=True)
class Outgoing:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    countdown: float | None = None
    outbox_id: int | None = None


def celery_producer() -> contextlib.AbstractContextManager[Any]:
    return configure_celery().producer_or_acquire()


def celery_send(job: Outgoing, producer: Any) -> None:
    headers = {OUTBOX_HEADER: job.outbox_id} if job.outbox_id is not None else None
    celery_app.send_task(job.name, args=list(job.args), kwargs=job.kwargs, countdown=job.countdown,
                         producer=producer, headers=headers)


OUTBOX_HEADER = "scrm_outbox_id"


def _outbox_id_of(request: Any) -> int | None:
    value = getattr(request, OUTBOX_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(OUTBOX_HEADER)
    return int(value) if value is not None else None


@signals.task_failure.connect
def _failed_for_good(sender: Any = None, exception: BaseException | None = None, args: Any = None,
                     kwargs: Any = None, einfo: Any = None, **_: Any) -> None:
    """Celery: a task failed after its last retry (a retry is ``task_retry``, not this): its outbox row is
    dead, shown in the console with a retry button."""
    request = getattr(sender, "request", None)
    _delivery.record_failure(_outbox_id_of(request), getattr(sender, "name", "?"), args, kwargs,
                          f"{type(exception).__name__}: {exception}\n{einfo or ''}",
                          (getattr(request, "retries", 0) or 0) + 1)


class AsyncSender:
    """Sends tasks to the broker from one background thread of this process, in submission order.

    ``submit`` only appends to an in-memory queue (it never blocks and never fails); the thread takes
    what has accumulated, opens one producer for the batch and sends each task, retrying a failed
    send ``attempts`` times before logging it as lost. Like the outbox's after-commit send it
    replaces, the queue lives in memory: durable work is re-derived by the periodic sweeps
    (e.g. ``bot.sweep_inbox`` re-sends inbox rows still pending after a minute), and tasks are
    idempotent. :meth:`stop` (app shutdown, interpreter exit) sends what is still queued.
    """

    _STOP = object()

    def __init__(self, send: Callable[[Outgoing, Any], None] | None = None,
                 producer: Callable[[], contextlib.AbstractContextManager[Any]] | None = None, *,
                 attempts: int = 3, retry_delay: float = 0.2, batch: int = 200, max_queued: int = 100_000) -> None:
        self._send = send or celery_send
        self._producer = producer or (celery_producer if send is None else contextlib.nullcontext)
        self.attempts, self.retry_delay, self.batch, self.max_queued = attempts, retry_delay, batch, max_queued
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0  # submitted, not yet sent or given up
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.pid = os.getpid()

    def submit(self, name: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
               countdown: float | None = None, outbox_id: int | None = None) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("task sender stopped")
            if self._pending >= self.max_queued:
                log.error("task %s not sent: %s tasks already waiting for the broker", name, self._pending)
                return
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="scrm-task-sender", daemon=True)
                self._thread.start()
        self._queue.put(Outgoing(name, tuple(args), dict(kwargs or {}), countdown, outbox_id))

    def pending(self) -> int:
        with self._cond:
            return self._pending

    def flush(self, timeout: float = 10) -> bool:
        """Wait until every submitted task was sent (or given up); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 10) -> bool:
        """Send what is queued, then end the thread. Returns False if tasks were still unsent at the timeout."""
        with self._cond:
            self._closed = True
            thread = self._thread
        flushed = self.flush(timeout)
        if thread is not None:
            self._queue.put(self._STOP)
            thread.join(timeout)
        if not flushed:
            log.error("task sender stopped with %s task(s) unsent", self.pending())
        return flushed

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            while len(jobs) < self.batch:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(job is self._STOP for job in jobs)
            jobs = [job for job in jobs if job is not self._STOP]
            if jobs:
                self._send_batch(jobs)
            if stop:
                return

    def _send_batch(self, jobs: list[Outgoing]) -> None:
        done = 0
        sent: list[int] = []  # outbox rows delivered to the broker, marked sent in one statement
        try:
            try:
                with self._producer() as producer:
                    for job in jobs:
                        if self._send_one(job, producer) and job.outbox_id is not None:
                            sent.append(job.outbox_id)
                        done += 1
            except Exception:  # the producer itself failed (broker down): send the rest one by one
                log.warning("task producer failed; sending %s task(s) one by one", len(jobs) - done,
                            exc_info=True)
                for job in jobs[done:]:
                    if self._send_one(job, None) and job.outbox_id is not None:
                        sent.append(job.outbox_id)
            if sent:
                _delivery.mark_sent(sent)
        finally:
            self._settle(len(jobs))

    def _send_one(self, job: Outgoing, producer: Any) -> bool:
        for attempt in range(1, self.attempts + 1):
            try:
                self._send(job, producer)
                return True
            except Exception:
                if attempt == self.attempts:
                    log.exception("task %s%r not sent after %s attempts (its outbox row stays pending: the "
                                  "relay sends it later)", job.name, job.args, attempt)
                    return False
                log.warning("task %s not sent (attempt %s), retrying", job.name, attempt, exc_info=True)
                producer = None  # the next attempt acquires a fresh producer
                time.sleep(self.retry_delay * attempt)

    def _settle(self, count: int) -> None:
        with self._cond:
            self._pending -= count
            if self._pending == 0:
                self._cond.notify_all()


_sender: AsyncSender | None = None
_sender_lock = threading.Lock()


def get_sender() -> AsyncSender:
    """This process's sender (a forked child, e.g. a Celery prefork worker, gets its own)."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = AsyncSender()
            atexit.register(_sender.stop)
        return _sender


def stop_sender(timeout: float = 10) -> bool:
    """Send what is queued and stop the sender (app shutdown); the next dispatch starts a new one."""
    global _sender
    with _sender_lock:
        sender, _sender = _sender, None
    if sender is None or sender.pid != os.getpid():
        return True
    atexit.unregister(sender.stop)
    return sender.stop(timeout)


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
    outbox_id: int | None = field(compare=False, default=None)


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
        # Outbox rows submitted and not yet settled (run, or failed for good): the relay leaves them alone.
        self._in_flight: set[int] = set()
        self._also_stop: list[Any] = []

    def in_flight(self) -> set[int]:
        with self._busy_lock:
            return set(self._in_flight)

    def stop_with(self, other: Any) -> None:
        """Stop ``other`` (e.g. the outbox relay) first when this runner stops."""
        self._also_stop.append(other)

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
        for other in self._also_stop:
            other.stop(timeout)
        self._stop.set()
        for _ in range(self._workers):
            self._ready.put((-1, 0, None))
        with self._delayed_lock:
            self._delayed_lock.notify_all()
        for t in self._threads:
            t.join(timeout)

    def submit(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               countdown: float | None = None, attempt: int = 0, outbox_id: int | None = None) -> None:
        if outbox_id is not None:
            with self._busy_lock:
                self._in_flight.add(outbox_id)
        with self._delayed_lock:
            self._seq += 1
            job = _Job(time.monotonic() + (countdown or 0), self._seq, name, args, kwargs, attempt, outbox_id)
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
                if job.outbox_id is not None:  # marked before it stops being held: the relay never resends it
                    _delivery.mark_sent([job.outbox_id])
                self._settled(job)
            except Exception as exc:
                task_obj = celery_app.tasks[job.name]
                if job.attempt < task_obj.max_retries:
                    delay = self.backoff(job.attempt)
                    log.warning("task %s failed (attempt %s), retrying in %ss", job.name, job.attempt + 1,
                                delay, exc_info=True)
                    self.submit(job.name, job.args, job.kwargs, countdown=delay, attempt=job.attempt + 1,
                                outbox_id=job.outbox_id)
                else:
                    log.exception("task %s failed for good after %s attempts", job.name, job.attempt + 1)
                    _delivery.record_failure(job.outbox_id, job.name, job.args, job.kwargs,
                                          f"{type(exc).__name__}: {exc}", job.attempt + 1)
                    self._settled(job)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _settled(self, job: _Job) -> None:
        if job.outbox_id is not None:
            with self._busy_lock:
                self._in_flight.discard(job.outbox_id)

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


class _Sent(tuple):  # noqa: SLOT001 - a (name, args, kwargs) triple that also knows its outbox row
    outbox_id: int | None = None


class ManualRunner:
    """Collects dispatched tasks; tests run them with :meth:`drain` in the test's own thread.

    ``sent`` holds ``(name, args, kwargs)`` triples (each also carries its ``outbox_id``)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def submit(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               countdown: float | None = None, outbox_id: int | None = None) -> None:
        entry = _Sent((name, args, kwargs))
        entry.outbox_id = outbox_id
        self.sent.append(entry)

    def in_flight(self) -> set[int]:
        return {i for i in (getattr(e, "outbox_id", None) for e in self.sent) if i is not None}

    def drain(self, limit: int = 1000) -> list[str]:
        """Run queued tasks (and the tasks they enqueue) until none is left; return their names.
        Each task that ran has its outbox row marked sent."""
        ran: list[str] = []
        while self.sent and len(ran) < limit:
            entry = self.sent.pop(0)
            name, args, kwargs = entry
            run_task(name, args, kwargs)
            outbox_id = getattr(entry, "outbox_id", None)
            if outbox_id is not None:
                _delivery.mark_sent([outbox_id])
            ran.append(name)
        return ran


def start_inprocess() -> InProcessRunner:
    """Start the embedded runner. The caller has registered the tasks (``core.plugins.load_tasks``) and
    starts the outbox relay beside it (``core.outbox_relay.start_relay``, stopped with the runner)."""
    runner = InProcessRunner(workers=get_settings().inprocess_workers)
    runner.start()
    set_runner(runner)
    return runner
