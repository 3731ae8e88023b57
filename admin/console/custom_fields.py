"""设置 › 自定义字段: managers define the fields every customer record then carries (type, options,
required-ness, the customer types they apply to, sensitive, shown in the customer list)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, attempt, render, require_roles
from core.errors import AppError
from core.web import SessionDep
from crm import custom_fields
from crm.models import CUSTOMER_TYPE_LABELS, FIELD_TYPE_LABELS

router = APIRouter(prefix="/console/settings/custom-fields", include_in_schema=False)
Definer = Annotated[ConsoleUser, Depends(require_roles(custom_fields.DEFINERS))]
NOTICES = {"created": "字段已创建", "saved": "字段已保存"}


async def _posted(request: Request) -> dict[str, Any]:
    return _data(await request.form())


Posted = Annotated[dict[str, Any], Depends(_posted)]


def _data(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {k: form.get(k) for k in ("key", "label", "field_type", "options", "position")}
    data["customer_types"] = [v for v in form.getlist("customer_types") if isinstance(v, str)]  # several boxes
    for flag in ("required", "sensitive", "show_in_list", "active"):
        data[flag] = bool(form.get(flag))
    return data


def _page(request: Request, session: SessionDep, *, error: AppError | None = None, form: dict[str, Any] | None = None,
          editing: int | None = None, status_code: int = 200) -> Response:
    return render(request, "custom_fields.html", {
        "fields": custom_fields.definitions(session, include_inactive=True), "type_labels": FIELD_TYPE_LABELS,
        "customer_types": CUSTOMER_TYPE_LABELS, "error": error, "form": form or {}, "editing": editing,
        "error_field": error.details.get("field") if error else None,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("")
def field_list(request: Request, session: SessionDep, user: Definer) -> Response:
    return _page(request, session)


@router.post("", dependencies=[CsrfChecked])
def create(request: Request, session: SessionDep, user: Definer, data: Posted) -> Response:
    data["active"] = True
    _, error = attempt(session, lambda: custom_fields.create_field(session, user.viewer, data))
    if error:
        return _page(request, session, error=error, form=data, status_code=error.status)
    return RedirectResponse("/console/settings/custom-fields?done=created", status_code=303)


@router.post("/{field_id}", dependencies=[CsrfChecked])
def update(request: Request, session: SessionDep, user: Definer, field_id: int, data: Posted) -> Response:
    _, error = attempt(session, lambda: custom_fields.update_field(session, user.viewer, field_id, data))
    if error:
        return _page(request, session, error=error, editing=field_id, status_code=error.status)
    return RedirectResponse("/console/settings/custom-fields?done=saved", status_code=303)
