"""Logging for every process: one format, and the PII masking filter on every handler."""

from __future__ import annotations

import logging

from core.pii import MaskingFilter
from core.settings import get_settings

_configured = False


def configure_logging() -> None:
    global _configured
    if _configured:
        return
    logging.basicConfig(level=get_settings().log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(MaskingFilter())
    _configured = True
