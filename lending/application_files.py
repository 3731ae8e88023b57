"""Files kept with an application (申请材料): uploaded in the console (JPEG, PNG or PDF up to 10 MB, by their
magic bytes) or carried over from the mini-program at submission, encrypted at rest (:mod:`core.sealed_files`).
Uploading marks the document kind received (:func:`lending.applications.add_document`); every opening of a
file is written to the audit log, like any other reveal of personal data.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock, sealed_files
from crm.scope import Viewer
from lending import applications
from lending.application_exceptions import FileNotFound, FileRefused
from lending.models import ApplicationFile

MAX_BYTES = 10 * 1024 * 1024
TYPE_LABELS = {sealed_files.JPEG: "JPG 图片", sealed_files.PNG: "PNG 图片", sealed_files.PDF: "PDF 文件"}
CONSOLE, MINIPROGRAM = "console", "miniprogram"


def _file_name(name: str | None, content_type: str) -> str:
    """A display name: the uploaded one without path or control characters, else one from the type."""
    base = re.sub(r"[\x00-\x1f\x7f]", "", re.split(r"[/\\]", name or "")[-1]).strip()
    return base[:120] or {"image/jpeg": "图片.jpg", "image/png": "图片.png"}.get(content_type, "文件.pdf")


def attach(session: Session, application_id: int, kind: str, data: bytes, *, viewer: Viewer | None,
           file_name: str | None = None, note: str | None = None) -> ApplicationFile:
    """Keep ``data`` with the application as proof of ``kind`` (the document is marked received)."""
    if not data:
        raise FileRefused("请选择要上传的文件", field="file")
    if len(data) > MAX_BYTES:
        raise FileRefused(f"文件过大：最大 {MAX_BYTES // (1024 * 1024)} MB", field="file")
    content_type = sealed_files.sniff(data)
    if content_type is None:
        raise FileRefused("只能上传 JPG、PNG 图片或 PDF 文件", field="file")
    doc = applications.add_document(session, application_id, kind, viewer=viewer, note=note)  # checks scope, kind
    stored = sealed_files.write(data)
    try:
        row = ApplicationFile(application_id=doc.application_id, kind=doc.kind,
                              file_name=_file_name(file_name, content_type), content_type=content_type,
                              size_bytes=stored.size_bytes, sha256=stored.sha256, storage_name=stored.storage_name,
                              source=CONSOLE, by_staff_id=viewer.staff_id if viewer else None, at=clock.now())
        session.add(row)
        session.flush()
    except BaseException:
        sealed_files.remove(stored.storage_name)
        raise
    audit.record(session, "lending.application.file_uploaded", entity_type="lending_application",
                 entity_id=doc.application_id, after={"kind": doc.kind, "file_id": row.id, "size": row.size_bytes})
    return row


def carry_over(session: Session, application_id: int, kind: str, *, file_name: str, content_type: str,
               size_bytes: int, sha256: str, storage_name: str) -> ApplicationFile:
    """A file the mini-program already stored (encrypted), kept with the application it became."""
    row = ApplicationFile(application_id=application_id, kind=kind[:40], file_name=file_name[:120],
                          content_type=content_type, size_bytes=size_bytes, sha256=sha256, storage_name=storage_name,
                          source=MINIPROGRAM, by_staff_id=None, at=clock.now())
    session.add(row)
    session.flush()
    return row


def files(session: Session, application_id: int) -> list[ApplicationFile]:
    return list(session.scalars(select(ApplicationFile).where(ApplicationFile.application_id == application_id)
                                .order_by(ApplicationFile.id)))


def open_file(session: Session, viewer: Viewer, application_id: int, file_id: int) -> tuple[ApplicationFile, bytes]:
    """The file's bytes for someone who may see the application; the opening is audit-logged."""
    applications.get_application(session, viewer, application_id)  # not found outside the viewer's scope
    row = session.get(ApplicationFile, file_id)
    if row is None or row.application_id != application_id:
        raise FileNotFound()
    data = sealed_files.read(row.storage_name, row.sha256)
    audit.record(session, "lending.application.file_viewed", entity_type="lending_application",
                 entity_id=application_id, after={"kind": row.kind, "file_id": row.id})
    return row, data
