"""The department tree (组织架构): read within one's scope; admins add children and rename."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from core.web import SessionDep
from crm import org_service
from crm.exceptions import DepartmentNotFound
from crm.models import DEPARTMENT_KIND_LABELS, DepartmentKind

router = APIRouter(prefix="/departments")

OrgReader = Annotated[ConsoleUser, Depends(require_roles(nav.ORG_READERS))]
OrgEditor = Annotated[ConsoleUser, Depends(require_roles(nav.ORG_EDITORS))]

# Which kinds a child may have, nearest level first (the service enforces the same order).
_LEVELS = [k.value for k in DepartmentKind]
CHILD_KINDS = {kind: _LEVELS[i + 1:] for i, kind in enumerate(_LEVELS)}

NOTICES = {"created": "部门已创建", "renamed": "部门已改名"}


def _page(request: Request, session: SessionDep, user: ConsoleUser, *, error: object = None,
          status_code: int = 200) -> Response:
    departments = org_service.list_departments(session, user.viewer)
    base_depth = min((d.path.count("/") for d in departments), default=2)
    tree = [(d, d.path.count("/") - base_depth) for d in departments]
    return render(request, "departments.html", {
        "tree": tree, "kind_labels": DEPARTMENT_KIND_LABELS, "can_edit": user.viewer.role in nav.ORG_EDITORS,
        "child_kinds": CHILD_KINDS,
        "error": error, "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("")
def department_tree(request: Request, session: SessionDep, user: OrgReader) -> Response:
    return _page(request, session, user)


@router.post("", dependencies=[CsrfChecked])
def create_department(request: Request, session: SessionDep, user: OrgEditor,
                      parent_id: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
                      kind: Annotated[str, Form()] = "") -> Response:
    parent = parse_int(parent_id)
    if parent is None:
        raise DepartmentNotFound("请选择上级部门")
    _, error = attempt(session, lambda: org_service.create_department(session, name, kind, parent))
    if error:
        return _page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/departments?done=created", status_code=303)


@router.post("/{department_id}/rename", dependencies=[CsrfChecked])
def rename_department(request: Request, session: SessionDep, user: OrgEditor, department_id: int,
                      name: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: org_service.rename_department(session, department_id, name))
    if error:
        return _page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/departments?done=renamed", status_code=303)
