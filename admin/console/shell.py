"""The console's menu on its own, for pages another channel renders (the bot's WeCom pages load it with htmx)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from admin.deps import CurrentUser, menu_context, templates

router = APIRouter()


@router.get("/nav")
def menu(request: Request, user: CurrentUser, path: str = "/console/") -> Response:
    """The sidebar for the logged-in staff member, with the item of ``path`` marked as the current page."""
    ctx = {"me": user.viewer, "csrf_token": user.csrf_token, **menu_context(user.viewer.role, path)}
    response = templates.TemplateResponse(request, "_sidebar.html", ctx)
    response.headers["Cache-Control"] = "no-store"
    return response
