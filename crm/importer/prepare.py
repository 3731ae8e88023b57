"""The per-row CPU work of an import (parse, validate, blind-index, drop in-file duplicates, seal,
name initials), done batch by batch either inline or in a separate worker process.

On PostgreSQL a large file is prepared by one worker process (a second core) while the importing
process writes the previous batch: the worker keeps the state that spans the file (the identifiers
already seen, the cipher) and answers each batch with plain tuples (cheap to pickle); the plaintext
cells stay with the importer, which needs them only for its problem report. The worker's answers
carry no plaintext phone or ID number: only blind indexes and sealed values.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from core import pii
from crm.importer import dedup, writer
from crm.importer.headers import HeaderMap
from crm.importer.rows import parse_row

# One prepared new-to-this-file row: (position in the batch, phone index, ID index, row number,
# source, region, customer type, the customer's column values for writer.insert_new).
Fresh = tuple[int, str | None, str | None, int, str, str | None, str, tuple[object, ...]]


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

    def __init__(self, header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring) -> None:
        self.header, self.source, self.grades = header, source, grades
        self.sealer = writer.Sealer(ring)
        self.seen = dedup.SeenInFile()

    def batch(self, rows: list[tuple[int, list[object]]]) -> Batch:
        header, source, grades, sealer, seen = self.header, self.source, self.grades, self.sealer, self.seen
        index = sealer.index
        out = Batch(rows=len(rows))
        for pos, (row_number, cells) in enumerate(rows):
            parsed = parse_row(header, row_number, cells, default_source=source, grades=grades)
            if isinstance(parsed, list):
                out.errors += 1
                out.problems.append((pos, "error", "；".join(parsed)))
                continue
            phone_index = index(pii.PHONE, parsed.phone) if parsed.phone else None
            id_index = index(pii.ID_NUMBER, parsed.id_number) if parsed.id_number else None
            keys = (("phone", phone_index), ("id_number", id_index))
            earlier = seen.first_row(keys)
            if earlier is not None:
                out.duplicates_in_file += 1
                out.problems.append((pos, "duplicate_in_file",
                                     f"与第 {earlier[0]} 行重复（{dedup.LABELS[earlier[1]]}相同），未重复导入"))
                continue
            seen.add(row_number, keys)
            prepared = writer.Prepared(parsed, phone_index, id_index)
            out.fresh.append((pos, phone_index, id_index, row_number, parsed.source, parsed.region,
                              parsed.customer_type, writer.stage_row(sealer, prepared)))
        return out


class LeadRef(NamedTuple):
    """What the writer reads of a lead (:class:`crm.importer.rows.Lead`'s fields of these names);
    no plaintext identifiers, and a tuple: cheap to build for every row."""

    row_number: int
    source: str
    region: str | None
    customer_type: str


def prepared(item: Fresh) -> writer.Prepared:
    """The importer's view of a prepared row (no plaintext identifiers: only what writing needs)."""
    _pos, phone_index, id_index, row_number, source, region, customer_type, _row = item
    return writer.Prepared(LeadRef(row_number, source, region, customer_type), phone_index, id_index)  # type: ignore[arg-type]


# --- the worker process ---------------------------------------------------------------------------

_worker: Preparer | None = None


def _start(header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring) -> None:
    global _worker
    _worker = Preparer(header, source, grades, ring)


def _run(rows: list[tuple[int, list[object]]]) -> Batch:
    assert _worker is not None
    return _worker.batch(rows)


class InProcess:
    """Prepare batches here, one at a time (SQLite, small files)."""

    def __init__(self, header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring) -> None:
        self._preparer = Preparer(header, source, grades, ring)

    def submit(self, rows: list[tuple[int, list[object]]]) -> Future[Batch]:
        future: Future[Batch] = Future()
        future.set_result(self._preparer.batch(rows))
        return future

    def close(self) -> None:
        pass


class WorkerProcess:
    """Prepare batches in one separate process, in order (one worker: the file-wide state stays whole)."""

    def __init__(self, header: HeaderMap, source: str, grades: frozenset[str], ring: pii.Keyring) -> None:
        # spawn: a fresh interpreter, nothing of this process' threads or database connections; the
        # key ring goes down the pipe (the worker reads no settings)
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(header, source, grades, ring))

    def submit(self, rows: list[tuple[int, list[object]]]) -> Future[Batch]:
        return self._pool.submit(_run, rows)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
