"""设置 › 角色权限: custom roles from named permissions and a data scope; the built-in roles shown as presets
(what each holds; copy one to start a custom role). Changes are audit-logged by :mod:`crm.roles`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, render, require_roles
from core.errors import AppError
from core.web import SessionDep
from crm import permissions, roles
from crm.models import DATA_SCOPE_LABELS, DataScope

router = APIRouter(prefix="/console/settings/roles", include_in_schema=False)
Editor = Annotated[ConsoleUser, Depends(require_roles(nav.ROLE_EDITORS))]
NOTICES = {"created": "角色已创建", "saved": "角色已保存", "deleted": "角色已删除"}
PAGE = "/console/settings/roles"


async def _posted(request: Request) -> roles.RoleInput:
    return _data(await request.form())


Posted = Annotated[roles.RoleInput, Depends(_posted)]


def _data(form: FormData) -> roles.RoleInput:
    def text(key: str) -> str:
        value = form.get(key)
        return value if isinstance(value, str) else ""

    return roles.RoleInput(name=text("name"), description=text("description") or None,
                           permissions=[v for v in form.getlist("permissions") if isinstance(v, str)],
                           data_scope=text("data_scope") or DataScope.OWN, based_on=text("based_on") or None)


def _groups() -> list[tuple[str, list[permissions.Permission]]]:
    grouped: dict[str, list[permissions.Permission]] = {}
    for perm in permissions.catalogue():
        grouped.setdefault(perm.group, []).append(perm)
    return list(grouped.items())


def _page(request: Request, session: SessionDep, *, error: AppError | None = None,
          form: roles.RoleInput | None = None, editing: int | None = None, status_code: int = 200) -> Response:
    copy_from = request.query_params.get("from", "")
    if form is None and editing is not None:
        row = roles.get_role(session, editing)
        form = roles.RoleInput(row.name, list(row.permissions), row.data_scope, row.description, row.based_on)
    elif form is None and copy_from in permissions.BUILTIN_ROLES:
        preset = next(p for p in roles.presets() if p.key == copy_from)
        form = roles.RoleInput(f"{preset.label}（自定义）", [p.key for p in preset.permissions], preset.data_scope,
                               None, preset.key)
    return render(request, "roles.html", {
        "presets": roles.presets(), "custom": roles.list_roles(session), "counts": roles.holder_counts(session),
        "groups": _groups(), "scopes": DATA_SCOPE_LABELS, "labels": {p.key: p.label for p in permissions.catalogue()},
        "form": form or roles.RoleInput(""), "editing": editing, "error": error,
        "error_field": error.details.get("field") if error else None, "page": PAGE,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("")
def role_list(request: Request, session: SessionDep, user: Editor) -> Response:
    return _page(request, session)


@router.post("", dependencies=[CsrfChecked])
def create(request: Request, session: SessionDep, user: Editor, data: Posted) -> Response:
    _, error = attempt(session, lambda: roles.create_role(session, user.viewer, data))
    if error:
        return _page(request, session, error=error, form=data, status_code=error.status)
    return RedirectResponse(f"{PAGE}?done=created", status_code=303)


@router.get("/{role_id}")
def edit_page(request: Request, session: SessionDep, user: Editor, role_id: int) -> Response:
    return _page(request, session, editing=role_id)


@router.post("/{role_id}", dependencies=[CsrfChecked])
def save(request: Request, session: SessionDep, user: Editor, role_id: int, data: Posted) -> Response:
    _, error = attempt(session, lambda: roles.update_role(session, user.viewer, role_id, data))
    if error:
        return _page(request, session, error=error, form=data, editing=role_id, status_code=error.status)
    return RedirectResponse(f"{PAGE}?done=saved", status_code=303)


@router.post("/{role_id}/delete", dependencies=[CsrfChecked])
def delete(request: Request, session: SessionDep, user: Editor, role_id: int) -> Response:
    _, error = attempt(session, lambda: roles.delete_role(session, user.viewer, role_id))
    if error:
        return _page(request, session, error=error, status_code=error.status)
    return RedirectResponse(f"{PAGE}?done=deleted", status_code=303)


