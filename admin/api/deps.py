"""Bearer-token authentication of the staff API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from admin.schemas import ErrorBody
from core import audit
from core.errors import NotAuthenticated, PermissionDenied
from core.web import SessionDep
from crm import auth_service
from crm.models import Staff
from crm.permissions import Permission, role_label
from crm.scope import Viewer

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "缺少、错误、过期或已吊销的令牌"},
}

_bearer = HTTPBearer(auto_error=False, description="在控制台「API 令牌」页签发的令牌")


@dataclass(frozen=True)
class ApiCaller:
    staff: Staff
    viewer: Viewer


def _resolve(session: Any, token: str | None) -> ApiCaller | None:
    staff = auth_service.resolve_api_token(session, token)
    return None if staff is None else ApiCaller(staff, Viewer.of(staff))


async def api_caller(request: Request, session: SessionDep,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiCaller:
    """Async on purpose: the audit actor set here must be visible to the (threaded) endpoint."""
    token = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    caller = await run_in_threadpool(_resolve, session, token)
    if caller is None:
        raise NotAuthenticated("API 令牌无效、已过期或已吊销", code="invalid_token")
    ip = request.client.host if request.client else None
    audit.set_context(audit.Actor("staff", caller.viewer.staff_id, caller.viewer.display_name, ip),
                      getattr(request.state, "request_id", None))
    return caller


Caller = Annotated[ApiCaller, Depends(api_caller)]


def require_roles(roles: Iterable[str]) -> Callable[[ApiCaller], ApiCaller]:
    allowed = roles if isinstance(roles, Permission) else frozenset(str(r) for r in roles)

    def check(caller: Caller) -> ApiCaller:
        if caller.viewer.role not in allowed:
            raise PermissionDenied(f"角色（{role_label(caller.viewer.role)}）无权执行此操作")
        return caller

    return check
