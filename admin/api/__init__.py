"""The staff JSON API under /api/v1 (bearer tokens issued in the console)."""

from __future__ import annotations

from fastapi import APIRouter

from admin.api import departments, me, outbox, staff
from admin.api.deps import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
for module in (me, staff, departments, outbox):
    router.include_router(module.router)
