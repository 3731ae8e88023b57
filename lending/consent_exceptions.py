"""Refusals of consent documents and consent records (stable codes, Chinese messages).

The codes keep their ``mp_`` names: the mini-program client keys on them (miniprogram_api.errors lists them)."""

from __future__ import annotations

from core.errors import AppError, Conflict, NotFound, ValidationFailed

__all__ = ["ConsentDocumentNotFound", "ConsentMissing", "ConsentRefused", "ConsentVersionTaken"]


class ConsentRefused(ValidationFailed):
    """A document that cannot be published as typed, or a consent that cannot be given or withdrawn."""

    code = "mp_consent_refused"
    message = "协议操作不正确"


class ConsentDocumentNotFound(NotFound):
    code = "mp_consent_document_not_found"
    message = "协议不存在"


class ConsentMissing(AppError):
    """Submission without the latest version of a required document agreed (``mp_consent_missing``), or
    with a required document never published (``mp_consent_document_missing``)."""

    code = "mp_consent_missing"
    status = 409
    message = "请先阅读并同意相关协议"


class ConsentVersionTaken(Conflict):
    """Two people published the same document at once: the second is refused, nothing written (staff only)."""

    code = "consent_version_taken"
    message = "该协议刚刚发布了新版本，请刷新后查看再发布"
