"""Group commit: the writes of many concurrent callers in one transaction, its cost shared.

A caller hands an item to :meth:`GroupCommitter.submit` and waits on the returned future. One thread
per committer takes everything queued (up to ``max_batch`` items), calls ``write(items)`` once (one
statement, one commit for the lot) and settles each future with its own result or exception.
Nothing waits on purpose: under light load a batch is one item and the latency that of a single
write; under load the queue fills while the previous commit is in flight, so the next batch is
larger and the per-item cost of the statement, the commit and the task send falls.

``write`` returns one entry per item, in order: a result, or an exception instance for that item
alone. If ``write`` raises, every item of the batch gets the exception, unless the batch had more
than one item: then each item is written on its own, so one bad item never fails its neighbours.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[list[T]], Sequence["R | BaseException"]]


class GroupCommitter(Generic[T, R]):
    _STOP = object()

    def __init__(self, write: Write[T, R], *, max_batch: int = 64, name: str = "scrm-group-commit") -> None:
        self._write = write
        self.max_batch = max_batch
        self._name = name
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # statistics, for tests and the bench
        self.items = 0

    def submit(self, item: T) -> Future[R]:
        future: Future[R] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put((item, future))
        return future

    def stop(self, timeout: float = 10) -> None:
        """Write what is queued, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(self._STOP)
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch: list[tuple[T, Future[R]]] = []
            stop = False
            entry = self._queue.get()
            while True:
                if entry is self._STOP:
                    stop = True
                else:
                    batch.append(entry)  # type: ignore[arg-type]
                if len(batch) >= self.max_batch:
                    break
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._settle(batch)
            if stop:
                return

    def _settle(self, batch: list[tuple[T, Future[R]]]) -> None:
        items = [item for item, _ in batch]
        self.batches += 1
        self.items += len(items)
        try:
            outcomes = list(self._write(items))
            if len(outcomes) != len(items):
                raise RuntimeError(f"group write returned {len(outcomes)} outcomes for {len(items)} items")
        except Exception as exc:  # noqa: BLE001 - settled on the futures, never lost in this thread
            if len(batch) > 1:
                log.warning("group write of %s items failed; writing them one by one", len(batch), exc_info=True)
                for one in batch:
                    self._settle([one])
                return
            outcomes = [exc]
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


class PerProcess(Generic[T, R]):
    """This process's :class:`GroupCommitter`, made on first use; a forked web worker makes its own (the
    parent's writer thread does not survive the fork)."""

    def __init__(self, make: Callable[[], GroupCommitter[T, R]]) -> None:
        self._make = make
        self._committer: GroupCommitter[T, R] | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> GroupCommitter[T, R]:
        with self._lock:
            if self._committer is None or self._pid != os.getpid():
                self._committer = self._make()
                self._pid = os.getpid()
            return self._committer
