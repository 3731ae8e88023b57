"""The per-row CPU work of an import (parse, validate, blind-index, drop in-file duplicates, seal,
name initials; on PostgreSQL also the row as COPY text), done batch by batch either inline or in a
separate worker process (``service.WORKER_PROCESS_ROWS``, off by default: on two cores it costs more
than it saves).

A worker process keeps the state that spans the file (the identifiers already seen, the cipher) and
answers each batch with plain tuples; the plaintext cells stay with the importer, which needs them
only for its problem report. The worker's answers carry no plaintext phone or ID number: only blind
indexes and sealed values.
"""

from __future__ import annotations

import gc
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from core import pii
from crm.importer import dedup, writer
from crm.importer.headers import HeaderMap
from crm.importer.rows import parse_row

# One prepared new-to-this-file row: (position in the batch, row number, the customer's column
# values for writer.insert_new, PII sealed: writer.stage_row, and the same as COPY text when asked).
Fresh = tuple[int, int, tuple[object, ...], str | None]


@dataclass
class Batch:
    """What preparing one batch of rows found (positions refer to the batch's list of rows)."""

    fresh: list[Fresh] = field(default_factory=list)
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (position, kind, message)
    rows: int = 0
    errors: int = 0
    duplicates_in_file: int = 0


class Preparer:
    """The file-wide state of preparing: header, default source, grades, cipher, identifiers seen."""

    def __init__(self, header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring,
                 copy_text: bool = False) -> None:
        self.header, self.source, self.grades = header, source, grades
        self.sealer = writer.Sealer(ring)
        self.seen: dict[str, int] = {}  # blind index -> the row number that brought it first
        self.copy_text = copy_text  # PostgreSQL: also the row as COPY text (writer.copy_fields)

    def batch(self, rows: list[tuple[int, list[object]]]) -> Batch:
        header, source, grades, sealer, seen = self.header, self.source, self.grades, self.sealer, self.seen
        index, stage_row, seen_get = sealer.index, writer.stage_row, seen.get
        text = writer.copy_fields if self.copy_text else None
        out = Batch(rows=len(rows))
        fresh, problems = out.fresh, out.problems
        for pos, (row_number, cells) in enumerate(rows):
            lead = parse_row(header, row_number, cells, default_source=source, grades=grades)
            if lead.__class__ is list:
                out.errors += 1
                problems.append((pos, "error", "；".join(lead)))  # type: ignore[arg-type]
                continue
            phone_index = index(pii.PHONE, lead.phone) if lead.phone else None  # type: ignore[union-attr]
            id_index = index(pii.ID_NUMBER, lead.id_number) if lead.id_number else None  # type: ignore[union-attr]
            earlier, kind = (seen_get(phone_index), "phone") if phone_index is not None else (None, "")
            if earlier is None and id_index is not None:
                earlier, kind = seen_get(id_index), "id_number"
            if earlier is not None:
                out.duplicates_in_file += 1
                problems.append((pos, "duplicate_in_file", f"与第 {earlier} 行重复（{dedup.LABELS[kind]}相同），未重复导入"))
                continue
            if phone_index is not None:
                seen[phone_index] = row_number
            if id_index is not None:
                seen[id_index] = row_number
            row = stage_row(sealer, lead, phone_index, id_index)  # type: ignore[arg-type]
            fresh.append((pos, row_number, row, text(row) if text else None))
        return out


# --- the worker process ---------------------------------------------------------------------------

_worker: Preparer | None = None


def _start(header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring, copy_text: bool) -> None:
    global _worker
    gc.set_threshold(50_000, *gc.get_threshold()[1:])  # as the importing process does during a run
    _worker = Preparer(header, source, grades, ring, copy_text)


def _run(rows: list[tuple[int, list[object]]]) -> Batch:
    assert _worker is not None
    return _worker.batch(rows)


class InProcess:
    """Prepare batches here, one at a time (SQLite, small files)."""

    def __init__(self, header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring,
                 copy_text: bool = False) -> None:
        self._preparer = Preparer(header, source, grades, ring, copy_text)

    def submit(self, rows: list[tuple[int, list[object]]]) -> Future[Batch]:
        future: Future[Batch] = Future()
        future.set_result(self._preparer.batch(rows))
        return future

    def close(self) -> None:
        pass


class WorkerProcess:
    """Prepare batches in one separate process, in order (one worker: the file-wide state stays whole)."""

    def __init__(self, header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring,
                 copy_text: bool = False) -> None:
        # spawn: a fresh interpreter, nothing of this process' threads or database connections; the
        # key ring goes down the pipe (the worker reads no settings)
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(header, source, grades, ring, copy_text))

    def submit(self, rows: list[tuple[int, list[object]]]) -> Future[Batch]:
        return self._pool.submit(_run, rows)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
