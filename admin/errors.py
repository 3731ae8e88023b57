"""How the console and the staff API show an AppError."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from admin.deps import render
from core.errors import AppError, NotAuthenticated

ERROR_TITLES = {401: "请先登录", 403: "没有权限", 404: "页面不存在", 409: "操作冲突", 422: "输入不正确",
                423: "账号已锁定", 429: "操作过于频繁"}


def render_console_error(request: Request, exc: AppError) -> Response:
    if isinstance(exc, NotAuthenticated):
        target = request.url.path if request.method == "GET" else "/console/"
        return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)
    title = ERROR_TITLES.get(exc.status, "操作失败")
    return render(request, "error.html", {"title": title, "error": exc}, status_code=exc.status)


def render_api_error(request: Request, exc: AppError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)
