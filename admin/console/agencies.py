"""Outsourcing (委外管理, /console/collections/agencies): agencies with their commission rates, their portal
accounts, cases assigned to them, assigning a case and recalling it at any time. Managers and admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from core.errors import AppError
from core.web import SessionDep
from postloan.agency import service

router = APIRouter(prefix="/console/collections/agencies", include_in_schema=False)
AGENCY_MANAGERS = nav.AGENCY_MANAGERS
Manager = Annotated[ConsoleUser, Depends(require_roles(AGENCY_MANAGERS))]
NOTICES = {"agency": "委外机构已添加", "user": "机构账号已创建", "assigned": "案件已委外", "recalled": "案件已收回"}


def _page(request: Request, session: SessionDep, *, error: AppError | None = None, form: dict | None = None,
          status_code: int = 200) -> Response:
    agencies = service.agencies(session)
    return render(request, "agency/manage.html", {
        "agencies": agencies, "names": {a.id: a.name for a in agencies}, "users": service.users_of(session),
        "assignments": service.active_assignments(session), "error": error, "form": form or {},
        "notice": NOTICES.get(request.query_params.get("done", ""))}, status_code=status_code)


def _done(what: str) -> Response:
    return RedirectResponse(f"/console/collections/agencies?done={what}", status_code=303)


@router.get("")
def manage(request: Request, session: SessionDep, user: Manager) -> Response:
    return _page(request, session)


@router.post("", dependencies=[CsrfChecked])
def create_agency(request: Request, session: SessionDep, user: Manager, name: Annotated[str, Form()] = "",
                  commission_rate: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: service.create_agency(session, user.viewer, name=name,
                                                             commission_rate=service.parse_rate(commission_rate)))
    if error:
        return _page(request, session, error=error, form={"name": name, "commission_rate": commission_rate},
                     status_code=error.status)
    return _done("agency")


@router.post("/users", dependencies=[CsrfChecked])
def create_user(request: Request, session: SessionDep, user: Manager, agency_id: Annotated[str, Form()] = "",
                username: Annotated[str, Form()] = "", display_name: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: service.create_user(
        session, user.viewer, agency_id=parse_int(agency_id, default=0), username=username,
        display_name=display_name, password=password))
    if error:
        return _page(request, session, error=error, form={"username": username, "display_name": display_name},
                     status_code=error.status)
    return _done("user")


@router.post("/assign", dependencies=[CsrfChecked])
def assign(request: Request, session: SessionDep, user: Manager, case_id: Annotated[str, Form()] = "",
           agency_id: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: service.assign(session, user.viewer, case_id=parse_int(case_id, default=0),
                                                      agency_id=parse_int(agency_id, default=0)))
    if error:
        return _page(request, session, error=error, form={"case_id": case_id}, status_code=error.status)
    return _done("assigned")


@router.post("/recall/{case_id}", dependencies=[CsrfChecked])
def recall(session: SessionDep, user: Manager, case_id: int, reason: Annotated[str, Form()] = "") -> Response:
    service.recall(session, user.viewer, case_id=case_id, reason=reason)
    return _done("recalled")
