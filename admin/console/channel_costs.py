"""报表 › 渠道成本 (/console/analytics/channel-costs): managers, admins and finance enter what a lead channel cost
(a purchased list, an ad campaign's spend) by channel and date, see the period's costs within their data scope,
and void a wrong one with a reason; the home dashboard's channel analysis divides them by leads and loans."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from analytics import channel_costs, metrics, periods
from core.errors import AppError
from core.web import SessionDep
from crm.models import Department

router = APIRouter(prefix="/console/analytics/channel-costs", include_in_schema=False)
Editor = Annotated[ConsoleUser, Depends(require_roles(channel_costs.COST_EDITORS))]
PERIODS = {k: periods.PERIODS[k] for k in ("month", "last_month", "30d", "quarter", "year") if k in periods.PERIODS}
NOTICES = {"saved": "成本已录入", "voided": "成本已作废"}


def _page(request: Request, session: SessionDep, user: ConsoleUser, *, error: AppError | None = None,
          form: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    period, flt = periods.resolve(request.query_params.get("period") if request.query_params.get("period")
                                  in PERIODS else "month")
    rows = channel_costs.listing(session, user.viewer, flt.start, flt.end)
    departments = session.scalars(select(Department).order_by(Department.path)).all()
    if not channel_costs.company_wide(user.viewer):
        departments = [d for d in departments if d.path.startswith(user.viewer.department_path)]
    return render(request, "analytics/channel_costs.html", {
        "rows": rows, "period": period, "periods": PERIODS, "flt": flt,
        "total": sum(r.amount for r in rows if r.voided_at is None),
        "names": metrics.staff_names(session, [r.created_by_staff_id for r in rows]
                                     + [r.voided_by_staff_id for r in rows]),
        "departments": departments, "department_names": {d.id: d.name for d in departments},
        "channels": sorted({*metrics.SOURCE_LABELS.values(), *(r.source for r in rows)} - {"演示数据"}),
        "form": form or {"spent_on": channel_costs.default_day().isoformat()}, "error": error,
        "error_field": error.details.get("field") if error else None, "company_wide": channel_costs.company_wide(user.viewer),
        "notice": NOTICES.get(request.query_params.get("done", "")), "yuan": metrics.display,
    }, status_code=status_code)


@router.get("")
def cost_list(request: Request, session: SessionDep, user: Editor) -> Response:
    return _page(request, session, user)


@router.post("", dependencies=[CsrfChecked])
async def create(request: Request, session: SessionDep, user: Editor) -> Response:
    form = await request.form()
    data = {k: (form.get(k) or "").strip() if isinstance(form.get(k), str) else "" for k in
            ("source", "spent_on", "amount", "department_id", "note")}
    _, error = attempt(session, lambda: channel_costs.record(
        session, user.viewer, source=data["source"], spent_on=data["spent_on"], amount=data["amount"],
        department_id=parse_int(data["department_id"]), note=data["note"]))
    if error:
        return _page(request, session, user, error=error, form=data, status_code=error.status)
    return RedirectResponse("/console/analytics/channel-costs?done=saved", status_code=303)


@router.post("/{cost_id}/void", dependencies=[CsrfChecked])
async def void(cost_id: int, request: Request, session: SessionDep, user: Editor) -> Response:
    form = await request.form()
    reason = form.get("reason")
    _, error = attempt(session, lambda: channel_costs.void(session, user.viewer, cost_id,
                                                           reason if isinstance(reason, str) else ""))
    if error:
        return _page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/analytics/channel-costs?done=voided", status_code=303)

