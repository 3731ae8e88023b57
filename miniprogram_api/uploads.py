"""Uploaded images (ID photos …): at most 5 MB, JPEG or PNG by their magic bytes (the declared type and
file name are ignored), stored outside the database under ``SCRM_MP_UPLOAD_DIR`` with a random,
unguessable name (``YYYY/MM/<128 random bits>.bin``), owner-only file mode, and the SHA-256 of the image.

The file on disk is encrypted (AES-256-GCM under the active PII key, the storage name as associated
data, the key id in the header: ``SCRMF1 | len(kid) | kid | nonce | ciphertext``), so a copied upload
directory reveals no ID card. :func:`read` decrypts and checks the checksum. Old keys must stay in
``SCRM_PII_KEYS`` while files sealed under them exist (``scrm pii rotate`` does not rewrite files).

A file is written before the row is flushed; if the row fails, the file is removed again.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock, pii
from core.settings import get_settings
from miniprogram_api.errors import MpErrorCode
from miniprogram_api.exceptions import DraftSubmitted, UploadNotFound, UploadRefused
from miniprogram_api.models import DraftStatus, MpApplicationDraft, MpDocument

MAX_BYTES = 5 * 1024 * 1024
KINDS = {"id_front": "身份证人像面", "id_back": "身份证国徽面", "income": "收入证明", "other": "其他材料"}
MAGIC = b"SCRMF1"


def sniff(data: bytes) -> str | None:
    """The image type by magic bytes: JPEG (FF D8 FF) or PNG (89 50 4E 47 0D 0A 1A 0A); anything else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def upload_root() -> Path:
    return Path(get_settings().mp_upload_dir)


def path_of(doc: MpDocument) -> Path:
    return upload_root() / doc.storage_name


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
    now = clock.now()
    name = f"{now:%Y}/{now:%m}/{secrets.token_hex(16)}.bin"
    target = upload_root() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_seal(name, data))
    try:
        doc = MpDocument(customer_id=customer_id, draft_id=draft_id, kind=kind, content_type=content_type,
                         size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), storage_name=name,
                         created_at=now)
        session.add(doc)
        session.flush()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    audit.record(session, "mp.document_uploaded", entity_type="mp_document", entity_id=doc.id,
                 after={"kind": kind, "size": len(data), "sha256": doc.sha256})
    return doc


def _seal(name: str, data: bytes) -> bytes:
    ring = pii.keyring()
    kid = ring.active_id.encode()
    nonce = os.urandom(12)
    return MAGIC + bytes([len(kid)]) + kid + nonce + AESGCM(ring.keys[ring.active_id]).encrypt(
        nonce, data, name.encode())


def read(doc: MpDocument) -> bytes:
    """The image, decrypted and checked against its checksum (for the people who review it)."""
    raw = path_of(doc).read_bytes()
    if not raw.startswith(MAGIC):
        raise pii.VaultError("文件格式不正确", code=MpErrorCode.UPLOAD_CORRUPT)
    n = raw[len(MAGIC)]
    kid = raw[len(MAGIC) + 1:len(MAGIC) + 1 + n].decode()
    rest = raw[len(MAGIC) + 1 + n:]
    key = pii.keyring().keys.get(kid)
    if key is None:
        raise pii.VaultError(f"密钥 {kid} 不存在，无法解密", code=MpErrorCode.PII_KEY_UNKNOWN)
    try:
        data = AESGCM(key).decrypt(rest[:12], rest[12:], doc.storage_name.encode())
    except InvalidTag as exc:
        raise pii.VaultError(code=MpErrorCode.UPLOAD_TAMPERED) from exc
    if hashlib.sha256(data).hexdigest() != doc.sha256:
        raise pii.VaultError("文件校验失败", code=MpErrorCode.UPLOAD_TAMPERED)
    return data


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
    path_of(doc).unlink(missing_ok=True)
    audit.record(session, "mp.document_deleted", entity_type="mp_document", entity_id=doc.id)
