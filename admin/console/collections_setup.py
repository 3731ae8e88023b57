"""Collections setup pages (managers): collector groups and members, allocation rules with a preview of how
many cases each collector would get before the allocation is applied, and scripts (话术)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import Response

from admin.condition_form import expression_from_form, preview, view_of
from admin.console.lending_products import Form as PostedForm
from admin.deps import ConsoleUser, CsrfChecked, CurrentUser, attempt, parse_int, render
from admin.schemas_customers import yuan_text_to_fen
from core.errors import AppError, PermissionDenied, ValidationFailed
from core.web import SessionDep
from crm.models import Staff, StaffStatus
from lending.models import BUCKETS, Product
from lending.risk.condition_builder import warning_fields
from postloan import actions, allocation, rerating, rules, scripts
from postloan.models import BALANCE_LABELS, RISK_TIER_LABELS, CollectionScript, WarningRule

router = APIRouter(prefix="/console/collections", include_in_schema=False)

NOTICES = {"warning": "预警规则已保存", "group": "催收组已保存", "member": "组员已更新", "rule": "分案规则已保存", "applied": "已按规则分配",
           "script": "话术已保存"}
SCOPES = {"unassigned": "待分配的案件", "all": "全部在催案件（重新均衡）"}


WARNING_FIELDS = warning_fields()


def _manager(user: ConsoleUser) -> None:
    if user.viewer.role not in actions.MANAGERS:
        raise PermissionDenied("只有经理或管理员可以配置分案规则和话术")


def _int(raw: str, field: str, label: str) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed(f"{label}应为整数：{raw}", field=field)
    return int(raw)


def _rules_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: AppError | None = None,
                form: dict[str, Any] | None = None, scope: str | None = None, posted: FormData | None = None,
                status_code: int = 200) -> Response:
    _manager(user)
    collectors = list(session.scalars(select(Staff).where(Staff.role.in_([str(r) for r in actions.COLLECTORS]),
                                                          Staff.status == StaffStatus.ACTIVE)
                                      .order_by(Staff.display_name).limit(500)))
    preview = None
    if scope in SCOPES:
        the_plan = allocation.plan(session, scope=scope)
        preview = {"rows": allocation.preview(session, the_plan), "unassigned": the_plan.unassigned,
                   "moves": len(the_plan.assignments), "scope": scope}
    groups = rules.groups(session)
    return render(request, "collections/rules.html", {
        "tab": "rules", "is_manager": True, "groups": groups, "group_names": {g.id: g.name for g in groups},
        "members": rules.members(session), "collectors": collectors, "rules": rules.rules(session),
        "seniority": rules.SENIORITY_LABELS, "buckets": BUCKETS[1:], "tiers": RISK_TIER_LABELS,
        "balance": BALANCE_LABELS, "products": list(session.scalars(select(Product).order_by(Product.id).limit(200))),
        "warning_rules": list(session.scalars(select(WarningRule).order_by(WarningRule.id))),
        "warning_facts": rerating.FACTS, "preview": preview,
        "warning_builder": view_of("warn", WARNING_FIELDS, str((form or {}).get("expression", "")), form=posted), "scopes": SCOPES, "error": error, "form": form or {},
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


def _done(path: str, done: str) -> Response:
    return RedirectResponse(f"/console/collections/{path}?done={done}", status_code=303)


@router.get("/rules")
def rules_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _rules_page(request, session, user, scope=request.query_params.get("preview"))


@router.post("/rules/groups", dependencies=[CsrfChecked])
def save_group(request: Request, session: SessionDep, user: CurrentUser, name: Annotated[str, Form()] = "",
               seniority: Annotated[str, Form()] = "1") -> Response:
    _manager(user)
    _, error = attempt(session, lambda: rules.save_group(session, user.viewer, name=name,
                                                         seniority=parse_int(seniority) or 0))
    if error:
        return _rules_page(request, session, user, error=error, form={"group_name": name}, status_code=error.status)
    return _done("rules", "group")


@router.post("/rules/members", dependencies=[CsrfChecked])
def set_member(request: Request, session: SessionDep, user: CurrentUser, staff_id: Annotated[str, Form()] = "",
               group_id: Annotated[str, Form()] = "") -> Response:
    _manager(user)
    _, error = attempt(session, lambda: rules.set_member(session, user.viewer, parse_int(staff_id) or 0,
                                                         parse_int(group_id)))
    if error:
        return _rules_page(request, session, user, error=error, status_code=error.status)
    return _done("rules", "member")


@router.post("/rules", dependencies=[CsrfChecked])
async def save_rule(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _manager(user)
    f = await request.form()
    form = {k: str(f.get(k, "")) for k in ("name", "group_id", "priority", "min_amount", "max_amount", "region",
                                           "product_id", "balance_by", "reassign_after_days", "rule_id")}

    def run() -> object:
        return rules.save_rule(
            session, user.viewer, name=form["name"], group_id=parse_int(form["group_id"]),
            priority=_int(form["priority"], "priority", "优先级") or 100,
            buckets=[str(v) for v in f.getlist("buckets")], risk_tiers=[str(v) for v in f.getlist("risk_tiers")],
            min_amount=yuan_text_to_fen(form["min_amount"], "min_amount", "最低金额"),
            max_amount=yuan_text_to_fen(form["max_amount"], "max_amount", "最高金额"),
            region=form["region"], product_id=parse_int(form["product_id"]), balance_by=form["balance_by"] or "count",
            reassign_after_days=_int(form["reassign_after_days"], "reassign_after_days", "重新分配天数"),
            active=f.get("active", "1") == "1", rule_id=parse_int(form["rule_id"]))

    _, error = attempt(session, run)
    if error:
        return _rules_page(request, session, user, error=error, form=form, status_code=error.status)
    return _done("rules", "rule")


@router.get("/rules/warnings/condition-preview")
def warning_condition_preview(request: Request, user: CurrentUser, prefix: str = "") -> Response:
    """The builder's rows as the expression they write (htmx); nothing stored."""
    _manager(user)
    return render(request, "_condition_preview.html", preview(request.query_params, prefix, WARNING_FIELDS))


@router.post("/rules/warnings", dependencies=[CsrfChecked])
def save_warning_rule(request: Request, session: SessionDep, user: CurrentUser, posted: PostedForm,
                      name: Annotated[str, Form()] = "", expression: Annotated[str, Form()] = "",
                      raise_to: Annotated[str, Form()] = "") -> Response:
    _manager(user)
    typed = {"warning_name": name, "expression": expression}
    try:  # the condition builder's rows (yuan and days typed) as the expression; advanced mode: as typed
        expression = expression_from_form(posted, "warn", WARNING_FIELDS, expression)
    except ValidationFailed as exc:
        return _rules_page(request, session, user, error=exc, status_code=exc.status, form=typed, posted=posted)
    _, error = attempt(session, lambda: rerating.save_warning_rule(session, user.viewer, name=name,
                                                                   expression=expression, raise_to=raise_to))
    if error:
        return _rules_page(request, session, user, error=error, status_code=error.status, form=typed, posted=posted)
    return _done("rules", "warning")


@router.post("/rules/apply", dependencies=[CsrfChecked])
def apply_rules(request: Request, session: SessionDep, user: CurrentUser,
                scope: Annotated[str, Form()] = "unassigned") -> Response:
    _manager(user)
    if scope not in SCOPES:
        raise ValidationFailed("请选择分配范围", field="scope")
    allocation.apply(session, allocation.plan(session, scope=scope), by_staff_id=user.viewer.staff_id,
                     note="按规则分配")
    return _done("rules", "applied")


# --- scripts -----------------------------------------------------------------------------------------------


def _scripts_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: AppError | None = None,
                  form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    _manager(user)
    rows = list(session.scalars(select(CollectionScript).order_by(CollectionScript.bucket, CollectionScript.id)))
    return render(request, "collections/scripts.html", {
        "tab": "scripts", "is_manager": True, "rows": rows, "buckets": BUCKETS[1:], "tiers": RISK_TIER_LABELS,
        "variables": scripts.VARIABLES, "error": error, "form": form or {},
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("/scripts")
def scripts_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _scripts_page(request, session, user)


@router.post("/scripts", dependencies=[CsrfChecked])
def save_script(request: Request, session: SessionDep, user: CurrentUser, name: Annotated[str, Form()] = "",
                body: Annotated[str, Form()] = "", bucket: Annotated[str, Form()] = "",
                risk_tier: Annotated[str, Form()] = "", script_id: Annotated[str, Form()] = "",
                active: Annotated[str, Form()] = "1") -> Response:
    _manager(user)
    _, error = attempt(session, lambda: scripts.save_script(session, user.viewer, name=name, body=body, bucket=bucket,
                                                            risk_tier=risk_tier, script_id=parse_int(script_id),
                                                            active=active == "1"))
    if error:
        return _scripts_page(request, session, user, error=error, status_code=error.status,
                             form={"name": name, "body": body, "bucket": bucket, "risk_tier": risk_tier})
    return _done("scripts", "script")
