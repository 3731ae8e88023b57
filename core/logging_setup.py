"""Logging for every process: one format, and the PII masking filter on every handler.

``configure_logging()`` sets up the root logger at process start. ``scrm serve`` hands uvicorn
:func:`uvicorn_log_config` as its ``log_config``: uvicorn applies it with ``dictConfig`` (in every
worker process too), replacing the handlers ``configure_logging()`` decorated earlier, so the
masking filter must be part of that configuration itself, on each handler it creates: the access
log (whose request line carries the query string, ``?q=13812349876``), uvicorn's error log with its
tracebacks, and the root handler the application's own loggers propagate to.

A Celery worker (and beat) replaces the root logger's handlers when it sets up its own logging
(``worker_hijack_root_logger``), dropping the filter as well: :func:`mask_celery_logging` puts it
back on every handler Celery sets up, through Celery's ``after_setup_logger`` and
``after_setup_task_logger`` signals.
"""

from __future__ import annotations

import logging
from typing import Any

from core.pii import MaskingFilter
from core.settings import get_settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_configured = False


def configure_logging() -> None:
    global _configured
    if _configured:
        return
    logging.basicConfig(level=get_settings().log_level.upper(), format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(MaskingFilter())
    _configured = True


def _mask_handlers(logger: logging.Logger | None = None, **_: Any) -> None:
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())


def mask_celery_logging() -> None:
    """Keep the masking filter on the handlers a Celery worker or beat installs (idempotent)."""
    from celery import signals

    signals.after_setup_logger.connect(_mask_handlers, weak=False, dispatch_uid="scrm-mask-pii")
    signals.after_setup_task_logger.connect(_mask_handlers, weak=False, dispatch_uid="scrm-mask-pii-task")


def uvicorn_log_config(level: str | None = None) -> dict[str, Any]:
    """uvicorn's own logging configuration with the masking filter on every handler, and the root
    logger (the application's loggers) in our format through a masked handler as well."""
    level = (level or get_settings().log_level).upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask_pii": {"()": "core.pii.MaskingFilter"}},
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                        "use_colors": None},
            "access": {"()": "uvicorn.logging.AccessFormatter",
                       "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'},
            "scrm": {"format": FORMAT},
        },
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                        "filters": ["mask_pii"]},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                       "filters": ["mask_pii"]},
            "scrm": {"formatter": "scrm", "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                     "filters": ["mask_pii"]},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["scrm"], "level": level},
    }
