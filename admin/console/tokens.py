"""API tokens (API 令牌) of the logged-in staff member: issue (shown once) and revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render
from core import clock
from core.web import SessionDep
from crm import auth_service

router = APIRouter(prefix="/tokens")

TTL_CHOICES = {"30": "30 天", "90": "90 天", "365": "1 年"}


def _page(request: Request, session: SessionDep, user: ConsoleUser, *, new_token: str | None = None,
          error: object = None, status_code: int = 200, notice: str | None = None) -> Response:
    return render(request, "tokens.html", {
        "tokens": auth_service.list_api_tokens(session, user.viewer.staff_id), "now": clock.now(),
        "new_token": new_token, "error": error, "ttl_choices": TTL_CHOICES, "notice": notice,
    }, status_code=status_code)


@router.get("")
def token_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    notice = "令牌已吊销" if request.query_params.get("done") == "revoked" else None
    return _page(request, session, user, notice=notice)


@router.post("", dependencies=[CsrfChecked])
def issue_token(request: Request, session: SessionDep, user: CurrentUser, name: Annotated[str, Form()] = "",
                ttl_days: Annotated[str, Form()] = "90") -> Response:
    ttl = parse_int(ttl_days, default=0)
    issued, error = attempt(session, lambda: auth_service.issue_api_token(session, user.viewer.staff_id, name, ttl))
    if error or issued is None:
        return _page(request, session, user, error=error, status_code=error.status if error else 400)
    # Rendered, not redirected: the plaintext token exists only in this one response.
    return _page(request, session, user, new_token=issued[0])


@router.post("/{token_id}/revoke", dependencies=[CsrfChecked])
def revoke_token(session: SessionDep, user: CurrentUser, token_id: int) -> Response:
    auth_service.revoke_api_token(session, token_id, user.viewer.staff_id)
    return RedirectResponse("/console/tokens?done=revoked", status_code=303)
