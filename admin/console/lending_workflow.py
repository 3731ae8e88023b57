"""The workflow designer (流程配置): managers add, rename, reorder and remove nodes and set each node's role or
person, SLA and required fields/documents. Saving creates a new definition version; applications already
running keep the version they started on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm.models import ROLE_LABELS, Staff, StaffStatus
from lending.models import NODE_KIND_LABELS
from lending.workflow import definitions

router = APIRouter(prefix="/console/lending/workflow", include_in_schema=False)

Designer = Annotated[ConsoleUser, Depends(require_roles(nav.WORKFLOW_EDITORS))]
BLANK_ROWS = 2


def _rows_of(session: SessionDep) -> list[dict[str, str]]:
    definition = definitions.ensure_active(session)
    return [{"position": str(n.position), "code": n.code, "name": n.name, "kind": n.kind,
             "role": n.responsible_role or "", "staff": str(n.responsible_staff_id or ""),
             "sla": str(n.sla_hours or ""), "fields": "、".join(definitions.FIELDS.get(f, f) for f in n.required_fields or []),
             "docs": "、".join(n.required_documents or [])} for n in definitions.nodes_of(session, definition.id)]


def _page(request: Request, session: SessionDep, *, rows: list[dict[str, str]] | None = None,
          error: AppError | None = None, notice: str | None = None, status_code: int = 200) -> Response:
    rows = rows if rows is not None else _rows_of(session)
    blank = {"position": "", "code": "", "name": "", "kind": "review", "role": "", "staff": "", "sla": "",
             "fields": "", "docs": ""}
    staff = list(session.scalars(select(Staff).where(Staff.status == StaffStatus.ACTIVE).order_by(Staff.display_name)
                                 .limit(500)))
    return render(request, "lending/workflow.html", {
        "rows": rows + [dict(blank, position=str(len(rows) + i + 1)) for i in range(BLANK_ROWS)],
        "versions": definitions.definitions(session), "active": definitions.active_definition(session),
        "kinds": NODE_KIND_LABELS, "roles": ROLE_LABELS, "staff": staff, "fields": definitions.FIELDS,
        "error": error, "notice": notice,
    }, status_code=status_code)


@router.get("")
def designer(request: Request, session: SessionDep, user: Designer) -> Response:
    notice = "流程已保存为新版本；进行中的申请仍按原版本流转" if request.query_params.get("done") == "saved" else None
    return _page(request, session, notice=notice)


@router.post("", dependencies=[CsrfChecked])
async def save(request: Request, session: SessionDep, user: Designer) -> Response:
    form = await request.form()
    count = parse_int(str(form.get("rows") or ""), default=0) or 0
    rows: list[dict[str, str]] = []
    for i in range(min(count, 40)):
        row = {k: str(form.get(f"{k}_{i}") or "").strip()
               for k in ("position", "code", "name", "kind", "role", "staff", "sla", "fields", "docs")}
        if form.get(f"delete_{i}") or not (row["code"] or row["name"]):
            continue
        rows.append(row)
    note = str(form.get("note") or "")
    distinct_reviewers = bool(form.get("distinct_reviewers"))

    def run() -> object:
        def order(r: dict[str, str]) -> int:
            try:
                return int(r["position"])
            except ValueError:
                raise ValidationFailed(f"节点「{r['name'] or r['code']}」的顺序须是整数", field="position") from None

        ordered = sorted(rows, key=order)
        specs = []
        for r in ordered:
            sla = r["sla"]
            if sla and not sla.isdigit():
                raise ValidationFailed(f"节点「{r['name']}」的时限须是整数小时", field="sla_hours")
            specs.append(definitions.NodeSpec(
                code=r["code"], name=r["name"], kind=r["kind"], responsible_role=r["role"] or None,
                responsible_staff_id=parse_int(r["staff"]), sla_hours=int(sla) if sla else None,
                required_fields=r["fields"], required_documents=r["docs"]))  # type: ignore[arg-type]
        return definitions.save_definition(session, specs, by_staff_id=user.viewer.staff_id, note=note,
                                           distinct_reviewers=distinct_reviewers)

    from fastapi.concurrency import run_in_threadpool

    _, error = await run_in_threadpool(attempt, session, run)
    if error:
        return await run_in_threadpool(lambda: _page(request, session, rows=rows, error=error,
                                                     status_code=error.status))
    return RedirectResponse("/console/lending/workflow?done=saved", status_code=303)
