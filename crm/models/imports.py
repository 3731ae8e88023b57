"""Lead import jobs (批量导入): one row per file imported, with its progress counters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

__all__ = ["IMPORT_STATUS_LABELS", "ImportJob", "ImportStatus"]


class ImportStatus(StrEnum):
    QUEUED = "queued"  # uploaded in the console, waiting for its task
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the file as a whole was refused (not a spreadsheet, wrong headers…) or a batch failed


IMPORT_STATUS_LABELS = {"queued": "排队中", "running": "导入中", "done": "已完成", "failed": "失败"}


class ImportJob(Base):
    __tablename__ = "crm_import_job"
    __table_args__ = (Index("ix_crm_import_job_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    file_path: Mapped[str | None] = mapped_column(String(500))  # the stored upload (console imports)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(40))
    assign_mode: Mapped[str | None] = mapped_column(String(30))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("crm_pool.id"))
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED)
    total: Mapped[int | None]  # data rows; an estimate while running
    processed: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    duplicates_in_file: Mapped[int] = mapped_column(default=0)
    duplicates_existing: Mapped[int] = mapped_column(default=0)
    collisions: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    assigned: Mapped[int] = mapped_column(default=0)
    report_path: Mapped[str | None] = mapped_column(String(500))
    message: Mapped[str | None] = mapped_column(String(1000))  # why the file failed, in Chinese
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
