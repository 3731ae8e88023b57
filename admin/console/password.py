"""修改密码: a staff member changes their own password; their other sessions end, API tokens on request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin.deps import CsrfChecked, CurrentUser, attempt, current_session_id, render
from core import password_policy
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm import org_service

router = APIRouter(prefix="/password")

NOTICES = {
    "changed": "密码已修改，您在其他设备上的登录已全部退出",
    "changed_tokens": "密码已修改，您在其他设备上的登录已全部退出，您的 API 令牌已全部吊销",
}


def _page(request: Request, *, error: AppError | None = None, revoke_tokens: bool = False,
          status_code: int = 200) -> Response:
    return render(request, "password.html", {
        "error": error, "error_field": error.details.get("field") if error else None, "rules": password_policy.RULES,
        "revoke_tokens": revoke_tokens, "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("")
def password_form(request: Request, user: CurrentUser) -> Response:
    return _page(request)


@router.post("", dependencies=[CsrfChecked])
def change_password(request: Request, session: SessionDep, user: CurrentUser,
                    current_password: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                    password_again: Annotated[str, Form()] = "", revoke_tokens: Annotated[str, Form()] = "") -> Response:
    def change() -> object:
        if password != password_again:
            raise ValidationFailed("两次输入的新密码不一致", field="password_again")
        return org_service.change_own_password(session, user.viewer.staff_id, current_password, password,
                                               keep_session_id=current_session_id(request, session),
                                               revoke_api_tokens=bool(revoke_tokens))

    _, error = attempt(session, change)
    if error:
        return _page(request, error=error, revoke_tokens=bool(revoke_tokens), status_code=error.status)
    done = "changed_tokens" if revoke_tokens else "changed"
    return RedirectResponse(f"/console/password?done={done}", status_code=303)
