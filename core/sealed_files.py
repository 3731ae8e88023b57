"""Files encrypted at rest (ID photos, signed papers): AES-256-GCM under the active PII key, stored outside the
database under the upload directory (``SCRM_MP_UPLOAD_DIR``) with a random, unguessable name
(``YYYY/MM/<128 random bits>.bin``), owner-only file mode. The storage name is the associated data, the key id
is in the header (``SCRMF1 | len(kid) | kid | nonce | ciphertext``), so a copied upload directory reveals
nothing and a file moved under another name does not open. Old keys must stay in ``SCRM_PII_KEYS`` while files
sealed under them exist (``scrm pii rotate`` does not rewrite files).

Callers keep the name and the SHA-256 of the plaintext in their own row; :func:`read` checks it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core import clock, pii
from core.settings import get_settings

MAGIC = b"SCRMF1"
JPEG, PNG, PDF = "image/jpeg", "image/png", "application/pdf"


class FileCorrupt(pii.VaultError):
    def __init__(self) -> None:
        super().__init__("文件格式不正确")


class FileKeyUnknown(pii.VaultError):
    def __init__(self, kid: str) -> None:
        super().__init__(f"密钥 {kid} 不存在，无法解密")


class FileTampered(pii.VaultError):
    def __init__(self) -> None:
        super().__init__("文件校验失败")


@dataclass(frozen=True)
class StoredFile:
    storage_name: str  # relative to the upload directory
    sha256: str  # of the plaintext
    size_bytes: int


def sniff(data: bytes) -> str | None:
    """The type by magic bytes (JPEG, PNG or PDF); anything else None. Declared types and names are ignored."""
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if data[:5] == b"%PDF-":
        return PDF
    return None


def root() -> Path:
    return Path(get_settings().mp_upload_dir)


def write(data: bytes) -> StoredFile:
    """Seal ``data`` into a new file. The caller removes it again (:func:`remove`) if its row is not stored."""
    now = clock.now()
    name = f"{now:%Y}/{now:%m}/{secrets.token_hex(16)}.bin"
    target = root() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    ring = pii.keyring()
    kid = ring.active_id.encode()
    nonce = os.urandom(12)
    sealed = MAGIC + bytes([len(kid)]) + kid + nonce + AESGCM(ring.keys[ring.active_id]).encrypt(
        nonce, data, name.encode())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(sealed)
    return StoredFile(name, hashlib.sha256(data).hexdigest(), len(data))


def read(storage_name: str, sha256: str) -> bytes:
    """The plaintext, decrypted and checked against its checksum."""
    raw = (root() / storage_name).read_bytes()
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 1:
        raise FileCorrupt()
    n = raw[len(MAGIC)]
    kid = raw[len(MAGIC) + 1:len(MAGIC) + 1 + n].decode(errors="replace")
    rest = raw[len(MAGIC) + 1 + n:]
    key = pii.keyring().keys.get(kid)
    if key is None:
        raise FileKeyUnknown(kid)
    try:
        data = AESGCM(key).decrypt(rest[:12], rest[12:], storage_name.encode())
    except InvalidTag as exc:
        raise FileTampered() from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FileTampered()
    return data


def remove(storage_name: str) -> None:
    (root() / storage_name).unlink(missing_ok=True)
