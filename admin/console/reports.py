"""报表 (/console/reports): the report builder. Managers and admins build a report in a form (metrics, one or two
dimensions — time by day / week / month among them —
filters, a period, the roles it is shared with, an optional push to a WeCom group chat) and save it; whoever it is
shared with runs it — always within their own data scope — and sees a table and ECharts bars, each figure a link
to the list behind it, and can export it to Excel through the background export jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from admin.console.dashboard_view import chart_payload, show
from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, require_roles
from analytics import dashboards, export_jobs, metrics, periods, report_schedule, reports
from analytics.models import PUSH_STATUS_LABELS, Report
from core.errors import AppError
from core.web import SessionDep
from crm import customer_queries
from crm.models import INDUSTRY_CHOICES, ROLE_LABELS, Department, Staff
from finance.models import FUNDER_KIND_LABELS
from lending.models import Funder, Product

router = APIRouter(prefix="/console/reports", include_in_schema=False)
Builder = Annotated[ConsoleUser, Depends(require_roles(reports.BUILDER_ROLES))]
UNIT_LABELS = {"count": "数量", "fen": "金额", "rate": "比率"}


def _choices(session: SessionDep, viewer: Any) -> dict[str, Any]:
    active = Staff.status == "active"
    return {
        "metric_choices": reports.metric_choices(), "unit_labels": UNIT_LABELS,
        "dimensions": reports.dimension_choices(), "dimensions_of": metrics.dimensions_of, "periods": periods.PERIODS, "roles": ROLE_LABELS,
        "schedules": reports.SCHEDULES, "weekdays": reports.WEEKDAYS, "sources": metrics.SOURCE_LABELS,
        "departments": session.scalars(select(Department).order_by(Department.path)).all(),
        "staff": session.scalars(select(Staff).where(active).order_by(Staff.display_name)).all(),
        "wecom_staff": session.scalars(select(Staff).where(active, Staff.wecom_userid.is_not(None))
                                       .order_by(Staff.display_name)).all(),
        "products": session.scalars(select(Product).order_by(Product.name)).all(),
        "funders": session.scalars(select(Funder).order_by(Funder.name)).all(), "funder_types": FUNDER_KIND_LABELS,
        "industries": INDUSTRY_CHOICES,
        "source_details": customer_queries.distinct_values(session, viewer, "source_detail"),
    }


def _form_of(report: Report | None) -> dict[str, Any]:
    if report is None:
        return {"metrics": [], "period": periods.DEFAULT, "filters": {}, "shared_roles": [], "schedule": "none",
                "chat_staff_ids": []}
    return {k: getattr(report, k) for k in ("name", "metrics", "dimension", "second_dimension", "period", "filters", "shared_roles",
                                            "schedule", "schedule_weekday", "schedule_time", "chat_name",
                                            "chat_staff_ids")}


async def _draft(request: Request) -> reports.ReportDraft:
    form = await request.form()

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def many(name: str) -> list[str]:
        return [v for v in form.getlist(name) if isinstance(v, str) and v]

    return reports.ReportDraft(
        name=text("name"), metrics=many("metrics"), dimension=text("dimension") or None,
        second_dimension=text("second_dimension") or None,
        period=text("period") or periods.DEFAULT,
        filters={k: text(k) for k in reports.FILTER_FIELDS if text(k)},
        shared_roles=many("shared_roles"), schedule=text("schedule") or "none",
        schedule_weekday=parse_int(text("schedule_weekday")), schedule_time=text("schedule_time") or None,
        chat_name=text("chat_name") or None,
        chat_staff_ids=[i for i in (parse_int(v) for v in many("chat_staff_ids")) if i is not None])


def _form_page(request: Request, session: SessionDep, user: ConsoleUser, form: dict[str, Any], *,
               report_id: int | None = None, error: AppError | None = None) -> Response:
    return render(request, "reports/form.html", {"form": form, "report_id": report_id, "error": error,
                                                 **_choices(session, user.viewer)},
                  status_code=error.status if error else 200)


@router.get("")
def index(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    mine = reports.runnable(session, user.viewer)
    owners = metrics.staff_names(session, [r.owner_staff_id for r in mine])
    return render(request, "reports/list.html", {
        "reports": mine, "owners": owners, "can_build": user.viewer.role in reports.BUILDER_ROLES,
        "periods": periods.PERIODS, "dimensions": reports.DIMENSION_LABELS, "schedules": reports.SCHEDULES,
        "weekdays": reports.WEEKDAYS, "roles": ROLE_LABELS, "metric_labels": {k: m.label for k, m in metrics.METRICS.items()},
    })


@router.get("/new")
def new(request: Request, session: SessionDep, user: Builder) -> Response:
    return _form_page(request, session, user, _form_of(None))


@router.post("/new", dependencies=[CsrfChecked])
async def create(request: Request, session: SessionDep, user: Builder) -> Response:
    draft = await _draft(request)
    report, error = attempt(session, lambda: reports.save(session, user.viewer, draft))
    if error or report is None:
        return _form_page(request, session, user, vars(draft), error=error)
    return RedirectResponse(f"/console/reports/{report.id}?done=saved", status_code=303)


@router.get("/{report_id}/edit")
def edit(report_id: int, request: Request, session: SessionDep, user: Builder) -> Response:
    report = reports.get_for_edit(session, user.viewer, report_id)
    return _form_page(request, session, user, _form_of(report), report_id=report.id)


@router.post("/{report_id}/edit", dependencies=[CsrfChecked])
async def update(report_id: int, request: Request, session: SessionDep, user: Builder) -> Response:
    draft = await _draft(request)
    _, error = attempt(session, lambda: reports.save(session, user.viewer, draft, report_id))
    if error:
        return _form_page(request, session, user, vars(draft), report_id=report_id, error=error)
    return RedirectResponse(f"/console/reports/{report_id}?done=saved", status_code=303)


def _charts(result: reports.Result) -> dict[str, Any]:
    """One bar chart per metric (its own unit), each bar drilling down like its table cell."""
    if result.totals is None:
        return {}
    charts = {f"m_{m.key}": {"title": f"{m.label}（按{result.dimension_label}）", "unit": m.unit,
                             "items": [(row.label, cell.value, cell.url) for row, cell
                                       in ((r, r.cells[i]) for r in result.rows[:20])]}
              for i, m in enumerate(result.columns)}
    return chart_payload(dashboards.Dashboard(kind="report", filters=result.filters, charts=charts))


@router.get("/{report_id}")
def view(report_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    report = reports.get_for_run(session, user.viewer, report_id)
    result = reports.run(session, user.viewer, report)
    owner = session.get(Staff, report.owner_staff_id)
    can_edit = reports.can_edit(user.viewer, report)
    return render(request, "reports/view.html", {
        "report": report, "result": result, "charts": _charts(result), "show": show, "owner": owner,
        "settings": reports.describe(session, report), "can_edit": can_edit,
        "roles": ROLE_LABELS, "schedules": reports.SCHEDULES, "weekdays": reports.WEEKDAYS,
        "pushes": report_schedule.recent_pushes(session, report.id) if can_edit else [],
        "push_labels": PUSH_STATUS_LABELS, "notice": "报表已保存" if request.query_params.get("done") == "saved" else None,
    })


@router.post("/{report_id}/export", dependencies=[CsrfChecked])
def export(report_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """导出 Excel: the report as the requester sees it, as a background job; its page shows the progress."""
    report = reports.get_for_run(session, user.viewer, report_id)
    job = export_jobs.request(session, user.viewer, "report", {"report_id": report.id})
    return RedirectResponse(f"/console/exports/{job.id}", status_code=303)
