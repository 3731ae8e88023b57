"""The OpenAPI pages (Swagger UI) of the staff API (``/api/docs``) and the mini-program API (``/mp/docs``).

- Swagger UI is served from our own files (``core/static/swagger-ui``, vendored from npm, see its
  ``VENDORED.md``) at :data:`STATIC_URL`; nothing comes from a CDN, and the online validator is off.
- ReDoc is not served.
- With ``SCRM_ENV=production`` the page and the OpenAPI JSON answer only a logged-in staff member: the
  console channel registers how a request proves that (:func:`set_staff_check`, the kernel knows no
  sessions); with no check registered, production serves no docs at all (404).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from core.settings import get_settings

STATIC_DIR = Path(__file__).parent / "static" / "swagger-ui"
STATIC_URL = "/static/swagger-ui"
SWAGGER_PARAMETERS = {"validatorUrl": None, "deepLinking": True, "persistAuthorization": False}

StaffCheck = Callable[[Request], bool]
_staff_check: list[StaffCheck] = []


def set_staff_check(check: StaffCheck) -> None:
    """Register how a request shows it comes from a logged-in staff member (the console does, at mount)."""
    _staff_check[:] = [check]


def allowed(request: Request) -> bool:
    if get_settings().env != "production":
        return True
    return bool(_staff_check) and _staff_check[0](request)


def mount_static(app: FastAPI) -> None:
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="swagger-ui")


def add_docs(app: FastAPI, *, docs_path: str, openapi_path: str, title: str, public_openapi_url: str) -> None:
    """Serve ``app``'s OpenAPI at ``openapi_path`` and its Swagger UI at ``docs_path`` (paths inside ``app``;
    ``public_openapi_url`` is where the browser finds the JSON, the mount prefix included)."""

    def not_found() -> Response:
        return JSONResponse({"code": "not_found", "message": "页面不存在"}, status_code=404)

    @app.get(openapi_path, include_in_schema=False)
    def openapi_json(request: Request) -> Response:
        if not allowed(request):
            return not_found()
        return JSONResponse(app.openapi())

    @app.get(docs_path, include_in_schema=False)
    def swagger_ui(request: Request) -> Response:
        if not allowed(request):
            return not_found()
        return get_swagger_ui_html(
            openapi_url=public_openapi_url, title=title, swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css", swagger_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS)
