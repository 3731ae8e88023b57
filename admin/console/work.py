"""Work pages: my day (reminders, tasks, today's visits), a customer's follow-ups and co-handlers, the
visits list with its actions, and the automation rules editor (managers).

Routes parse forms and call crm.followups / crm.visits / crm.automation inside a savepoint
(``attempt``); every form carries the CSRF token; reads are data-scoped by the services.
The Customer 360 page (admin.console.customers) includes ``work/_followup_form.html``, which posts
to :func:`log_followup` with ``next`` pointing back to it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import Response

from admin import nav, visit_form
from admin.condition_form import built_from_post, has_builder, preview, view_of
from admin.console.lending_products import Form as PostedForm
from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, require_roles
from core import clock
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm import automation, customers, followups, visits
from crm.models import (
    FOLLOWUP_KIND_LABELS,
    FOLLOWUP_OUTCOMES,
    STAGE_LABELS,
    TASK_STATUS_LABELS,
    VISIT_STATUS_LABELS,
    Customer,
    CustomerType,
    Department,
    Grade,
    Staff,
    StaffStatus,
)
from crm.scope import staff_filter
from lending.risk.condition_builder import FieldSet, automation_conditions, automation_fields

router = APIRouter(prefix="/console/work", include_in_schema=False)

RuleEditor = Annotated[ConsoleUser, Depends(require_roles(nav.RULE_EDITORS))]

NOTICES = {
    "followup": "跟进已记录", "task": "待办已创建", "done": "待办已完成", "cancelled": "待办已取消",
    "collab_added": "已添加协作人", "collab_removed": "已移除协作人", "visit": "预约已创建", "arrived": "已标记到店",
    "no_show": "已标记未到店", "visit_cancelled": "预约已取消", "rescheduled": "预约已改期", "rule": "规则已保存",
    "rule_toggled": "规则状态已更新",
}


def parse_local(raw: str, label: str, field: str, *, required: bool = False) -> datetime | None:
    """A datetime-local form value (Asia/Shanghai wall time) as an aware UTC instant."""
    raw = (raw or "").strip()
    if not raw:
        if required:
            raise ValidationFailed(f"请填写{label}", field=field)
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(f"{label}格式不正确", field=field) from exc
    if local.tzinfo is None:
        local = local.replace(tzinfo=clock.BUSINESS_TZ)
    return clock.ensure_aware(local)


def _date(raw: str | None, default: date) -> date:
    try:
        return date.fromisoformat((raw or "").strip()) if (raw or "").strip() else default
    except ValueError:
        return default


def _safe_next(raw: str, default: str) -> str:
    raw = (raw or "").strip()
    return raw if raw.startswith("/console/") and "//" not in raw and "\\" not in raw else default


def _labels() -> dict[str, Any]:
    return {"kind_labels": FOLLOWUP_KIND_LABELS, "outcomes": FOLLOWUP_OUTCOMES, "visit_status": VISIT_STATUS_LABELS,
            "task_status": TASK_STATUS_LABELS, "stage_labels": STAGE_LABELS}


# --- my day --------------------------------------------------------------------------------------


def _today_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: AppError | None = None,
                status_code: int = 200) -> Response:
    day = _date(request.query_params.get("day"), clock.today())
    reminders = followups.reminders_for(session, user.viewer, day)
    tasks = followups.list_tasks(session, user.viewer)
    visits_today = visits.upcoming_for_staff(session, user.viewer.staff_id, day)
    ids = {t.customer_id for t in tasks if t.customer_id} | {v.customer_id for v in visits_today}
    names = dict(session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids))).all()) if ids else {}
    return render(request, "work/today.html", {
        "day": day, "reminders": reminders, "tasks": tasks, "customer_names": names,
        "visits_today": visits_today, "error": error,
        "notice": NOTICES.get(request.query_params.get("done", "")), **_labels(),
    }, status_code=status_code)


@router.get("/today")
def today(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _today_page(request, session, user)


def _picked_customer(session: SessionDep, user: ConsoleUser, customer_id: str, typed: str) -> int | None:
    """The customer chosen in the picker, or the only one the typed text finds (the form without scripts)."""
    chosen = parse_int(customer_id)
    if chosen is not None or not typed.strip():
        return chosen
    found = customers.lookup(session, user.viewer, typed, limit=2)
    if not found:
        raise ValidationFailed(f"没有找到客户“{typed.strip()}”", field="customer_q")
    if len(found) > 1:
        raise ValidationFailed(f"“{typed.strip()}”找到多位客户，请从列表中选择", field="customer_q")
    return found[0].id


@router.post("/tasks", dependencies=[CsrfChecked])
def create_task(request: Request, session: SessionDep, user: CurrentUser, title: Annotated[str, Form()] = "",
                due_at: Annotated[str, Form()] = "", customer_id: Annotated[str, Form()] = "",
                customer_q: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        return followups.create_task(session, user.viewer, title=title,
                                     customer_id=_picked_customer(session, user, customer_id, customer_q),
                                     due_at=parse_local(due_at, "截止时间", "due_at"))

    _, error = attempt(session, run)
    if error:
        return _today_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse(_safe_next(next, "/console/work/today") + "?done=task", status_code=303)


@router.post("/tasks/{task_id}/{action}", dependencies=[CsrfChecked])
def close_task(request: Request, session: SessionDep, user: CurrentUser, task_id: int, action: str) -> Response:
    status = {"done": "done", "cancel": "cancelled"}.get(action)
    if status is None:
        raise ValidationFailed("未知的操作")
    followups.close_task(session, user.viewer, task_id, status)
    return RedirectResponse(f"/console/work/today?done={status}", status_code=303)


# --- a customer's work -----------------------------------------------------------------------------


def _refused(request: Request, session: SessionDep, user: ConsoleUser, customer_id: int, error: AppError,
             next_url: str) -> Response:
    """A refused form is shown again on the page it came from: the Customer 360 or the customer's work page."""
    if _safe_next(next_url, "").startswith(f"/console/customers/{customer_id}"):
        from admin.console.customers import detail_page  # the 360 embeds these forms

        return detail_page(request, session, user, customer_id, error=error, status_code=error.status)
    return _customer_page(request, session, user, customer_id, error=error, status_code=error.status)


def _customer_page(request: Request, session: SessionDep, user: ConsoleUser, customer_id: int, *,
                   error: AppError | None = None, status_code: int = 200) -> Response:
    customer = customers.get_customer(session, user.viewer, customer_id)
    staff_choices = list(session.scalars(select(Staff).where(Staff.status == StaffStatus.ACTIVE)
                                         .order_by(Staff.display_name).limit(300)))
    history = followups.list_followups(session, user.viewer, customer.id, limit=50)
    names = dict(session.execute(select(Staff.id, Staff.display_name).where(
        Staff.id.in_({f.staff_id for f in history} | {customer.owner_id or 0}))).all())
    return render(request, "work/customer.html", {
        "c": customer, "customer": customer, "customer_id": customer.id, "followups": history, "names": names,
        "collaborators": followups.list_collaborators(session, user.viewer, customer.id),
        "staff_choices": staff_choices, "error": error, **visit_form.context(session, user.viewer, customer),
        "notice": NOTICES.get(request.query_params.get("done", "")), **_labels(),
    }, status_code=status_code)


@router.get("/customers/{customer_id}")
def customer_work(request: Request, session: SessionDep, user: CurrentUser, customer_id: int) -> Response:
    return _customer_page(request, session, user, customer_id)


@router.post("/customers/{customer_id}/followups", dependencies=[CsrfChecked])
def log_followup(request: Request, session: SessionDep, user: CurrentUser, customer_id: int,
                 kind: Annotated[str, Form()] = "call", content: Annotated[str, Form()] = "",
                 outcome: Annotated[str, Form()] = "", next_followup_at: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        return followups.log_followup(session, user.viewer, customer_id, kind=kind, content=content,
                                      outcome=outcome or None,
                                      next_followup_at=parse_local(next_followup_at, "下次跟进时间", "next_followup_at"))

    _, error = attempt(session, run)
    if error:
        return _refused(request, session, user, customer_id, error, next)
    target = _safe_next(next, f"/console/work/customers/{customer_id}")
    return RedirectResponse(f"{target}{'&' if '?' in target else '?'}done=followup", status_code=303)


@router.post("/customers/{customer_id}/collaborators", dependencies=[CsrfChecked])
def add_collaborator(request: Request, session: SessionDep, user: CurrentUser, customer_id: int,
                     staff_id: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "协作") -> Response:
    _, error = attempt(session, lambda: followups.add_collaborator(session, user.viewer, customer_id,
                                                                   parse_int(staff_id) or 0, role))
    if error:
        return _customer_page(request, session, user, customer_id, error=error, status_code=error.status)
    return RedirectResponse(f"/console/work/customers/{customer_id}?done=collab_added", status_code=303)


@router.post("/customers/{customer_id}/collaborators/{staff_id}/remove", dependencies=[CsrfChecked])
def remove_collaborator(request: Request, session: SessionDep, user: CurrentUser, customer_id: int,
                        staff_id: int) -> Response:
    _, error = attempt(session, lambda: followups.remove_collaborator(session, user.viewer, customer_id, staff_id))
    if error:
        return _customer_page(request, session, user, customer_id, error=error, status_code=error.status)
    return RedirectResponse(f"/console/work/customers/{customer_id}?done=collab_removed", status_code=303)


@router.post("/customers/{customer_id}/visits", dependencies=[CsrfChecked])
def schedule_visit(request: Request, session: SessionDep, user: CurrentUser, customer_id: int,
                   scheduled_at: Annotated[str, Form()] = "", department_id: Annotated[str, Form()] = "",
                   note: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        at = parse_local(scheduled_at, "预约时间", "scheduled_at", required=True)
        return visits.schedule_visit(session, customer_id, at, department_id=parse_int(department_id) or 0,
                                     viewer=user.viewer, note=note)

    _, error = attempt(session, run)
    if error:
        return _refused(request, session, user, customer_id, error, next)
    target = _safe_next(next, f"/console/work/customers/{customer_id}")
    return RedirectResponse(f"{target}{'&' if '?' in target else '?'}done=visit", status_code=303)


# --- visits --------------------------------------------------------------------------------------


def _visits_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: AppError | None = None,
                 status_code: int = 200) -> Response:
    start = _date(request.query_params.get("start"), clock.today())
    end = _date(request.query_params.get("end"), start + timedelta(days=6))
    if end < start or (end - start).days > 62:
        end = start + timedelta(days=6)
    status = request.query_params.get("status") or None
    rows = visits.list_visits(session, user.viewer, start, end,
                              status=status if status in VISIT_STATUS_LABELS else None)
    days: dict[date, list[Any]] = {}
    for v, c in rows:
        days.setdefault(clock.business_date(v.scheduled_at), []).append((v, c))
    staff_ids = {v.inviter_id for v, _ in rows} | {v.reception_staff_id for v, _ in rows}
    names = dict(session.execute(select(Staff.id, Staff.display_name).where(
        Staff.id.in_({s for s in staff_ids if s}))).all()) if staff_ids else {}
    branch_names = dict(session.execute(select(Department.id, Department.name)).all())
    return render(request, "work/visits.html", {
        "days": days, "start": start, "end": end, "status": status or "", "names": names,
        "branch_names": branch_names, "now": clock.now(), "error": error,
        "notice": NOTICES.get(request.query_params.get("done", "")), **_labels(),
    }, status_code=status_code)


@router.get("/visits")
def visit_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _visits_page(request, session, user)


@router.post("/visits/{visit_id}/{action}", dependencies=[CsrfChecked])
def visit_action(request: Request, session: SessionDep, user: CurrentUser, visit_id: int, action: str,
                 reason: Annotated[str, Form()] = "", scheduled_at: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        if action == "arrived":
            return visits.mark_arrived(session, user.viewer, visit_id)
        if action == "no-show":
            return visits.mark_no_show(session, user.viewer, visit_id)
        if action == "cancel":
            return visits.cancel_visit(session, user.viewer, visit_id, reason)
        if action == "reschedule":
            at = parse_local(scheduled_at, "新的预约时间", "scheduled_at", required=True)
            return visits.reschedule_visit(session, user.viewer, visit_id, at, reason=reason)
        raise ValidationFailed("未知的操作")

    _, error = attempt(session, run)
    if error:
        return _visits_page(request, session, user, error=error, status_code=error.status)
    done = {"arrived": "arrived", "no-show": "no_show", "cancel": "visit_cancelled", "reschedule": "rescheduled"}
    return RedirectResponse(f"/console/work/visits?done={done[action]}", status_code=303)


# --- automation rules ----------------------------------------------------------------------------


def _rules_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: AppError | None = None,
                form: dict[str, str] | None = None, posted: FormData | None = None, status_code: int = 200
                ) -> Response:
    rules = automation.list_rules(session)
    return render(request, "work/rules.html", {
        "rules": [(r, automation.describe(r)) for r in rules], "triggers": automation.TRIGGER_LABELS,
        "actions": automation.ACTION_LABELS, "targets": automation.TARGET_LABELS,
        "grades": list(session.scalars(select(Grade).order_by(Grade.rank))),
        "types": [t.value for t in CustomerType],
        "staff_choices": list(session.scalars(select(Staff).where(staff_filter(user.viewer),
                                                                  Staff.status == StaffStatus.ACTIVE)
                                              .order_by(Staff.display_name).limit(300))),
        "form": form or {}, "error": error, "notice": NOTICES.get(request.query_params.get("done", "")),
        "builder": view_of("cond", _condition_fields(session), str((form or {}).get("cond_expression", "")),
                           form=posted),
        **_labels(),
    }, status_code=status_code)


def _condition_fields(session: SessionDep) -> FieldSet:
    return automation_fields((g.code, f"{g.code} {g.label}") for g in session.scalars(select(Grade).order_by(Grade.rank)))


@router.get("/rules/condition-preview")
def rule_condition_preview(request: Request, session: SessionDep, user: RuleEditor, prefix: str = "") -> Response:
    """The builder's rows as the expression they stand for (htmx); nothing stored."""
    return render(request, "_condition_preview.html",
                  preview(request.query_params, prefix, _condition_fields(session)))


@router.get("/rules")
def rules(request: Request, session: SessionDep, user: RuleEditor) -> Response:
    return _rules_page(request, session, user)


CONDITION_FIELDS = ("grade", "stage", "source", "region", "customer_type")


@router.post("/rules", dependencies=[CsrfChecked])
def create_rule(request: Request, session: SessionDep, user: RuleEditor, posted: PostedForm, name: Annotated[str, Form()] = "",
                trigger: Annotated[str, Form()] = "", trigger_value: Annotated[str, Form()] = "",
                cond_grade: Annotated[str, Form()] = "", cond_stage: Annotated[str, Form()] = "",
                cond_source: Annotated[str, Form()] = "", cond_region: Annotated[str, Form()] = "",
                cond_customer_type: Annotated[str, Form()] = "", action_type: Annotated[str, Form()] = "",
                title: Annotated[str, Form()] = "", due_hours: Annotated[str, Form()] = "",
                target: Annotated[str, Form()] = "", staff_id: Annotated[str, Form()] = "",
                body: Annotated[str, Form()] = "", grade: Annotated[str, Form()] = "",
                cond_expression: Annotated[str, Form()] = "") -> Response:
    raw = {"name": name, "trigger": trigger, "trigger_value": trigger_value, "cond_grade": cond_grade,
           "cond_stage": cond_stage, "cond_source": cond_source, "cond_region": cond_region,
           "cond_customer_type": cond_customer_type, "action_type": action_type, "title": title,
           "due_hours": due_hours, "target": target, "staff_id": staff_id, "body": body, "grade": grade,
           "cond_expression": cond_expression}
    if has_builder(posted, "cond"):  # the condition builder (or its expression, in advanced mode)
        try:
            fields = _condition_fields(session)
            conditions = automation_conditions(fields, built_from_post(posted, "cond", fields, cond_expression))
        except ValidationFailed as exc:
            return _rules_page(request, session, user, error=exc, form=raw, posted=posted, status_code=exc.status)
    else:  # the older form's one field per condition
        conditions = [{"field": f, "op": "eq", "value": raw[f"cond_{f}"].strip()}
                      for f in CONDITION_FIELDS if raw[f"cond_{f}"].strip()]
    action: dict[str, Any] = {"type": action_type}
    if action_type == "create_task":
        action.update(title=title, due_hours=parse_int(due_hours, default=-1))
    elif action_type == "notify":
        action.update(target=target, title=title, body=body, staff_id=parse_int(staff_id))
    elif action_type == "set_grade":
        action.update(grade=grade)
    _, error = attempt(session, lambda: automation.create_rule(
        session, user.viewer, name=name, trigger=trigger, trigger_value=parse_int(trigger_value),
        conditions=conditions, action=action))
    if error:
        return _rules_page(request, session, user, error=error, form=raw, posted=posted, status_code=error.status)
    return RedirectResponse("/console/work/rules?done=rule", status_code=303)


@router.post("/rules/{rule_id}/toggle", dependencies=[CsrfChecked])
def toggle_rule(request: Request, session: SessionDep, user: RuleEditor, rule_id: int) -> Response:
    rule = automation.get_rule(session, rule_id)
    automation.set_active(session, user.viewer, rule.id, not rule.active)
    return RedirectResponse("/console/work/rules?done=rule_toggled", status_code=303)
