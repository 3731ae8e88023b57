"""The composition root of the HTTP service: health endpoints, error rendering, the channels.

Each channel package (``admin``, ``bot``, ``miniprogram_api``) has a ``web`` module with
``mount(app)``; the kernel finds them through :mod:`core.plugins` and never imports them by name.
A channel may register an error renderer for its URL prefix in ``app.state.error_renderers``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import audit, plugins, tasks, validation_messages
from core.db import get_session_factory, unit_of_work
from core.errors import AppError
from core.logging_setup import configure_logging
from core.settings import get_settings, missing_secrets

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
    missing = missing_secrets(s)
    if missing:
        raise RuntimeError(f"production needs {', '.join(missing)}: run `scrm init-secrets` or set them")
    if s.is_sqlite:
        log.warning("production on SQLite: use PostgreSQL (SCRM_DATABASE_URL)")
    if not s.cookie_secure:
        log.warning("production without SCRM_COOKIE_SECURE=true: session cookies travel over plain HTTP")


_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"))


class RequestContextMiddleware:
    """Request id (``X-Request-ID``, taken from the client or made up) for the audit context and the
    response, and the security headers every response carries.

    A plain ASGI middleware: ``@app.middleware("http")`` (BaseHTTPMiddleware) would add a task group,
    a memory stream and a streaming response wrapper to every request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or os.urandom(8).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        audit.set_context(None, request_id)
        encoded_id = request_id.encode("latin-1")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                present = {name.lower() for name, _ in headers}
                headers.append((b"x-request-id", encoded_id))
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(*, start_tasks: bool = True) -> FastAPI:
    configure_logging()
    check_production_settings()
    plugins.load_models()
    plugins.load_tasks()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The ~400,000 objects of the loaded application (models, routes, templates) never die; moved out
        # of the collector's view, a full collection no longer walks them (~0.1 s, a stall of every request
        # in flight: the p99 of the callback endpoint under load).
        gc.freeze()
        runner = None
        if start_tasks and get_settings().embedded_tasks and tasks.get_runner() is None:
            runner = tasks.start_inprocess()
            log.info("embedded task runner started (no SCRM_REDIS_URL)")
        yield
        if runner is not None:
            runner.stop()
            tasks.set_runner(None)
        if not tasks.stop_sender():  # Celery: what the requests committed is sent before the process exits
            log.error("shutting down with unsent tasks; the periodic sweeps will pick their work up")

    app = FastAPI(title="贷款助贷 SCRM", lifespan=lifespan, docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.error_renderers: dict[str, ErrorRenderer] = {}

    app.add_middleware(RequestContextMiddleware)

    # URL prefix -> field labels: a channel's malformed requests get the Chinese 422 of core.validation_messages.
    app.state.validation_labels: dict[str, Mapping[str, str]] = {}

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        for prefix, labels in app.state.validation_labels.items():
            if request.url.path.startswith(prefix):
                return JSONResponse(validation_messages.payload(list(exc.errors()), labels), status_code=422)
        return await request_validation_exception_handler(request, exc)

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
