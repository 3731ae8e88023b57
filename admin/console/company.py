"""设置 › 公司设置: each integration's state (no secret shown) and the onboarding checklist; dismissing the
checklist on the home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import company, nav
from admin.deps import ConsoleUser, CsrfChecked, render, require_roles
from core.web import SessionDep

router = APIRouter(prefix="/console/settings/company", include_in_schema=False)
Reader = Annotated[ConsoleUser, Depends(require_roles(nav.COMPANY_SETTINGS))]
Onboarder = Annotated[ConsoleUser, Depends(require_roles(nav.ROLE_EDITORS))]
STATE_LABELS = {"ok": "已连接", "simulated": "模拟器", "incomplete": "配置不完整"}


@router.get("")
def company_page(request: Request, session: SessionDep, user: Reader) -> Response:
    return render(request, "company.html", {
        "integrations": company.integrations(), "steps": company.checklist(session), "states": STATE_LABELS,
        "dismissed": user.staff.onboarding_dismissed_at is not None,
    })


@router.post("/onboarding/dismiss", dependencies=[CsrfChecked])
def dismiss(request: Request, session: SessionDep, user: Onboarder) -> Response:
    company.dismiss(session, user.staff)
    return RedirectResponse("/console/", status_code=303)
