"""The managers' web console: server-rendered pages under /console."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from admin.console import audit, auth, consents, departments, outbox, password, shell, staff, tokens

router = APIRouter(prefix="/console", include_in_schema=False)
for module in (auth, staff, departments, audit, tokens, password, outbox, consents, shell):
    router.include_router(module.router)


@router.get("")
def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)
