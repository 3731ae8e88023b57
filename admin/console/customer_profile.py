"""Customer 360's qualification (资质) and custom-field (自定义字段) panels: save either form, reveal the
sealed figures (audit-logged, shown on this response only). A refused edit re-renders the 360 with
the Chinese message and the field marked; nothing is written."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin import nav
from admin.console.customers import _then, detail_page
from admin.deps import ConsoleUser, CsrfChecked, FormFields, attempt, require_roles
from core.web import SessionDep
from crm import custom_fields, customers, qualification

router = APIRouter(prefix="/console/customers", include_in_schema=False)
Reader = Annotated[ConsoleUser, Depends(require_roles(nav.CUSTOMER_READERS))]
FIELD_PREFIX = "cf_"


@router.post("/{customer_id}/qualification", dependencies=[CsrfChecked])
def save_qualification(request: Request, session: SessionDep, user: Reader, customer_id: int,
                       form: FormFields) -> Response:
    customers.get_customer(session, user.viewer, customer_id)
    # Sealed figures left empty on the form mean "unchanged" (they are never echoed into the page);
    # the clear_<name> box empties one on purpose.
    changes: dict[str, object] = {}
    for name in qualification.FIELD_LABELS:
        value = form.get(name)
        if form.get(f"clear_{name}"):
            changes[name] = ""
        elif value is not None and (value.strip() or name not in qualification.SEALED_FIELDS):
            changes[name] = value
    _, error = attempt(session, lambda: qualification.update(session, user.viewer, customer_id, changes))
    if error:  # the form again with what was typed, the bad field marked
        return detail_page(request, session, user, customer_id, error=error, status_code=error.status,
                            posted_qualification={k: str(v) for k, v in changes.items()})
    return _then(request, session, user, customer_id, None, "qualification")


@router.post("/{customer_id}/qualification/reveal", dependencies=[CsrfChecked])
def reveal_qualification(request: Request, session: SessionDep, user: Reader, customer_id: int,
                         reason: Annotated[str, Form()] = "") -> Response:
    shown, error = attempt(session, lambda: qualification.reveal(session, user.viewer, customer_id,
                                                                 reason.strip() or "控制台查看资质"))
    return detail_page(request, session, user, customer_id, error=error, revealed_qualification=shown,
                        status_code=error.status if error else 200)


def field_values(session: Session, form: dict[str, str]) -> dict[str, object]:
    """The ``cf_<key>`` inputs of a form; a sensitive one left empty is unchanged (never echoed back)."""
    sensitive = {f.key for f in custom_fields.definitions(session) if f.sensitive}
    values: dict[str, object] = {}
    for name, value in form.items():
        if not name.startswith(FIELD_PREFIX):
            continue
        key = name.removeprefix(FIELD_PREFIX)
        if key in sensitive and not value.strip() and not form.get(f"clear_{key}"):
            continue
        values[key] = value
    return values


@router.post("/{customer_id}/fields", dependencies=[CsrfChecked])
def save_fields(request: Request, session: SessionDep, user: Reader, customer_id: int, form: FormFields) -> Response:
    customer = customers.get_customer(session, user.viewer, customer_id)
    values = field_values(session, form)
    _, error = attempt(session, lambda: custom_fields.set_values(session, user.viewer, customer.id, values))
    return _then(request, session, user, customer_id, error, "fields")


@router.post("/{customer_id}/fields/{key}/reveal", dependencies=[CsrfChecked])
def reveal_field(request: Request, session: SessionDep, user: Reader, customer_id: int, key: str) -> Response:
    value, error = attempt(session, lambda: custom_fields.reveal_value(session, user.viewer, customer_id, key))
    return detail_page(request, session, user, customer_id, error=error,
                        revealed_field=(key, value) if value is not None else None,
                        status_code=error.status if error else 200)
