"""The tag library (标签组与标签) and customer grades (客户等级): everyone who works customers reads
them; admins, managers and supervisors edit tags, admins and managers edit grades (crm.tags,
crm.grades decide; these routes parse forms, call them in a savepoint and render)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from core.web import SessionDep
from crm import grades, tags

router = APIRouter(prefix="/console/tags", include_in_schema=False)

TAG_READERS = nav.TAG_USERS
Reader = Annotated[ConsoleUser, Depends(require_roles(TAG_READERS))]
Editor = Annotated[ConsoleUser, Depends(require_roles(tags.TAG_MANAGERS))]
GradeEditor = Annotated[ConsoleUser, Depends(require_roles(grades.GRADE_MANAGERS))]
Text = Annotated[str, Form()]

NOTICES = {"group": "标签组已保存", "tag": "标签已保存", "deleted": "已删除", "grade": "客户等级已保存"}


def _page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
          status_code: int = 200) -> Response:
    return render(request, "tags/index.html", {
        "groups": tags.list_groups(session, with_usage=True), "grades": grades.list_grades(session),
        "can_edit": user.viewer.role in tags.TAG_MANAGERS, "can_edit_grades": user.viewer.role in grades.GRADE_MANAGERS,
        "error": error, "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


def _do(request: Request, session: SessionDep, user: ConsoleUser, action: Callable[[], object], done: str) -> Response:
    _, error = attempt(session, action)
    if error is not None:
        return _page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse(f"/console/tags?done={done}", status_code=303)


@router.get("")
def tag_library(request: Request, session: SessionDep, user: Reader) -> Response:
    return _page(request, session, user)


@router.post("/groups", dependencies=[CsrfChecked])
def create_group(request: Request, session: SessionDep, user: Editor, name: Text = "", sort: Text = "") -> Response:
    return _do(request, session, user, lambda: tags.create_group(session, user.viewer, name,
                                                                  sort=parse_int(sort, default=0) or 0), "group")


@router.post("/groups/{group_id}/rename", dependencies=[CsrfChecked])
def rename_group(request: Request, session: SessionDep, user: Editor, group_id: int, name: Text = "") -> Response:
    return _do(request, session, user, lambda: tags.rename_group(session, user.viewer, group_id, name), "group")


@router.post("/groups/{group_id}/delete", dependencies=[CsrfChecked])
def delete_group(request: Request, session: SessionDep, user: Editor, group_id: int) -> Response:
    return _do(request, session, user, lambda: tags.delete_group(session, user.viewer, group_id), "deleted")


@router.post("/groups/{group_id}/tags", dependencies=[CsrfChecked])
def create_tag(request: Request, session: SessionDep, user: Editor, group_id: int, name: Text = "") -> Response:
    return _do(request, session, user, lambda: tags.create_tag(session, user.viewer, group_id, name), "tag")


@router.post("/{tag_id}/rename", dependencies=[CsrfChecked])
def rename_tag(request: Request, session: SessionDep, user: Editor, tag_id: int, name: Text = "") -> Response:
    return _do(request, session, user, lambda: tags.rename_tag(session, user.viewer, tag_id, name), "tag")


@router.post("/{tag_id}/delete", dependencies=[CsrfChecked])
def delete_tag(request: Request, session: SessionDep, user: Editor, tag_id: int) -> Response:
    return _do(request, session, user, lambda: tags.delete_tag(session, user.viewer, tag_id), "deleted")


@router.post("/grades", dependencies=[CsrfChecked])
def create_grade(request: Request, session: SessionDep, user: GradeEditor, code: Text = "",
                 label: Text = "") -> Response:
    return _do(request, session, user, lambda: grades.create_grade(session, user.viewer, code, label), "grade")


@router.post("/grades/order", dependencies=[CsrfChecked])
def reorder_grades(request: Request, session: SessionDep, user: GradeEditor, order: Text = "") -> Response:
    codes = [c for c in order.replace("，", ",").replace(" ", ",").split(",") if c]
    return _do(request, session, user, lambda: grades.reorder_grades(session, user.viewer, codes), "grade")


@router.post("/grades/{code}/edit", dependencies=[CsrfChecked])
def edit_grade(request: Request, session: SessionDep, user: GradeEditor, code: str, label: Text = "") -> Response:
    return _do(request, session, user, lambda: grades.edit_grade(session, user.viewer, code, label), "grade")


@router.post("/grades/{code}/delete", dependencies=[CsrfChecked])
def delete_grade(request: Request, session: SessionDep, user: GradeEditor, code: str) -> Response:
    return _do(request, session, user, lambda: grades.delete_grade(session, user.viewer, code), "deleted")
