"""The import use case: the job, the stream of rows, one transaction per batch, assignment.

:func:`run_job` is a boundary like a task (the CLI and the task ``crm.import_leads`` call it): it
opens one unit of work per batch, so every batch commits its customers together with the job's
counters, and a batch that fails leaves nothing of itself behind. Re-running a file is always safe:
what an earlier run created is found again as existing.

Counters partition the data rows: ``created + duplicates_in_file + duplicates_existing + collisions
+ errors == processed``. A collision (撞单) is a row matching a customer someone other than the
importing staff member owns: the owner keeps it, both are told (:func:`crm.customers.record_collision`).
A row that is someone already in the database fills that record's blanks (:mod:`crm.importer.merge`).

On PostgreSQL a run is a pipeline of three threads (:meth:`_Run._pipeline`): the reading thread
prepares batch N+2, a second looks batch N+1 up on a connection of its own (which of its people
exist, customer ids for the others), a third writes batch N in its transaction, looking up again
only the rows found ahead (a row created meanwhile by another channel is refused by the unique
index and merged). Each committed batch moves the job's ``updated_at``: the run's heartbeat
(:mod:`crm.importer.jobs`).
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, clock, outbox, pii
from core.db import is_postgres, sessions_are_independent, unit_of_work
from core.errors import AppError, ValidationFailed
from core.settings import get_settings
from crm import allocation, customers, notify, scope
from crm.exceptions import PoolNotFound
from crm.importer import dedup, merge, prepare, sources, writer
from crm.importer.errors import ImportFileEmpty, ImportJobNotFound
from crm.importer.headers import find_header
from crm.importer.report import Problem, ProblemReport
from crm.models import ALLOCATION_MODE_LABELS, Collision, Grade, ImportJob, ImportStatus, Pool, Staff
from crm.scope import Viewer

log = logging.getLogger(__name__)

TASK = "crm.import_leads"
DEFAULT_SOURCE = "import"
BATCH_SIZE = 20_000
FIRST_BATCH = 2000  # the first batches are smaller (then doubling): the writer starts sooner
GIL_SWITCH_SECONDS = 0.0005  # while the writer thread runs beside the CPU-bound reader (see _Run.run)
GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections while a run holds its batches (see _Run.run)
# From this many rows (PostgreSQL) rows are prepared in a worker process; None: never. Off: on the
# 2-core reference machine the worker lost (its start-up, imports compiled afresh without a bytecode
# cache, and pickling both ways cost more CPU than it took off the importing thread; BENCHMARKS.md).
WORKER_PROCESS_ROWS: int | None = None
HEADER_SCAN = 10  # leading non-empty rows searched for the header (a title row may sit above it)
COUNTERS = ("processed", "created", "duplicates_in_file", "duplicates_existing", "collisions", "errors", "assigned")

Progress = Callable[[dict[str, int]], None]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_dir() -> Path:
    return Path(get_settings().import_dir)


# --- jobs -----------------------------------------------------------------------------------------

def create_job(session: Session, *, filename: str, file_path: Path, source: str | None = None,
               assign_mode: str | None = None, pool_id: int | None = None, created_by: int | None = None,
               sha256: str | None = None) -> ImportJob:
    now = clock.now()
    job = ImportJob(filename=filename[:200], file_path=str(file_path), sha256=sha256 or file_sha256(file_path),
                    source=(pii.mask_text((source or "").strip()) or DEFAULT_SOURCE)[:40],
                    assign_mode=(assign_mode or None), pool_id=pool_id, status=ImportStatus.QUEUED,
                    created_by=created_by, created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    return job


def submit(session: Session, **kwargs: Any) -> ImportJob:
    """Create a job and run it in the background (task ``crm.import_leads``, sent after commit)."""
    job = create_job(session, **kwargs)
    outbox.enqueue(session, TASK, job.id)
    return job


def previous_import(session: Session, job: ImportJob) -> ImportJob | None:
    """An earlier finished import of the same file (same SHA-256), if any."""
    return session.scalar(select(ImportJob).where(ImportJob.sha256 == job.sha256, ImportJob.id < job.id,
                                                  ImportJob.status == ImportStatus.DONE)
                          .order_by(ImportJob.id.desc()).limit(1))


def job_visible_clause(viewer: Viewer):  # noqa: ANN201 - a SQL clause
    """Jobs a viewer may see: those started by staff within their data scope."""
    return scope.owner_filter(viewer, ImportJob.created_by, include_unowned=viewer.scope == "all")


def get_job(session: Session, viewer: Viewer | None, job_id: int) -> ImportJob:
    stmt = select(ImportJob).where(ImportJob.id == job_id)
    if viewer is not None:
        stmt = stmt.where(job_visible_clause(viewer))
    job = session.scalar(stmt)
    if job is None:
        raise ImportJobNotFound()
    return job


def list_jobs(session: Session, viewer: Viewer, *, limit: int = 50) -> list[ImportJob]:
    return list(session.scalars(select(ImportJob).where(job_visible_clause(viewer))
                                .order_by(ImportJob.id.desc()).limit(limit)))


def counters(job: ImportJob) -> dict[str, int]:
    return {name: getattr(job, name) for name in COUNTERS}


# --- the run --------------------------------------------------------------------------------------

@dataclass
class _Pending:
    """One batch as the reading thread hands it to the writing one: the rows that are new to this
    file (with their sealed database values), and the problem lines found so far (report)."""

    # row number, stage row (writer.stage_row), the file's cells, the row as COPY text (PostgreSQL)
    fresh: list[tuple[int, tuple[object, ...], list[object], str | None]] = field(default_factory=list)
    problems: list[tuple[int, str, str, list[object]]] = field(default_factory=list)
    rows: int = 0
    errors: int = 0
    duplicates_in_file: int = 0
    # blind indexes of the batch already in the database, looked up ahead on a connection of its
    # own (None: not looked up ahead; the writer looks every row up), and customer ids drawn ahead
    known: set[str] | None = None
    ids: list[int] = field(default_factory=list)


@dataclass
class _Written:
    step: dict[str, int]
    problems: list[tuple[int, str, str, list[object]]]


@dataclass
class RunResult:
    job_id: int
    status: str
    counts: dict[str, int]
    report: str | None
    message: str | None
    sample: list[Problem]
    previous_job_id: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


ASSIGN_BY_RULES = "rules"  # --assign rules: the configured allocation rules decide (mode None)


def assign_modes() -> dict[str, str]:
    """Modes ``--assign`` accepts, with their Chinese labels ("manual" needs a person: not for imports)."""
    return {ASSIGN_BY_RULES: "按分配规则", **{k: v for k, v in ALLOCATION_MODE_LABELS.items() if k != "manual"}}


def check_assign_mode(mode: str) -> None:
    modes = assign_modes()
    if mode not in modes:
        raise ValidationFailed(f"未知的分配方式：{mode}（可选：{'、'.join(f'{k}（{v}）' for k, v in modes.items())}）",
                               field="assign")


def _claim(job_id: int) -> ImportJob | None:
    """queued -> running, decided by the database (a second delivery of the task does nothing)."""
    with unit_of_work() as session:
        now = clock.now()
        result = session.execute(update(ImportJob).where(ImportJob.id == job_id,
                                                         ImportJob.status == ImportStatus.QUEUED)
                                 .values(status=ImportStatus.RUNNING, started_at=now, updated_at=now))
        if result.rowcount != 1:
            return None
        return session.get(ImportJob, job_id)


class JobNoLongerRunning(Exception):  # noqa: N818 - a signal between the run's threads, not an error
    """The job's row says it is not running any more (declared interrupted while this run stalled,
    see :mod:`crm.importer.jobs`): this run stops, the batch in hand rolls back."""


def _still_running(session: Session, job_id: int, **values: Any) -> None:
    """Move the job's row (heartbeat ``updated_at`` with ``values``), only while it is running."""
    result = session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.status == ImportStatus.RUNNING)
                             .values(**values))
    if result.rowcount != 1:
        raise JobNoLongerRunning(job_id)


def _fail(job_id: int, message: str, report: ProblemReport | None = None) -> None:
    path = None
    if report is not None:
        try:
            path = report.close({"状态": "失败", "原因": message})
        except OSError:
            log.exception("import job %s: the report could not be written", job_id)
    with unit_of_work() as session:
        now = clock.now()
        session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.status == ImportStatus.RUNNING)
                        .values(status=ImportStatus.FAILED, message=pii.mask_text(message)[:1000], finished_at=now,
                                updated_at=now, report_path=str(path) if path else None))


DATABASE_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError)
DATABASE_DOWN_MESSAGE = ("导入中断：数据库暂时不可用（无法连接或正在重启）。已完成的批次已保存，"
                         "可重新导入同一文件（已导入的行会识别为重复，不会重复创建）")


def _fail_when_back(job_id: int, message: str, report: ProblemReport, within: float = 180) -> None:
    """:func:`_fail` once the database answers again (backoff 1, 2, 4 … 15 s for ``within`` seconds). Given up:
    the job stays running with a stale heartbeat and is shown interrupted (:mod:`crm.importer.jobs`)."""
    try:
        path = report.close({"状态": "失败", "原因": message})
    except OSError:
        path = None
    deadline, pause = time.monotonic() + within, 1.0
    while True:
        try:
            with unit_of_work() as session:
                now = clock.now()
                session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.status == ImportStatus.RUNNING)
                                .values(status=ImportStatus.FAILED, message=message, finished_at=now, updated_at=now,
                                        report_path=str(path) if path else None))
            return
        except DATABASE_DOWN:
            if time.monotonic() + pause > deadline:
                log.error("import job %s: database still unavailable; it will be shown interrupted", job_id)
                return
            time.sleep(pause)
            pause = min(pause * 2, 15.0)


def discard_upload(job_id: int, path: Path) -> None:
    """An uploaded file holds plaintext phone and ID numbers: it is deleted once read (a local file
    given to the CLI is the user's and stays), unless a re-run of the job has taken it over."""
    uploads_dir = (import_dir() / "uploads").resolve()
    try:
        if not (path.is_file() and path.resolve().is_relative_to(uploads_dir)):
            return
        with unit_of_work() as session:
            if session.scalar(select(ImportJob.id).where(
                    ImportJob.file_path == str(path), ImportJob.id != job_id,
                    ImportJob.status.in_((ImportStatus.QUEUED, ImportStatus.RUNNING))).limit(1)) is not None:
                return
        path.unlink()
    except OSError:
        log.warning("import: could not delete the uploaded file %s", path.name)


def _check_options(job: ImportJob) -> None:
    with unit_of_work() as session:
        if job.pool_id is not None and session.get(Pool, job.pool_id) is None:
            raise PoolNotFound(f"公海不存在：{job.pool_id}")
        if job.pool_id is None:
            customers.default_pool(session)
        if job.assign_mode:
            check_assign_mode(job.assign_mode)


def run_job(job_id: int, *, on_progress: Progress | None = None, batch_size: int = BATCH_SIZE,
            database_wait: float = 180) -> RunResult | None:
    """Import the job's file. None when the job was not queued (already run or running). When the database goes
    away mid-run, the job is failed (re-runnable) once it is back, waiting at most ``database_wait`` seconds
    (the CLI passes 0: its user gets the message at once)."""
    job = _claim(job_id)
    if job is None:
        return None
    report = ProblemReport(import_dir() / f"import-{job.id}-{job.sha256[:8]}-问题行.xlsx")
    timings: dict[str, float] = {}
    ended = False  # False: the process is going down mid-run (KeyboardInterrupt, SystemExit)
    try:
        _check_options(job)
        path = Path(job.file_path or "")
        info = sources.inspect(path)
        with unit_of_work() as session:
            estimate = sources.estimated_rows(path, info)
            _still_running(session, job.id, total=max(0, estimate - 1) if estimate else None, sha256=info.sha256,
                           updated_at=clock.now())
        run = _Run(job, report, on_progress, batch_size)
        timings = run.timings
        run.run(sources.iter_rows(path, info),
                worker_process=WORKER_PROCESS_ROWS is not None and (estimate or 0) >= WORKER_PROCESS_ROWS)
        ended = True
    except JobNoLongerRunning:  # declared interrupted: its upload stays for the re-run, like a crashed run's
        log.warning("import job %s was declared interrupted while it ran; this run stopped", job.id)
    except AppError as exc:
        ended = True
        _fail(job.id, exc.message, report)
    except DATABASE_DOWN as exc:
        # PostgreSQL stopped or restarted under the run: the committed batches are kept, each whole; the job is
        # failed (with its upload kept) as soon as the database answers again, so it can be re-run at once.
        log.warning("import job %s interrupted: database unavailable (%s)", job.id, str(exc).splitlines()[0][:200])
        _fail_when_back(job.id, DATABASE_DOWN_MESSAGE, report, within=database_wait)
    except Exception as exc:
        ended = True
        log.exception("import job %s failed", job.id)
        _fail(job.id, f"导入中断：{type(exc).__name__}。已完成的批次已保存，修正后可重新导入同一文件（已导入的行会识别为重复）",
              report)
    finally:
        # A run cut short by the process going down leaves its job running (shown interrupted once its
        # heartbeat is stale, crm.importer.jobs) and its upload in place, for a re-run.
        if ended:
            discard_upload(job.id, Path(job.file_path or ""))
    with unit_of_work() as session:
        done = session.get(ImportJob, job.id)
        assert done is not None
        prev = previous_import(session, done)
        return RunResult(done.id, done.status, counters(done), done.report_path, done.message, report.sample,
                         prev.id if prev else None, timings)


class _Run:
    def __init__(self, job: ImportJob, report: ProblemReport, on_progress: Progress | None, batch_size: int) -> None:
        self.job = job
        self.report = report
        self.on_progress = on_progress
        self.batch_size = batch_size
        self.counts = dict.fromkeys(COUNTERS, 0)
        # seconds per stage (read: the file; prepare: parse, validate, seal, or waiting for the worker
        # process doing it; wait: blocked on the writer; the rest in the writer thread; assign:
        # planning owners before the insert)
        self.timings = dict.fromkeys(("read", "prepare", "lookahead", "wait", "lookup", "assign", "insert",
                                      "duplicates", "commit"), 0.0)
        self.allocation = allocation if job.assign_mode else None
        with unit_of_work() as session:
            self.grades = frozenset(session.scalars(select(Grade.code)))
            self.pool_id = job.pool_id or customers.default_pool(session).id
            staff = session.get(Staff, job.created_by) if job.created_by else None
            self.actor = audit.Actor("staff", staff.id, staff.display_name) if staff else \
                audit.Actor.system("导入")

    def run(self, rows: Iterator[tuple[int, list[object]]], *, worker_process: bool = False) -> None:
        head = list(itertools.islice(rows, HEADER_SCAN))
        header = find_header(head)
        self.report.set_header(header)
        data = itertools.chain((r for r in head if r[0] > header.row_number), rows)
        # PostgreSQL, a pipeline of three threads: this one reads and prepares batch N+2 (parse,
        # validate, index, seal; or hands it to a worker process, WORKER_PROCESS_ROWS) while a second
        # looks batch N+1 up on a connection of its own (which rows exist, ids for the others) and a
        # third writes batch N in its transaction. psycopg waits without the GIL; the server works on
        # the other core. SQLite: one writer anyway, all inline.
        with unit_of_work() as session:
            threaded = is_postgres(session)
        ahead_lookup = threaded and sessions_are_independent()
        kind = prepare.WorkerProcess if worker_process else prepare.InProcess
        preparer = kind(header, self.job.source, self.grades, pii.keyring(), threaded)
        prep_depth = 2 if kind is prepare.WorkerProcess else 1  # batches handed to the preparer at once
        # The writer thread waits on the server most of the time and needs the GIL only briefly after
        # each answer; the reading thread never blocks. With Python's default 5 ms switch interval the
        # writer would wait up to 5 ms for the GIL after every answer (dozens a batch), idling the server.
        switch = sys.getswitchinterval()
        if threaded:
            sys.setswitchinterval(min(switch, GIL_SWITCH_SECONDS))
        # A run keeps a few batches of rows alive (tens of thousands of tuples and lists, no cycles
        # among them); at the default threshold (700) the collector walked them over a thousand times
        # per 100,000 rows, a quarter of the importing process' CPU. Cycles are still collected, less often.
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
        try:
            batches = self._prepared(_chunks(data, self.batch_size, first=FIRST_BATCH), preparer, prep_depth)
            if threaded:
                self._pipeline(batches, ahead_lookup)
            else:
                for pending in batches:
                    self._collect(self._write(pending))
        finally:
            sys.setswitchinterval(switch)
            gc.set_threshold(*thresholds)
            preparer.close()
        if self.counts["processed"] == 0:
            raise ImportFileEmpty("文件只有表头，没有数据行")
        self._finish()

    def _prepared(self, chunks: Iterator[list[tuple[int, list[object]]]], preparer: prepare.InProcess
                  | prepare.WorkerProcess, depth: int) -> Iterator[_Pending]:
        """The prepared batches in file order (``depth`` of them handed to the preparer at once)."""
        preparing: deque[tuple[Future[prepare.Batch], list[tuple[int, list[object]]]]] = deque()
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            if chunk is not None:
                preparing.append((preparer.submit(chunk), chunk))
            self.timings["read"] += time.perf_counter() - t0
            while preparing and (chunk is None or len(preparing) >= depth):
                t0 = time.perf_counter()
                pending = _pending(*preparing.popleft())
                self.timings["prepare"] += time.perf_counter() - t0
                yield pending
            if chunk is None:
                return

    def _pipeline(self, batches: Iterator[_Pending], ahead_lookup: bool) -> None:
        """Three stages handing batches on through queues of one: this thread prepares, a second
        looks the next batch up (``ahead_lookup``), a third writes; the written batches come back
        here for the report. A failure anywhere stops every stage and is raised here."""
        to_ahead: queue.Queue[object] = queue.Queue(maxsize=1)
        to_write: queue.Queue[object] = queue.Queue(maxsize=1)
        written: queue.Queue[object] = queue.Queue()
        failed = threading.Event()

        def stage(inbox: queue.Queue[object], work: Callable[[Any], Any], outbox: queue.Queue[object]) -> None:
            try:
                while (item := inbox.get()) is not _STOP:
                    if not failed.is_set():
                        outbox.put(work(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
                failed.set()
                written.put(exc)
                while inbox.get() is not _STOP:  # let the stage before this one finish
                    pass
            finally:
                outbox.put(_STOP)

        def look(pending: _Pending) -> _Pending:
            t0 = time.perf_counter()
            try:
                return self._look_ahead(pending) if ahead_lookup else pending
            finally:
                self.timings["lookahead"] += time.perf_counter() - t0

        threads = [threading.Thread(target=stage, args=(to_ahead, look, to_write), name="scrm-import-ahead",
                                    daemon=True),
                   threading.Thread(target=stage, args=(to_write, self._write, written), name="scrm-import",
                                    daemon=True)]
        for thread in threads:
            thread.start()
        problem: BaseException | None = None

        def collect(block: bool) -> bool:
            """Take what the writer finished (False once it has stopped)."""
            nonlocal problem
            while True:
                t0 = time.perf_counter()
                try:
                    item = written.get(block=block)
                except queue.Empty:
                    return True
                finally:
                    self.timings["wait"] += time.perf_counter() - t0
                if item is _STOP:
                    return False
                if isinstance(item, BaseException):
                    problem = problem or item
                else:
                    self._collect(item)  # type: ignore[arg-type]

        try:
            for pending in batches:
                if failed.is_set():
                    break
                t0 = time.perf_counter()
                to_ahead.put(pending)  # waits while the look-ahead is a batch behind
                self.timings["wait"] += time.perf_counter() - t0
                collect(block=False)
        except BaseException as exc:
            failed.set()
            problem = problem or exc
        finally:
            to_ahead.put(_STOP)
            while collect(block=True):
                pass
            for thread in threads:
                thread.join()
        if problem is not None:
            raise problem

    def _write(self, pending: _Pending) -> _Written:
        """One transaction: match existing customers, create the new ones, merge the existing ones
        (fill blanks, collisions), assign, and move the job's counters; all of it or none of it."""
        later = pending.problems
        step = {"processed": pending.rows, "errors": pending.errors,
                "duplicates_in_file": pending.duplicates_in_file,
                "created": 0, "duplicates_existing": 0, "collisions": 0, "assigned": 0}
        clock_ = time.perf_counter
        t = self.timings
        key = writer.key
        with unit_of_work() as session:
            t0 = clock_()
            now = clock.now()
            fresh = pending.fresh
            # Every row is looked up here, in this transaction; with a look-ahead, only the rows it
            # found (a row it missed that exists now is refused by the unique index: see insert_new).
            known, p_i, i_i = pending.known, writer.PHONE_INDEX, writer.ID_INDEX
            check = fresh if known is None else [item for item in fresh if (item[1][p_i] in known)
                                                 or (item[1][i_i] in known)]
            found = self._existing(session, [item[1] for item in check]) if check else {}
            if found:
                new = [item for item in fresh if not ((item[1][p_i] and item[1][p_i] in found)
                                                      or (item[1][i_i] and item[1][i_i] in found))]
            else:
                new = fresh
            new_rows = [item[1] for item in new]
            t1 = clock_()
            owners, protect = self._plan(session, new_rows, now)
            t2 = clock_()
            texts = [item[3] for item in new] if new and new[0][3] is not None else None
            created = writer.insert_new(session, new_rows, pool_id=self.pool_id, actor_staff_id=self.job.created_by,
                                        now=now, owners=owners, protected_until=protect, texts=texts,
                                        ids=pending.ids)
            t3 = clock_()
            if len(created) < len(new):  # created by another channel between our lookup and our insert
                found.update(self._existing(session, [row for row in new_rows if key(row) not in created]))
            if len(created) < len(fresh):
                self._merge(session, [item for item in fresh if key(item[1]) not in created], found, later, step, now)
            step["created"] = len(created)
            if owners is not None:
                done = {created[key(row)]: owner for row, owner in zip(new_rows, owners, strict=True)
                        if owner is not None and key(row) in created}
                if done:
                    self.allocation.notify_owners(session, done, self.actor)
                step["assigned"] = len(done)
            t4 = clock_()
            # the job's counters move with the batch; updated_at is the run's heartbeat
            _still_running(session, self.job.id, updated_at=clock.now(),
                           **{k: getattr(ImportJob, k) + v for k, v in step.items()})
        t5 = clock_()
        t["lookup"] += t1 - t0
        t["assign"] += t2 - t1
        t["insert"] += t3 - t2
        t["duplicates"] += t4 - t3
        t["commit"] += t5 - t4
        return _Written(step, later)

    def _look_ahead(self, pending: _Pending) -> _Pending:
        """Which rows of the batch are people already in the database (read only, committed data),
        and ids for the others (drawing 20,000 values from the sequence takes the server ~50 ms)."""
        with unit_of_work() as session:
            known = pending.known = set(self._existing(session, [item[1] for item in pending.fresh]))
            p_i, i_i = writer.PHONE_INDEX, writer.ID_INDEX
            pending.ids = writer.draw_ids(session, sum(1 for _n, row, *_ in pending.fresh
                                                       if row[p_i] not in known and row[i_i] not in known))
        return pending

    def _merge(self, session: Session, items: list[tuple[int, tuple[object, ...], list[object], str | None]],
               found: dict[str, dedup.Existing], later: list[tuple[int, str, str, list[object]]],
               step: dict[str, int], now: datetime) -> None:
        """The rows that are people already in the database: blanks filled, a "merged" event each,
        collisions (someone else's customer) recorded and told, a report line each."""
        merges: list[merge.Merge] = []
        for row_number, row, cells, _text in items:
            match, taken = merge.match_for(found, row)
            assert match is not None
            merges.append(merge.Merge(row_number, row, cells, match, taken))
        merge.write(session, merges, actor_staff_id=self.job.created_by, job_id=self.job.id, now=now)
        collided: list[dedup.Existing] = []
        for m in merges:
            match = m.match
            if match.owner_id is not None and match.owner_id != self.job.created_by:
                collided.append(match)
                # Neither the owner nor the customer id: the importer may be outside the owner's scope.
                later.append((m.row_number, "collision",
                              "撞单：该客户已有其他同事跟进，归属不变，双方已收到提醒", m.cells))
            else:
                where = "公海" if match.owner_id is None else "您名下"
                filled = f"，已补充：{'、'.join(merge.LABELS[f] for f in m.filled)}" if m.filled else ""
                later.append((m.row_number, "duplicate_existing",
                              f"客户已存在（客户 #{match.id}，{where}），未重复导入{filled}", m.cells))
        step["collisions"] = len(collided)
        step["duplicates_existing"] = len(merges) - len(collided)
        if collided:
            self._record_collisions(session, collided, now)

    def _plan(self, session: Session, new: list[tuple[object, ...]], now: datetime
              ) -> tuple[list[int | None] | None, datetime | None]:
        """Owners for the batch's new leads, decided before they are written (None: no assignment)."""
        if self.allocation is None or not new:
            return None, None
        # source None: each lead's own source (the file's 来源 column may vary) matches the rules
        mode = None if self.job.assign_mode == ASSIGN_BY_RULES else self.job.assign_mode
        allocation = self.allocation
        facts = allocation.LeadFacts
        s_i, r_i, c_i = writer.SOURCE, writer.REGION, writer.CUSTOMER_TYPE
        owners = allocation.plan(session, [facts(row[s_i], row[r_i], row[c_i]) for row in new],
                                 pool_id=self.pool_id, mode=mode, source=None)
        return owners, allocation.protection_until(session, self.pool_id, now)

    def _collect(self, written: _Written) -> None:
        """Back in the reading thread, once the batch committed: counters, report lines, progress."""
        for key, value in written.step.items():
            self.counts[key] += value
        for row_number, kind, message, cells in sorted(written.problems, key=lambda x: x[0]):
            self.report.add(row_number, kind, message, cells)
        if self.on_progress is not None:
            self.on_progress(dict(self.counts))

    def _record_collisions(self, session: Session, collided: list[dedup.Existing], now: datetime) -> None:
        """What :func:`crm.customers.record_collision` writes, set-based: the collision rows and the
        customers' "collision" events; each owner is told once per batch, the importer once per batch."""
        claimant = self.job.created_by
        merge.insert_rows(session, Collision, [
            {"customer_id": m.id, "owner_id": m.owner_id, "claimant_id": claimant, "source": self.job.source[:40],
             "channel": writer.CHANNEL, "at": now} for m in collided])
        merge.insert_events(session, [
            {"customer_id": m.id, "at": now, "kind": "collision", "summary": "撞单：其他销售录入了该客户，归属不变",
             "actor_staff_id": claimant} for m in collided])
        names = dict(session.execute(select(Staff.id, Staff.display_name).where(
            Staff.id.in_({m.owner_id for m in collided} | ({claimant} if claimant else set())))).all())
        who = names.get(claimant, "其他渠道") if claimant else "批量导入"
        by_owner: dict[int, list[dedup.Existing]] = {}
        for m in collided:
            by_owner.setdefault(m.owner_id or 0, []).append(m)
        for owner_id, mine in sorted(by_owner.items()):
            if len(mine) == 1:
                body = f"{who} 录入了您的客户 {_label(mine[0])}，客户仍归属您。"
            else:
                body = (f"{who} 导入的 {len(mine)} 位客户已是您的客户（{'、'.join(_label(m) for m in mine[:5])}"
                        f"{'等' if len(mine) > 5 else ''}），客户仍归属您。")
            notify.notify(session, owner_id, "collision", "撞单提醒", body,
                          customer_id=mine[0].id if len(mine) == 1 else None)
        if claimant:
            # Who follows them, and which record, stays with the owners (the importer may be outside their scope).
            body = (f"导入任务 #{self.job.id} 中有 {len(collided)} 位客户已有其他同事跟进（撞单），归属未改变，"
                    "明细见导入任务的问题行报告。")
            notify.notify(session, claimant, "collision", "撞单提醒", body)

    def _existing(self, session: Session, rows: list[tuple[object, ...]]) -> dict[str, dedup.Existing]:
        p_i, i_i = writer.PHONE_INDEX, writer.ID_INDEX
        phones = [row[p_i] for row in rows if row[p_i]]
        ids = [row[i_i] for row in rows if row[i_i]]
        chunk = 500 if session.get_bind().dialect.name == "sqlite" else 5000
        return dedup.find_existing(session, phones, ids, chunk=chunk)

    def _allocation_warning(self) -> str | None:
        """Said on the finished job when allocation was asked for and some new leads got nobody."""
        if not self.job.assign_mode:
            return None
        left = self.counts["created"] - self.counts["assigned"]
        if left <= 0:
            return None
        if self.job.assign_mode == ASSIGN_BY_RULES:
            why = "没有匹配的分配规则（或规则中没有可接收的员工）"
            fix = "请在「公海 → 分配规则」中添加规则，再从公海分配"
        else:
            why = "没有可接收的员工（员工已满额或不在岗）"
            fix = "请调整员工容量后从公海分配"
        return f"注意：{left} 位新客户{why}，未分配，已留在公海。{fix}。"

    def _finish(self) -> None:
        labels = {"processed": "处理行数", "created": "新建客户", "duplicates_in_file": "文件内重复",
                  "duplicates_existing": "已存在", "collisions": "撞单", "errors": "错误行", "assigned": "已分配"}
        summary: dict[str, object] = {"文件": self.job.filename, "来源": self.job.source,
                                      **{labels[k]: v for k, v in self.counts.items()}}
        path = self.report.close(summary)
        with unit_of_work() as session:
            now = clock.now()
            _still_running(session, self.job.id, status=ImportStatus.DONE, total=self.counts["processed"],
                           finished_at=now, updated_at=now, report_path=str(path) if path else None,
                           message=self._allocation_warning())
            audit.record(session, "customer.import", entity_type="import_job", entity_id=self.job.id,
                         after={"filename": self.job.filename, "sha256": self.job.sha256, **self.counts},
                         actor=self.actor)


def _chunks(data: Iterator[tuple[int, list[object]]], size: int, *, first: int | None = None
            ) -> Iterator[list[tuple[int, list[object]]]]:
    """Batches of ``size`` rows; with ``first``, the first ones smaller (first, then doubling)."""
    step = min(size, first or size)
    while chunk := list(itertools.islice(data, step)):
        yield chunk
        step = min(size, step * 2)


_STOP = object()  # the end of a pipeline stage's input


def _pending(future: Future[prepare.Batch], rows: list[tuple[int, list[object]]]) -> _Pending:
    """A prepared batch, with the file's cells put back beside its rows (for the problem report)."""
    batch = future.result()
    return _Pending(fresh=[(number, row, rows[pos][1], text) for pos, number, row, text in batch.fresh],
                    problems=[(rows[pos][0], kind, message, rows[pos][1]) for pos, kind, message in batch.problems],
                    rows=batch.rows, errors=batch.errors, duplicates_in_file=batch.duplicates_in_file)


def _label(m: dedup.Existing) -> str:
    return m.name or m.phone_masked or f"#{m.id}"


def import_file(path: Path, *, source: str | None = None, assign_mode: str | None = None,
                pool_id: int | None = None, created_by: int | None = None, filename: str | None = None,
                on_progress: Progress | None = None, batch_size: int = BATCH_SIZE) -> RunResult:
    """Import a local file now (the CLI, the benchmark): a job is recorded like any other.
    An unknown pool or assignment mode is refused before any job is recorded."""
    sha = file_sha256(path) if path.is_file() else "0" * 64
    with unit_of_work() as session:
        if pool_id is not None and session.get(Pool, pool_id) is None:
            raise PoolNotFound(f"公海不存在：{pool_id}")
        if assign_mode:
            check_assign_mode(assign_mode)
        job = create_job(session, filename=filename or path.name, file_path=path, source=source,
                         assign_mode=assign_mode, pool_id=pool_id, created_by=created_by, sha256=sha)
        job_id = job.id
    result = run_job(job_id, on_progress=on_progress, batch_size=batch_size, database_wait=0)
    assert result is not None
    return result
