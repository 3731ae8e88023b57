"""Public pool pages (公海): the pool list with claim and bulk claim, release and move, pool
settings and recycle rules, allocation rules. Rules live in crm.pool_service and crm.allocation;
these routes parse forms, run the call in a savepoint (``attempt``) and render."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render, require_roles
from admin.pagination import counted, page_number
from analytics import export_jobs
from core.errors import ValidationFailed
from core.web import SessionDep
from crm import allocation, org_service, pool_service, scope
from crm.models import (
    ALLOCATION_MODE_LABELS,
    CUSTOMER_TYPE_LABELS,
    STAGE_LABELS,
    Department,
    Grade,
    StaffSkill,
)

router = APIRouter(prefix="/console/pool", include_in_schema=False)

POOL_MANAGERS = pool_service.MANAGER_ROLES
Manager = Annotated[ConsoleUser, Depends(require_roles(POOL_MANAGERS))]

NOTICES = {"claimed": "已领取到私海", "released": "已释放到公海", "moved": "已移到其他公海", "settings": "公海设置已保存",
           "pool": "公海已创建", "rule": "规则已保存", "skills": "擅长类型已保存"}


def _ids(raw: list[str]) -> list[int]:
    return [i for i in (parse_int(v) for v in raw) if i is not None]


def _filters(q: Any) -> pool_service.PoolFilters:
    return pool_service.PoolFilters(region=q.get("region") or None, customer_type=q.get("customer_type") or None,
                                    grade=q.get("grade") or None, source=q.get("source") or None)


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel: the pool shown and the list's filters, as the job stores them."""
    pool_id = parse_int(form.get("pool_id"))
    if pool_id is None:
        raise ValidationFailed("请先选择公海", field="pool_id")
    pool_service.get_pool(session, user.viewer, pool_id)
    return {"pool_id": pool_id, **export_jobs.dataclass_params(_filters(form))}


def _pool_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
               notice: str | None = None, failures: dict[int, str] | None = None, status_code: int = 200) -> Response:
    viewer = user.viewer
    pools = pool_service.list_pools(session, viewer)
    q = request.query_params
    pool_id = parse_int(q.get("pool_id")) or (pools[0][0].id if pools else None)
    filters = _filters(q)
    rows: list[Any] = []
    page = None
    current = None
    setting = None
    if pool_id is not None:
        current = pool_service.get_pool(session, viewer, pool_id)
        setting = pool_service.settings_for(session, pool_id)
        number = page_number(q.get("page"))
        params = {"pool_id": str(pool_id), "region": filters.region or "", "customer_type": filters.customer_type or "",
                  "grade": filters.grade or "", "source": filters.source or ""}
        rows, total = pool_service.pool_customers(session, viewer, pool_id, filters, limit=20, offset=(number - 1) * 20)
        page = counted(number, total, "/console/pool", params)
    is_manager = viewer.role in POOL_MANAGERS
    staff = org_service.owner_choices(session, viewer) if is_manager else []  # 分配给: salespeople only
    return render(request, "pool/index.html", {
        "pools": pools, "current": current, "rows": rows, "page": page, "filters": filters, "setting": setting,
        "type_labels": CUSTOMER_TYPE_LABELS, "stage_labels": STAGE_LABELS,
        "grades": list(session.scalars(select(Grade).order_by(Grade.rank))), "is_manager": is_manager,
        "staff": staff, "mode_labels": ALLOCATION_MODE_LABELS, "error": error, "failures": failures or {},
        "claims_today": pool_service.claims_today(session, viewer.staff_id),
        "notice": notice or NOTICES.get(q.get("done", "")),
        "export_params": {"pool_id": pool_id, **export_jobs.dataclass_params(filters)} if pool_id else None,
    }, status_code=status_code)


def _back(pool_id: int | None, done: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in (("pool_id", pool_id), ("done", done)) if v})
    return RedirectResponse(f"/console/pool?{query}", status_code=303)


@router.get("")
def pool_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _pool_page(request, session, user)


@router.post("/customers/{customer_id}/claim", dependencies=[CsrfChecked])
def claim_one(request: Request, session: SessionDep, user: CurrentUser, customer_id: int,
              pool_id: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: pool_service.claim(session, user.viewer, customer_id))
    if error:
        return _pool_page(request, session, user, error=error, status_code=error.status)
    return _back(parse_int(pool_id), "claimed")


@router.post("/claim", dependencies=[CsrfChecked])
def claim_bulk(request: Request, session: SessionDep, user: CurrentUser,
               customer_ids: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006 - FastAPI form default
    ids = _ids(customer_ids)
    if not ids:
        return _pool_page(request, session, user, error=ValidationFailed("请先勾选要领取的客户"), status_code=422)
    results = pool_service.claim_many(session, user.viewer, ids)
    won = sum(1 for r in results.values() if r is None)
    failures = {cid: msg for cid, msg in results.items() if msg}
    notice = f"成功领取 {won} 位客户" + (f"，{len(failures)} 位未领取" if failures else "")
    return _pool_page(request, session, user, notice=notice, failures=failures)


@router.post("/customers/{customer_id}/release", dependencies=[CsrfChecked])
def release(request: Request, session: SessionDep, user: CurrentUser, customer_id: int,
            reason: Annotated[str, Form()] = "", pool_id: Annotated[str, Form()] = "") -> Response:
    """Release from a customer's page: back to that page with a notice, or an error page."""
    customer, error = attempt(session, lambda: pool_service.release(session, user.viewer, customer_id, reason,
                                                                    pool_id=parse_int(pool_id)))
    if error:
        raise error
    return RedirectResponse(f"/console/customers/{customer_id}?done=released", status_code=303)


@router.post("/customers/{customer_id}/move", dependencies=[CsrfChecked])
def move(request: Request, session: SessionDep, user: Manager, customer_id: int,
         target_pool_id: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "") -> Response:
    target = parse_int(target_pool_id)
    if target is None:
        return _pool_page(request, session, user, error=ValidationFailed("请选择目标公海"), status_code=422)
    customer, error = attempt(session, lambda: pool_service.move(session, user.viewer, customer_id, target,
                                                                 reason or None))
    if error:
        return _pool_page(request, session, user, error=error, status_code=error.status)
    return _back(target, "moved")


@router.post("/allocate", dependencies=[CsrfChecked])
def allocate(request: Request, session: SessionDep, user: Manager,
             customer_ids: Annotated[list[str], Form()] = [],  # noqa: B006
             to_staff_id: Annotated[str, Form()] = "", mode: Annotated[str, Form()] = "") -> Response:
    ids = _ids(customer_ids)
    if not ids:
        return _pool_page(request, session, user, error=ValidationFailed("请先勾选要分配的客户"), status_code=422)
    target = parse_int(to_staff_id)
    chosen = "manual" if target else (mode or None)
    result, error = attempt(session, lambda: allocation.allocate_for(session, user.viewer, ids, mode=chosen,
                                                                     to_staff_id=target))
    if error:
        return _pool_page(request, session, user, error=error, status_code=error.status)
    won = sum(1 for v in (result or {}).values() if v is not None)
    left = len(ids) - won
    return _pool_page(request, session, user,
                      notice=f"已分配 {won} 位客户" + (f"，{left} 位无人可分（无匹配规则或已满员）仍在公海" if left else ""))


# --- settings and recycle rules (managers) ----------------------------------------------------------

def _settings_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
                   status_code: int = 200) -> Response:
    pools = pool_service.list_pools(session, user.viewer)
    return render(request, "pool/settings.html", {
        "pools": [(p, n, pool_service.settings_for(session, p.id)) for p, n in pools],
        "rules": pool_service.list_recycle_rules(session), "stage_labels": STAGE_LABELS,
        "grades": list(session.scalars(select(Grade).order_by(Grade.rank))),
        "departments": list(session.scalars(select(Department).where(
            scope.department_filter(user.viewer, Department.path)).order_by(Department.path))),
        "error": error, "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("/settings")
def settings_page(request: Request, session: SessionDep, user: Manager) -> Response:
    return _settings_page(request, session, user)


def _int_field(raw: str, label: str, field: str) -> int:
    value = parse_int(raw)
    if value is None:
        raise ValidationFailed(f"{label}必须是整数", field=field)
    return value


@router.post("/pools", dependencies=[CsrfChecked])
def create_pool(request: Request, session: SessionDep, user: Manager, name: Annotated[str, Form()] = "",
                department_id: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: pool_service.create_pool(session, user.viewer, name, parse_int(department_id)))
    if error:
        return _settings_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/pool/settings?done=pool", status_code=303)


@router.post("/{pool_id}/settings", dependencies=[CsrfChecked])
def save_settings(request: Request, session: SessionDep, user: Manager, pool_id: int,
                  daily_claim_cap: Annotated[str, Form()] = "", cooldown_days: Annotated[str, Form()] = "",
                  protection_days: Annotated[str, Form()] = "",
                  check_private_cap: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        return pool_service.update_settings(session, user.viewer, pool_id, {
            "daily_claim_cap": _int_field(daily_claim_cap, "每日领取上限", "daily_claim_cap"),
            "cooldown_days": _int_field(cooldown_days, "冷却天数", "cooldown_days"),
            "protection_days": _int_field(protection_days, "新线索保护天数", "protection_days"),
            "check_private_cap": check_private_cap == "on"})

    _, error = attempt(session, run)
    if error:
        return _settings_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/pool/settings?done=settings", status_code=303)


def _opt_int(raw: str) -> int | None:
    if not (raw or "").strip():
        return None
    value = parse_int(raw)
    if value is None:
        raise ValidationFailed("天数必须是整数")
    return value


@router.post("/recycle-rules", dependencies=[CsrfChecked])
@router.post("/recycle-rules/{rule_id}", dependencies=[CsrfChecked])
def save_recycle_rule(request: Request, session: SessionDep, user: Manager, rule_id: int | None = None,
                      name: Annotated[str, Form()] = "", combinator: Annotated[str, Form()] = "and",
                      no_followup_days: Annotated[str, Form()] = "", not_converted_days: Annotated[str, Form()] = "",
                      converted_stage: Annotated[str, Form()] = "",
                      grades: Annotated[list[str], Form()] = [],  # noqa: B006
                      stages: Annotated[list[str], Form()] = [],  # noqa: B006
                      target_pool_id: Annotated[str, Form()] = "", department_id: Annotated[str, Form()] = "",
                      warn_hours: Annotated[str, Form()] = "24", active: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        data = pool_service.RecycleRuleInput(
            name=name, combinator=combinator, no_followup_days=_opt_int(no_followup_days),
            not_converted_days=_opt_int(not_converted_days), converted_stage=converted_stage or None,
            grades=grades, stages=stages, target_pool_id=parse_int(target_pool_id),
            department_id=parse_int(department_id), warn_hours=_int_field(warn_hours, "提前提醒小时数", "warn_hours"),
            active=active == "on")
        return pool_service.save_recycle_rule(session, user.viewer, data, rule_id)

    _, error = attempt(session, run)
    if error:
        return _settings_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/pool/settings?done=rule", status_code=303)


# --- allocation rules (managers) --------------------------------------------------------------------

def _allocation_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
                     status_code: int = 200) -> Response:
    viewer = user.viewer
    staff = org_service.owner_choices(session, viewer)  # rule members: the staff who may be given leads
    skills: dict[int, set[str]] = {}
    for sid, ctype in session.execute(select(StaffSkill.staff_id, StaffSkill.customer_type)
                                      .where(StaffSkill.staff_id.in_([s.id for s in staff]))):
        skills.setdefault(sid, set()).add(ctype)
    rules = allocation.list_rules(session)
    return render(request, "pool/allocation.html", {
        "rules": [(r, allocation.rule_members(session, r.id)) for r in rules], "staff": staff,
        "staff_names": {s.id: s.display_name for s in staff}, "skills": skills,
        "pools": [p for p, _ in pool_service.list_pools(session, viewer)], "mode_labels": ALLOCATION_MODE_LABELS,
        "type_labels": CUSTOMER_TYPE_LABELS,
        "departments": list(session.scalars(select(Department).where(
            scope.department_filter(viewer, Department.path)).order_by(Department.path))),
        "error": error, "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("/allocation")
def allocation_page(request: Request, session: SessionDep, user: Manager) -> Response:
    return _allocation_page(request, session, user)


@router.post("/allocation-rules", dependencies=[CsrfChecked])
@router.post("/allocation-rules/{rule_id}", dependencies=[CsrfChecked])
def save_allocation_rule(request: Request, session: SessionDep, user: Manager, rule_id: int | None = None,
                         name: Annotated[str, Form()] = "", mode: Annotated[str, Form()] = "",
                         source_pattern: Annotated[str, Form()] = "", pool_id: Annotated[str, Form()] = "",
                         department_id: Annotated[str, Form()] = "", target_staff_id: Annotated[str, Form()] = "",
                         member_ids: Annotated[list[str], Form()] = [],  # noqa: B006
                         priority: Annotated[str, Form()] = "100", active: Annotated[str, Form()] = "") -> Response:
    def run() -> object:
        data = allocation.AllocationRuleInput(
            name=name, mode=mode, source_pattern=source_pattern or None, pool_id=parse_int(pool_id),
            department_id=parse_int(department_id), target_staff_id=parse_int(target_staff_id),
            member_ids=_ids(member_ids), priority=_int_field(priority, "优先级", "priority"), active=active == "on")
        return allocation.save_rule(session, user.viewer, data, rule_id)

    _, error = attempt(session, run)
    if error:
        return _allocation_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/pool/allocation?done=rule", status_code=303)


@router.post("/skills/{staff_id}", dependencies=[CsrfChecked])
def save_skills(request: Request, session: SessionDep, user: Manager, staff_id: int,
                customer_types: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006
    _, error = attempt(session, lambda: allocation.set_skills(session, user.viewer, staff_id, customer_types))
    if error:
        return _allocation_page(request, session, user, error=error, status_code=error.status)
    return RedirectResponse("/console/pool/allocation?done=skills", status_code=303)
