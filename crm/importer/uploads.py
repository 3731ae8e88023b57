"""Accepting an uploaded file (console, API): its name, its size and its first bytes are checked
while it is stored under ``<import_dir>/uploads``, then what it would cost to open
(:func:`crm.importer.limits.precheck`), and only then is a job queued for it."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import PermissionDenied
from crm import customers
from crm.importer import limits, service
from crm.importer.errors import ImportFileEmpty, ImportFileInvalid
from crm.models import ImportJob, Pool, Role
from crm.permissions import permission
from crm.scope import Viewer

MAX_BYTES = 20 * 1024 * 1024
EXTENSIONS = (".xlsx", ".xls", ".ods", ".csv")
IMPORTERS = permission("customers.import", "批量导入", "上传客户名单并导入", {Role.ADMIN, Role.MANAGER, Role.SUPERVISOR},
                       group="客户")


def ensure_importer(viewer: Viewer) -> None:
    if viewer.role not in IMPORTERS:
        raise PermissionDenied("只有系统管理员、经理和主管可以批量导入线索")


def store(stream: BinaryIO, filename: str, *, max_bytes: int | None = None) -> tuple[Path, str]:
    """Copy the upload to the uploads folder; returns (path, sha256). Refuses before writing much."""
    max_bytes = max_bytes or MAX_BYTES
    name = Path(filename or "").name
    ext = Path(name).suffix.lower()
    if ext not in EXTENSIONS:
        raise ImportFileInvalid(f"只支持 .xlsx、.xls、.ods 和 .csv 文件（收到：{name or '无文件名'}）")
    folder = service.import_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{ext}"
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with path.open("wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise ImportFileInvalid(f"文件超过 {max_bytes // (1024 * 1024)} MB 上限，请拆分后分批导入")
                if len(head) < 8192:
                    head += chunk[: 8192 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ImportFileEmpty("上传的文件是空的（0 字节）")
        if ext in (".xlsx", ".ods") and not head.startswith(b"PK\x03\x04"):
            what = "Excel" if ext == ".xlsx" else "OpenDocument 表格"
            raise ImportFileInvalid(f"文件扩展名是 {ext}，但内容不是 {what} 文件，请检查是否选错了文件")
        if ext == ".xls" and not head.startswith(b"\xd0\xcf\x11\xe0"):
            raise ImportFileInvalid("文件扩展名是 .xls，但内容不是旧版 Excel 文件，请检查是否选错了文件")
        if ext == ".csv" and b"\x00" in head:
            raise ImportFileInvalid("文件扩展名是 .csv，但内容不是文本表格，请检查是否选错了文件")
        limits.precheck(path)  # a spreadsheet bomb is refused here, before it is queued
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest()


def start(session: Session, viewer: Viewer, stream: BinaryIO, filename: str, *, source: str | None = None,
          assign_mode: str | None = None, pool_id: int | None = None) -> ImportJob:
    """Check who asks and what for, store the file and queue the job (runs after commit)."""
    ensure_importer(viewer)
    if assign_mode:
        service.check_assign_mode(assign_mode)
    if pool_id is not None:
        visible = session.scalar(select(Pool.id).where(Pool.id == pool_id, customers.pool_visible_clause(viewer)))
        if visible is None:
            from crm.exceptions import PoolNotFound

            raise PoolNotFound("所选公海不存在或不在您的数据范围内")
    path, sha = store(stream, filename)
    return service.submit(session, filename=Path(filename).name, file_path=path, source=source,
                          assign_mode=assign_mode or None, pool_id=pool_id, created_by=viewer.staff_id, sha256=sha)


def visible_pools(session: Session, viewer: Viewer) -> list[Pool]:
    return list(session.scalars(select(Pool).where(customers.pool_visible_clause(viewer)).order_by(Pool.id)))
