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
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, configure_mappers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import api_docs, audit, figure_refresh, outbox_relay, plugins, simulators, tasks, validation_messages
from core.db import get_session_factory, unit_of_work
from core.errors import AppError, ServiceUnavailable
from core.logging_setup import configure_logging
from core.settings import get_settings, missing_secrets

log = logging.getLogger(__name__)

ErrorRenderer = Callable[[Request, AppError], Response]
RETRY_AFTER_SECONDS = 5


class NumberOutOfRange(AppError):
    code = "number_out_of_range"
    status = 422
    message = "数字超出范围，请检查页码或编号"


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
_NO_STORE_PREFIXES = ("/api/", "/mp/")  # personal data in JSON: never in a browser's or a proxy's cache
_NO_FRAMING = "'none'"

# path prefix -> the CSP frame-ancestors sources allowed to frame pages under it (allow_framing).
_framing: dict[str, str] = {}


def allow_framing(path_prefix: str, ancestors: str) -> None:
    """The one way for pages to be framed: every other response says ``X-Frame-Options: DENY`` and
    ``Content-Security-Policy: frame-ancestors 'none'``. Under ``path_prefix`` the X-Frame-Options header
    is dropped and frame-ancestors becomes ``ancestors`` (whatever CSP the page sets otherwise is kept).

    For example the WeCom chat sidebar, which WeCom's client shows in a frame::

        allow_framing("/wecom/sidebar", "https://*.work.weixin.qq.com https://*.weixin.qq.com")

    Call it from the channel's ``mount(app)``; keep the prefix as narrow as the embedded pages.
    """
    if not path_prefix.startswith("/") or not ancestors.strip() or "'none'" in ancestors:
        raise ValueError("allow_framing needs a path prefix and the sources allowed to frame it")
    _framing[path_prefix] = ancestors.strip()


def _frame_ancestors(path: str) -> str:
    for prefix, ancestors in _framing.items():
        if path.startswith(prefix):
            return ancestors
    return _NO_FRAMING


def _with_frame_ancestors(csp: str, ancestors: str) -> str:
    directives = [d.strip() for d in csp.split(";") if d.strip() and not d.strip().startswith("frame-ancestors")]
    return "; ".join([*directives, f"frame-ancestors {ancestors}"])


def security_headers(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers every response carries, added to (or, for framing, corrected in) ``headers``."""
    present = {name.lower() for name, _ in headers}
    out = list(headers)
    out.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
    ancestors = _frame_ancestors(path)
    if ancestors == _NO_FRAMING:
        if b"x-frame-options" not in present:
            out.append((b"x-frame-options", b"DENY"))
    else:
        out = [h for h in out if h[0].lower() != b"x-frame-options"]
    csp = next((v.decode("latin-1") for n, v in out if n.lower() == b"content-security-policy"), None)
    if csp is None:
        out.append((b"content-security-policy", f"frame-ancestors {ancestors}".encode("latin-1")))
    elif f"frame-ancestors {ancestors}" not in csp:
        out = [h for h in out if h[0].lower() != b"content-security-policy"]
        out.append((b"content-security-policy", _with_frame_ancestors(csp, ancestors).encode("latin-1")))
    if b"cache-control" not in present and path.startswith(_NO_STORE_PREFIXES):
        out.append((b"cache-control", b"no-store"))
    return out


class RequestContextMiddleware:
    """Request id (``X-Request-ID``, taken from the client or made up) for the audit context and the
    response, and the security headers every response carries (:func:`security_headers`: nosniff,
    referrer policy, no framing unless :func:`allow_framing` says so, ``no-store`` on /api/ and /mp/).

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
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", encoded_id))
                message = {**message, "headers": security_headers(path, headers)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def warm_up(app: FastAPI) -> None:
    """Do before the first request what a web process otherwise does during its first requests, under load:
    configure the ORM's mappers, import the database driver and open a pooled connection, and run the channels'
    warm-ups (``app.state.warm_ups``: the console compiles its templates). Under the console load bench a cold
    process spent seconds of its first requests on this while fifty staff waited (issue 18 item 3). A database
    that is not up yet is left for the requests to report (503), as before."""
    configure_mappers()
    try:
        with get_session_factory()() as session:
            session.execute(text("SELECT 1"))
    except sa_exc.SQLAlchemyError as exc:
        log.warning("warm-up: database not reachable (%s)", str(exc).splitlines()[0][:200])
    for hook in app.state.warm_ups:
        hook()


def create_app(*, start_tasks: bool = True, warm: bool = False) -> FastAPI:
    """The application. ``warm``: :func:`warm_up` before serving (``scrm serve``; tests start cold)."""
    configure_logging()
    check_production_settings()
    plugins.load_models()
    plugins.load_tasks()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            warm_up(app)
        # The ~400,000 objects of the loaded application (models, routes, templates) never die; moved out
        # of the collector's view, a full collection no longer walks them (~0.1 s, a stall of every request
        # in flight: the p99 of the callback endpoint under load).
        gc.freeze()
        # served: the bosses' dashboards and drop-downs computed before they are asked for (core.figure_refresh)
        refresher = figure_refresh.start() if warm else None
        runner = None
        if start_tasks and get_settings().embedded_tasks and tasks.get_runner() is None:
            runner = tasks.start_inprocess()
            runner.stop_with(outbox_relay.start_relay())  # the outbox rows a previous run of this process left
            log.info("embedded task runner started (no SCRM_REDIS_URL)")
        yield
        if refresher is not None:
            refresher.stop()
        if runner is not None:
            runner.stop()
            tasks.set_runner(None)
        if not tasks.stop_sender():  # Celery: what the requests committed is sent before the process exits
            log.error("shutting down with unsent tasks; the periodic sweeps will pick their work up")

    # Swagger UI from our own static files, no ReDoc, staff only in production: core.api_docs.
    app = FastAPI(title="贷款助贷 SCRM", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    api_docs.mount_static(app)
    api_docs.add_docs(app, docs_path="/api/docs", openapi_path="/api/openapi.json", title="贷款助贷 SCRM 员工接口",
                      public_openapi_url="/api/openapi.json")
    app.state.error_renderers: dict[str, ErrorRenderer] = {}
    app.state.warm_ups: list[Callable[[], None]] = []  # channels add theirs in mount(app): see warm_up

    app.add_middleware(RequestContextMiddleware)

    # URL prefix -> field labels: a channel's malformed requests get the Chinese 422 of core.validation_messages.
    app.state.validation_labels: dict[str, Mapping[str, str]] = {}

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        for prefix, labels in app.state.validation_labels.items():
            if request.url.path.startswith(prefix):
                return JSONResponse(validation_messages.payload(list(exc.errors()), labels), status_code=422)
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(OverflowError)
    async def number_out_of_range(request: Request, exc: OverflowError) -> Response:
        # An id or number no database integer holds (SQLite refuses to bind it): bad input, not a 500.
        return await app_error(request, NumberOutOfRange())

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Response:
        # PostgreSQL's answer to the same input: numeric_value_out_of_range (22003). Anything else stays a 500.
        if getattr(exc.orig, "sqlstate", None) == "22003":
            return await app_error(request, NumberOutOfRange())
        raise exc

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        for prefix, renderer in app.state.error_renderers.items():
            if request.url.path.startswith(prefix):
                return renderer(request, exc)
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> Response:
        # The database is down, restarting, or out of connections: a clear 503 at once (nothing was
        # committed), never a hang or a bare 500. Callers retry; WeCom re-delivers an unanswered callback.
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0][:200])
        response = await app_error(request, ServiceUnavailable())
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

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
    simulators.check()  # after the channels loaded: every package's simulator has registered
    return app


def create_served_app() -> FastAPI:
    """The application as ``scrm serve`` runs it: warmed up before its first request."""
    return create_app(warm=True)
