"""Customer segments (客户分群): the saved list and the builder (condition rows in AND/OR groups,
or the rule as JSON), with a preview of the count and first members in the viewer's data scope.

Rules, validation and compilation live in crm.segments and crm.segment_forms; these routes only
read the form, call them in a savepoint and render."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from admin.pagination import page_number
from core import money
from core.errors import AppError
from core.web import SessionDep
from crm import segment_forms, segment_profile, segments
from crm.models import STAGE_LABELS, STATUS_LABELS, Staff
from crm.segment_forms import FormGroup, FormRow, FormRule
from crm.tag_exceptions import InvalidRule

router = APIRouter(prefix="/console/segments", include_in_schema=False)

SEGMENT_USERS = nav.TAG_USERS
User = Annotated[ConsoleUser, Depends(require_roles(SEGMENT_USERS))]
MAX_GROUPS = 10
MAX_ROWS = 20
NOTICES = {"saved": "分群已保存", "deleted": "分群已删除"}


async def posted_form(request: Request) -> FormData:
    return await request.form()


Posted = Annotated[FormData, Depends(posted_form)]


@router.get("")
def segment_list(request: Request, session: SessionDep, user: User) -> Response:
    rows = segments.list_segments(session, purpose=request.query_params.get("purpose") or None)
    creator_ids = sorted({r.created_by_staff_id for r in rows if r.created_by_staff_id})
    creators = dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(creator_ids))).all())
    return render(request, "segments/list.html", {
        "segments": rows, "creators": creators, "viewer": user.viewer, "can_edit": segments.can_edit,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "purpose": request.query_params.get("purpose", ""),
    })


@router.get("/new")
def new_segment(request: Request, session: SessionDep, user: User) -> Response:
    return _builder(request, session, user, form=segment_forms.form_from_rule(session, None))


@router.get("/{segment_id}")
def edit_segment(request: Request, session: SessionDep, user: User, segment_id: int) -> Response:
    segment = segments.get_segment(session, segment_id)
    form = segment_forms.form_from_rule(session, segment.rule)
    return _builder(request, session, user, form=form, segment=segment, name=segment.name,
                    description=segment.description or "", rule_json=_dump(segment.rule),
                    purposes={"mass_message": segment.for_mass_message, "group_routing": segment.for_group_routing},
                    use_json=not form.fits)


@router.post("/build", dependencies=[CsrfChecked])
def build(request: Request, session: SessionDep, user: User, posted: Posted) -> Response:
    """One form, three buttons: preview, save (new or existing), add a condition group."""
    action = str(posted.get("action") or "preview")
    segment_id = parse_int(str(posted.get("segment_id") or ""))
    segment = segments.get_segment(session, segment_id) if segment_id else None
    form = _read_rows(posted)
    use_json = posted.get("use_json") == "1"
    rule_json = str(posted.get("rule_json") or "")
    state: dict[str, Any] = {
        "segment": segment, "name": str(posted.get("name") or ""), "description": str(posted.get("description") or ""),
        "purposes": {"mass_message": posted.get("for_mass_message") == "1",
                     "group_routing": posted.get("for_group_routing") == "1"},
        "use_json": use_json, "rule_json": rule_json,
    }
    if action == "add_group":
        form.groups.append(FormGroup("and", [FormRow() for _ in range(3)]))
        return _builder(request, session, user, form=form, **state)

    rule, error = attempt(session, lambda: _rule(session, form, use_json, rule_json))
    if error is not None:
        return _builder(request, session, user, form=_padded(form), error=error, status_code=error.status, **state)
    state["rule_json"] = _dump(rule)
    if use_json:
        form = segment_forms.form_from_rule(session, rule)
        state["use_json"] = not form.fits
    else:
        form = _padded(form)
    if action == "save":
        purposes = state["purposes"]
        if segment is None:
            call = lambda: segments.create_segment(  # noqa: E731
                session, user.viewer, state["name"], rule, description=state["description"],
                for_mass_message=purposes["mass_message"], for_group_routing=purposes["group_routing"])
        else:
            call = lambda: segments.update_segment(  # noqa: E731
                session, user.viewer, segment.id, name=state["name"], rule=rule, description=state["description"],
                for_mass_message=purposes["mass_message"], for_group_routing=purposes["group_routing"])
        _, error = attempt(session, call)
        if error is None:
            return RedirectResponse("/console/segments?done=saved", status_code=303)
        return _builder(request, session, user, form=form, error=error, status_code=error.status, **state)
    page = page_number(str(posted.get("page") or ""))
    result, error = attempt(session, lambda: segments.preview(session, user.viewer, rule, page=page))
    return _builder(request, session, user, form=form, preview=result, error=error,
                    status_code=error.status if error else 200, **state)


@router.post("/{segment_id}/delete", dependencies=[CsrfChecked])
def delete(request: Request, session: SessionDep, user: User, segment_id: int) -> Response:
    segments.delete_segment(session, user.viewer, segment_id)
    return RedirectResponse("/console/segments?done=deleted", status_code=303)


# --- helpers -------------------------------------------------------------------------------------

def _rule(session: SessionDep, form: FormRule, use_json: bool, rule_json: str) -> dict[str, Any]:
    if use_json:
        try:
            rule = json.loads(rule_json or "null")
        except json.JSONDecodeError as exc:
            raise InvalidRule(f"JSON 格式不正确（第 {exc.lineno} 行第 {exc.colno} 列）") from exc
        return segments.parse_rule(rule, session).to_json()
    return segments.parse_rule(segment_forms.rule_from_form(session, form), session).to_json()


def _read_rows(posted: FormData) -> FormRule:
    form = FormRule(op=str(posted.get("top_op") or "and"))
    count = min(parse_int(str(posted.get("groups") or ""), default=0) or 0, MAX_GROUPS)
    for gi in range(count):
        fields, cmps, values = (posted.getlist(f"g{gi}_{k}") for k in ("field", "cmp", "value"))
        rows = [FormRow(str(f), str(c), str(v)) for f, c, v in list(zip(fields, cmps, values, strict=False))[:MAX_ROWS]]
        form.groups.append(FormGroup(str(posted.get(f"g{gi}_op") or "and"), rows))
    return form


def _padded(form: FormRule) -> FormRule:
    """The rows people filled in, two blank rows per group and one blank group to add more."""
    groups = [FormGroup(g.op, [r for r in g.rows if r.field] + [FormRow(), FormRow()])
              for g in form.groups if any(r.field for r in g.rows)]
    groups.append(FormGroup("and", [FormRow() for _ in range(3)]))
    return FormRule(form.op, groups[:MAX_GROUPS])


def _dump(rule: dict[str, Any]) -> str:
    return json.dumps(rule, ensure_ascii=False, indent=2)


def _builder(request: Request, session: SessionDep, user: ConsoleUser, *, form: FormRule,
             segment: Any = None, name: str = "", description: str = "", rule_json: str = "",
             purposes: dict[str, bool] | None = None, use_json: bool = False, preview: Any = None,
             error: AppError | None = None, status_code: int = 200) -> Response:
    return render(request, "segments/builder.html", {
        "form": form, "segment": segment, "name": name, "description": description, "rule_json": rule_json,
        "purposes": purposes or {}, "use_json": use_json, "preview": preview, "error": error,
        "fields": {**segments.FIELDS, **segment_profile.form_specs(session)}, "ops": segments.OPS, "stage_labels": STAGE_LABELS,
        "status_labels": STATUS_LABELS, "yuan": money.format_yuan,
        "can_save": segment is None or segments.can_edit(user.viewer, segment),
    }, status_code=status_code)
