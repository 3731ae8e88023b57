"""Staff pages: the scoped list, a person's page, create and edit, mark departed (离职)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, current_session_id, parse_int, render, require_roles
from admin.pagination import counted, page_number
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm import org_service
from crm import roles as crm_roles
from crm.models import DATA_SCOPE_LABELS, DataScope, Role, Staff
from crm.scope import Viewer

router = APIRouter(prefix="/staff")

StaffReader = Annotated[ConsoleUser, Depends(require_roles(nav.ALL_ROLES))]
StaffManager = Annotated[ConsoleUser, Depends(require_roles(nav.STAFF_MANAGERS))]

NOTICES = {
    "created": "员工已创建", "updated": "员工信息已保存",
    "departed": "已标记为离职，其登录会话和 API 令牌已失效",
    "password": "密码已重置，该员工其他的登录会话已全部退出（API 令牌仍然有效）",
    "password_tokens": "密码已重置，该员工其他的登录会话已全部退出，API 令牌已全部吊销",
}


class StaffForm(BaseModel):
    username: str = ""
    display_name: str = ""
    role: str = ""
    data_scope: str = ""
    department_id: str = ""
    wecom_userid: str = ""
    region: str = ""
    capacity: str = "200"
    level: str = "1"
    mobile: str = ""
    password: str = ""
    revoke_tokens: str = ""

    def to_input(self) -> org_service.StaffInput:
        department_id = parse_int(self.department_id)
        if department_id is None:
            raise ValidationFailed("请选择部门", field="department_id")
        capacity, level = parse_int(self.capacity), parse_int(self.level)
        if capacity is None:
            raise ValidationFailed("客户容量必须是整数", field="capacity")
        if level is None:
            raise ValidationFailed("等级权重必须是整数", field="level")
        return org_service.StaffInput(
            username=self.username.strip(), display_name=self.display_name, role=self.role,
            department_id=department_id, password=self.password or None,
            wecom_userid=self.wecom_userid.strip() or None, region=self.region.strip() or None,
            capacity=capacity, level=level, mobile=self.mobile.strip() or None, data_scope=self.data_scope or None,
        )

    @classmethod
    def of(cls, staff: Staff) -> StaffForm:
        return cls(username=staff.username, display_name=staff.display_name, role=staff.role,
                   data_scope=staff.data_scope, department_id=str(staff.department_id),
                   wecom_userid=staff.wecom_userid or "", region=staff.region or "",
                   capacity=str(staff.capacity), level=str(staff.level))


def _choices(session: Session, viewer: Viewer) -> dict[str, Any]:
    # The service refuses grants beyond the viewer's own (crm.org_service); the form only offers the rest.
    roles = {k: v for k, v in crm_roles.choices(session).items() if k != Role.ADMIN or viewer.role == Role.ADMIN}
    scopes = {k: v for k, v in DATA_SCOPE_LABELS.items() if k != DataScope.ALL or viewer.scope == DataScope.ALL}
    return {"role_choices": roles, "scope_choices": scopes}


def _form_page(request: Request, session: Session, user: ConsoleUser, form: StaffForm, *,
               target: Staff | None = None, error: AppError | None = None) -> Response:
    return render(request, "staff_form.html", {
        "form": form, "target": target, "error": error, "error_field": (error.details.get("field") if error else None),
        "departments": org_service.list_departments(session, user.viewer), **_choices(session, user.viewer),
    }, status_code=error.status if error else 200)


@router.get("")
def staff_list(request: Request, session: SessionDep, user: StaffReader, q: str = "", role: str = "",
               status: str = "", department_id: str = "", page: str = "1") -> Response:
    number = page_number(page)
    dept_id = parse_int(department_id)
    size = 20
    rows, total = org_service.list_staff(session, user.viewer, q=q or None, role=role or None,
                                         status=status or None, department_id=dept_id,
                                         limit=size, offset=(number - 1) * size)
    filters = {"q": q, "role": role, "status": status, "department_id": department_id}
    return render(request, "staff_list.html", {
        "rows": rows, "filters": filters, "page": counted(number, total, "/console/staff", filters, size),
        "departments": org_service.list_departments(session, user.viewer), "role_labels": crm_roles.choices(session),
        "can_manage": user.viewer.role in nav.STAFF_MANAGERS,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    })


@router.get("/new")
def new_staff_form(request: Request, session: SessionDep, user: StaffManager) -> Response:
    return _form_page(request, session, user, StaffForm(department_id=str(user.viewer.department_id)))


@router.post("/new", dependencies=[CsrfChecked])
def create_staff(request: Request, session: SessionDep, user: StaffManager,
                 form: Annotated[StaffForm, Form()]) -> Response:
    created, error = attempt(session, lambda: org_service.create_staff(session, form.to_input(), user.viewer))
    if error or created is None:
        return _form_page(request, session, user, form.model_copy(update={"password": ""}), error=error)
    return RedirectResponse(f"/console/staff/{created.id}?done=created", status_code=303)


@router.get("/{staff_id}")
def staff_detail(request: Request, session: SessionDep, user: StaffReader, staff_id: int) -> Response:
    target = org_service.get_staff(session, staff_id, user.viewer)
    return render(request, "staff_detail.html", {
        "target": target, "can_manage": user.viewer.role in nav.STAFF_MANAGERS,
        "role_labels": crm_roles.choices(session), "notice": NOTICES.get(request.query_params.get("done", "")),
    })


@router.get("/{staff_id}/edit")
def edit_staff_form(request: Request, session: SessionDep, user: StaffManager, staff_id: int) -> Response:
    target = org_service.get_staff(session, staff_id, user.viewer)
    return _form_page(request, session, user, StaffForm.of(target), target=target)


@router.post("/{staff_id}/edit", dependencies=[CsrfChecked])
def update_staff(request: Request, session: SessionDep, user: StaffManager, staff_id: int,
                 form: Annotated[StaffForm, Form()]) -> Response:
    target = org_service.get_staff(session, staff_id, user.viewer)
    keep = current_session_id(request, session) if staff_id == user.viewer.staff_id else None
    _, error = attempt(session, lambda: org_service.update_staff(
        session, staff_id, form.to_input(), user.viewer, keep_session_id=keep,
        revoke_api_tokens=bool(form.password and form.revoke_tokens)))
    if error:
        return _form_page(request, session, user, form.model_copy(update={"password": ""}), target=target,
                          error=error)
    done = "updated"
    if form.password:
        done = "password_tokens" if form.revoke_tokens else "password"
    return RedirectResponse(f"/console/staff/{staff_id}?done={done}", status_code=303)


@router.post("/{staff_id}/depart", dependencies=[CsrfChecked])
def depart_staff(session: SessionDep, user: StaffManager, staff_id: int) -> Response:
    org_service.mark_departed(session, staff_id, user.viewer)
    return RedirectResponse(f"/console/staff/{staff_id}?done=departed", status_code=303)
