"""The mini-program API: a FastAPI sub-application mounted at ``/mp`` with its own OpenAPI at ``/mp/docs``.

Every answer is JSON. Refusals are ``{"code", "message"}`` with a Chinese message (AppError's status);
malformed requests (FastAPI's 422) are rendered the same way, field by field, in Chinese.
Every endpoint with an id is scoped to the logged-in customer: another customer's id is a 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response

from core import api_docs, validation_messages
from core.errors import AppError
from miniprogram_api.routes_account import router as account_router
from miniprogram_api.routes_loans import router as loans_router
from miniprogram_api.routes_payments import router as payments_router
from miniprogram_api.schemas import LABELS

PREFIX = "/mp"

DESCRIPTION = """贷款助贷小程序接口。

1. `POST /mp/login`：用 `wx.login` 的 code 登录，得到 token；之后所有请求带 `Authorization: Bearer <token>`。
2. 金额一律为**元的字符串**（如 `"50000.00"`），不接受数字。
3. 出错时返回 `{"code": 稳定错误码, "message": 中文说明}`。
"""


def create_mp_app() -> FastAPI:
    app = FastAPI(title="小程序接口", description=DESCRIPTION, version="1", docs_url=None, redoc_url=None,
                  openapi_url=None)
    # Swagger UI from the kernel's vendored files; in production only for logged-in staff (core.api_docs).
    api_docs.add_docs(app, docs_path="/docs", openapi_path="/openapi.json", title="小程序接口",
                      public_openapi_url=PREFIX + "/openapi.json")

    @app.middleware("http")
    async def no_store(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")  # personal data: never in a shared cache
        return response

    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        headers = {}
        retry = exc.details.get("retry_after_seconds") if exc.details else None
        if retry:
            headers["Retry-After"] = str(retry)
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_messages.payload(list(exc.errors()), LABELS), status_code=422)

    app.include_router(account_router)
    app.include_router(loans_router)
    app.include_router(payments_router)
    return app


def mount(app: FastAPI) -> None:
    app.mount(PREFIX, create_mp_app(), name="miniprogram")
