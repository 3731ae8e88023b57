"""The composition root of the HTTP service: health endpoints, error rendering, the channels.

Each channel package (``admin``, ``bot``, ``miniprogram_api``) has a ``web`` module with
``mount(app)``; the kernel finds them through :mod:`core.plugins` and never imports them by name.
A channel may register an error renderer for its URL prefix in ``app.state.error_renderers``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.responses import Response

from core import audit, plugins, tasks
from core.db import get_session_factory, unit_of_work
from core.errors import AppError
from core.logging_setup import configure_logging
from core.settings import get_settings

log = logging.getLogger(__name__)

ErrorRenderer = Callable[[Request, AppError], Response]


def db_session() -> Iterator[Session]:
    """The request's unit of work: committed when the endpoint returns, before the response is sent."""
    with unit_of_work() as session:
        yield session


# scope="function": the commit happens before the response goes out, so a failed commit is a 500,
# never a success the database does not hold.
SessionDep = Annotated[Session, Depends(db_session, scope="function")]


def check_production_settings() -> None:
    s = get_settings()
    if s.env != "production":
        return
    missing = [name for name in ("secret_key", "pii_keys", "blind_index_key") if not getattr(s, name)]
    if missing:
        raise RuntimeError(f"production needs {', '.join('SCRM_' + m.upper() for m in missing)}")
    if s.is_sqlite:
        log.warning("production on SQLite: use PostgreSQL (SCRM_DATABASE_URL)")
    if not s.cookie_secure:
        log.warning("production without SCRM_COOKIE_SECURE=true: session cookies travel over plain HTTP")


def create_app(*, start_tasks: bool = True) -> FastAPI:
    configure_logging()
    check_production_settings()
    plugins.load_models()
    plugins.load_tasks()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner = None
        if start_tasks and get_settings().embedded_tasks and tasks.get_runner() is None:
            runner = tasks.start_inprocess()
            log.info("embedded task runner started (no SCRM_REDIS_URL)")
        yield
        if runner is not None:
            runner.stop()
            tasks.set_runner(None)

    app = FastAPI(title="贷款助贷 SCRM", lifespan=lifespan, docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.error_renderers: dict[str, ErrorRenderer] = {}

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Any]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        audit.set_context(None, request_id)
        response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        for prefix, renderer in app.state.error_renderers.items():
            if request.url.path.startswith(prefix):
                return renderer(request, exc)
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        ok = True
        try:
            with get_session_factory()() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            ok, checks["database"] = False, f"error: {type(exc).__name__}"
        redis_url = get_settings().redis_url
        if redis_url:
            try:
                import redis

                redis.Redis.from_url(redis_url, socket_timeout=2).ping()
                checks["broker"] = "ok"
            except Exception as exc:  # noqa: BLE001
                ok, checks["broker"] = False, f"error: {type(exc).__name__}"
        else:
            checks["broker"] = "in-process"
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    for module in plugins.load_all("web"):
        module.mount(app)
    return app
