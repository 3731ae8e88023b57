"""Uploaded images (ID photos …): at most 5 MB, JPEG or PNG by their magic bytes (the declared type and
file name are ignored), encrypted at rest by :mod:`core.sealed_files` (random storage name, owner-only file mode,
the SHA-256 of the image kept on the row). A file is written before the row is flushed; if the row fails, the
file is removed again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock, pii, sealed_files
from miniprogram_api.errors import MpErrorCode
from miniprogram_api.exceptions import DraftSubmitted, UploadNotFound, UploadRefused
from miniprogram_api.models import DraftStatus, MpApplicationDraft, MpDocument

MAX_BYTES = 5 * 1024 * 1024
KINDS = {"id_front": "身份证人像面", "id_back": "身份证国徽面", "income": "收入证明", "other": "其他材料"}


def sniff(data: bytes) -> str | None:
    """JPEG or PNG by magic bytes; anything else (a PDF too: the mini-program takes photos) None."""
    kind = sealed_files.sniff(data)
    return kind if kind in (sealed_files.JPEG, sealed_files.PNG) else None


def store(session: Session, customer_id: int, kind: str, data: bytes, *, draft_id: int | None = None) -> MpDocument:
    if kind not in KINDS:
        raise UploadRefused(f"未知的材料类型：{kind}", field="kind")
    if not data:
        raise UploadRefused("文件为空", field="file")
    if len(data) > MAX_BYTES:
        raise UploadRefused(f"文件过大：最大 {MAX_BYTES // (1024 * 1024)} MB", field="file", code=MpErrorCode.UPLOAD_TOO_LARGE)
    content_type = sniff(data)
    if content_type is None:
        raise UploadRefused("只能上传 JPG 或 PNG 图片", field="file", code=MpErrorCode.UPLOAD_NOT_IMAGE)
    stored = sealed_files.write(data)
    try:
        doc = MpDocument(customer_id=customer_id, draft_id=draft_id, kind=kind, content_type=content_type,
                         size_bytes=stored.size_bytes, sha256=stored.sha256, storage_name=stored.storage_name,
                         created_at=clock.now())
        session.add(doc)
        session.flush()
    except BaseException:
        sealed_files.remove(stored.storage_name)
        raise
    audit.record(session, "mp.document_uploaded", entity_type="mp_document", entity_id=doc.id,
                 after={"kind": kind, "size": len(data), "sha256": doc.sha256})
    return doc


def read(doc: MpDocument) -> bytes:
    """The image, decrypted and checked against its checksum (for the people who review it)."""
    try:
        return sealed_files.read(doc.storage_name, doc.sha256)
    except sealed_files.FileCorrupt as exc:
        raise pii.VaultError(exc.message, code=MpErrorCode.UPLOAD_CORRUPT) from exc
    except sealed_files.FileKeyUnknown as exc:
        raise pii.VaultError(exc.message, code=MpErrorCode.PII_KEY_UNKNOWN) from exc
    except sealed_files.FileTampered as exc:
        raise pii.VaultError(exc.message, code=MpErrorCode.UPLOAD_TAMPERED) from exc


def get(session: Session, customer_id: int, document_id: int) -> MpDocument:
    doc = session.get(MpDocument, document_id)
    if doc is None or doc.customer_id != customer_id or doc.deleted_at is not None:
        raise UploadNotFound()
    return doc


def list_for(session: Session, customer_id: int, draft_id: int | None = None) -> list[MpDocument]:
    stmt = select(MpDocument).where(MpDocument.customer_id == customer_id, MpDocument.deleted_at.is_(None))
    if draft_id is not None:
        stmt = stmt.where(MpDocument.draft_id == draft_id)
    return list(session.scalars(stmt.order_by(MpDocument.id)))


def delete(session: Session, customer_id: int, document_id: int) -> None:
    doc = get(session, customer_id, document_id)
    if doc.draft_id is not None:
        draft = session.get(MpApplicationDraft, doc.draft_id)
        if draft is not None and draft.status != DraftStatus.DRAFT:
            raise DraftSubmitted("申请已提交，材料不能删除")
    doc.deleted_at = clock.now()
    session.flush()
    sealed_files.remove(doc.storage_name)
    audit.record(session, "mp.document_deleted", entity_type="mp_document", entity_id=doc.id)
