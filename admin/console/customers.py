"""Customer pages: the scoped list with filters and bulk actions, the new-customer form, and Customer 360
(profile, demand, grade and stage, tags, co-handlers, owner history, one timeline, blacklist, phone reveal).

Business rules live in crm (crm.customers, crm.customer_queries, crm.customer_bulk); these routes parse
forms, call them inside a savepoint (``attempt``) and render. Another salesperson's customer is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin import nav, product_matching, visit_form
from admin.customer_flows import intake_by_staff
from admin.deps import ConsoleUser, CsrfChecked, FormFields, attempt, parse_int, render, require_roles, templates
from admin.pagination import count_text, counted, page_number
from admin.schemas_customers import yuan_text_to_fen
from analytics import funnel
from core import money
from core.errors import AppError, ValidationFailed
from core.web import SessionDep
from crm import (
    custom_fields,
    customer_bulk,
    customer_queries,
    customers,
    followups,
    pool_service,
    qualification,
    segment_profile,
    tags,
    visits,
)
from crm.models import (
    CUSTOMER_TYPE_LABELS,
    INDUSTRY_CHOICES,
    STAGE_LABELS,
    STATUS_LABELS,
    Customer,
    CustomerCollaborator,
    CustomerStatus,
    Department,
    Grade,
    Pool,
    Staff,
    Visit,
)
from lending import customer_summary

router = APIRouter(prefix="/console/customers", include_in_schema=False)

Reader = Annotated[ConsoleUser, Depends(require_roles(nav.CUSTOMER_READERS))]
Manager = Annotated[ConsoleUser, Depends(require_roles(nav.CUSTOMER_MANAGERS))]

LENDING_LABELS = {"loan": customer_summary.LOAN_STATUS_LABELS, "repayment": customer_summary.REPAYMENT_KIND_LABELS,
                  "risk": customer_summary.RISK_OUTCOME_LABELS, "channel": customer_summary.CHANNEL_LABELS, "provider": customer_summary.PROVIDER_STATUS_LABELS}
OWNER_CHANGE_LABELS = {
    "create": "新建", "assign": "分配", "claim": "领取", "release": "释放到公海", "recycle": "自动回收",
    "move": "转移公海", "transfer": "转交", "handover": "离职交接", "blacklist": "拉黑", "unblacklist": "移出黑名单",
}
EVENT_KIND_LABELS = {
    "created": "新建", "merged": "合并", "collision": "撞单", "profile": "资料", "grade": "等级", "stage": "阶段",
    "blacklist": "拉黑", "unblacklist": "移出黑名单", "followup": "跟进", "visit": "上门", "tags": "标签",
    "tag": "标签", "owner": "归属", "claim": "领取", "release": "释放", "recycle": "回收", "handover": "交接",
    "application": "进件", "contract": "合同", "repayment": "还款", "commission": "佣金", "wecom": "企业微信",
    "lending_application": "进件", "lending_contract": "合同", "lending_disbursement": "放款",
    "lending_servicing": "贷后", "risk": "风控", "referral": "推荐", "automation": "自动化", "pool": "公海",
    "task": "待办", "collaborator": "协作", "consent": "授权",
    "lending_repayment": "还款", "lending_repayment_reversed": "还款冲正", "lending_repayment_refunded": "还款退款", "lending_repayment_credit": "溢缴款留存", "lending_loan_imported": "存量贷款导入", "lending_schedule": "还款计划变更", "lending_loan_closed": "结清",
    "lending_promise": "承诺还款", "lending_promise_broken": "承诺未兑现",
    "call": "外呼", "call.do_not_call": "勿扰",
}
NOTICES = {
    "created": "客户已创建", "merged": "该客户已存在，本次录入已合并到原客户", "profile": "资料已保存",
    "qualification": "资质已保存", "fields": "自定义字段已保存", "grade": "等级已更新", "stage": "阶段已更新",
    "blacklisted": "已列入黑名单", "unblacklisted": "已移出黑名单，客户回到公海",
    "claimed": "已领取，客户归您跟进", "released": "已释放到公海", "tags": "标签已保存", "visit": "预约已创建",
    "followup": "跟进已记录",
}

templates.env.filters.update(
    yuan=lambda fen: "—" if fen is None else money.format_yuan(fen),
    stage_label=lambda v: STAGE_LABELS.get(v, v), ctype_label=lambda v: CUSTOMER_TYPE_LABELS.get(v, v),
    cstatus_label=lambda v: STATUS_LABELS.get(v, v), change_label=lambda v: OWNER_CHANGE_LABELS.get(v, v),
    event_label=lambda v: EVENT_KIND_LABELS.get(v) or EVENT_KIND_LABELS.get(v.split(".")[0], v),
)


FILTER_KEYS = (*customer_queries.FILTER_KEYS,
               "funnel",  # funnel: a dashboard step (analytics.funnel), from the home page's drill-down links
               "funnel_mode", "funnel_from", "funnel_to",  # the activity funnel: the step reached in these days
               "cf_field", "cf_cmp", "cf_value")  # one qualification or custom-field filter (crm.segment_profile)


def _filter(params: dict[str, str]) -> customer_queries.CustomerFilter:
    return customer_queries.filter_from_params(params)


def _extra(session: Session, params: dict[str, str]) -> tuple[Any, ...]:
    return funnel.customer_list_clauses(session, params)


def export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, str]:
    """导出 Excel: the list's filters as the job stores them (the export rebuilds the list from them)."""
    require_roles(nav.CUSTOMER_READERS)(user)
    return {k: form[k] for k in FILTER_KEYS if form.get(k)}


def _choices(session: Session, user: ConsoleUser) -> dict[str, Any]:
    from crm import org_service

    staff, _ = org_service.list_staff(session, user.viewer, status="active", limit=500)
    values = customer_queries.choice_values(session, user.viewer)
    return {
        "grades": list(session.scalars(select(Grade).order_by(Grade.rank))),
        "stage_labels": STAGE_LABELS, "type_labels": CUSTOMER_TYPE_LABELS, "status_labels": STATUS_LABELS,
        "sorts": customer_queries.SORTS, "owners": staff,
        "departments": org_service.list_departments(session, user.viewer),
        "regions": values["region"], "sources": values["source"],
        "funnel_steps": {k: v for k, v in funnel.STEP_LABELS.items() if k != "lead"},
        "industries": INDUSTRY_CHOICES,
    }


def _labels(name: str) -> dict[str, str]:
    import crm.models

    return getattr(crm.models, name, {})


SCOPE_WORDS = {"all": "全部客户", "department": "本部门的客户", "own": "我的客户（含协作）"}


def _searched(user: ConsoleUser, params: dict[str, str], total: str) -> str | None:
    """Where a search looked and by what, in one sentence under the box (none without a search text)."""
    q = params["q"].strip()
    if not q:
        return None
    where = SCOPE_WORDS.get(user.viewer.scope, "可见的客户")
    if params["status"] == CustomerStatus.POOL:
        where = "可领取的公海客户" if user.viewer.scope != "all" else "公海客户"
    elif params["with_pool"] == "1" and user.viewer.scope != "all":
        where += "和可领取的公海客户"
    elif params["status"]:
        where += f"中状态为「{STATUS_LABELS.get(params['status'], params['status'])}」的"
    basis = customer_queries.search_basis(q)
    return f"在{where}中按{basis}搜索「{q[:40]}」，找到 {total} 位" + (
        "；勾选「含公海」可一并搜索可领取的公海客户" if params["with_pool"] != "1" and not params["status"]
        and user.viewer.scope != "all" else "")


@router.get("")
def customer_list(request: Request, session: SessionDep, user: Reader) -> Response:
    params = {k: request.query_params.get(k, "") for k in FILTER_KEYS}
    number = page_number(request.query_params.get("page"))
    error: AppError | None = None
    rows: list[Customer] = []
    total, more_than = 0, None
    try:
        found = customer_queries.search(session, user.viewer, _filter(params), page=number, page_size=20,
                                        extra=_extra(session, params),
                                        count_bound=customer_queries.LIST_COUNT_BOUND)
        rows, total, more_than = found.items, found.total, found.more_than
    except AppError as exc:
        error = exc
    columns = [f for f in custom_fields.definitions(session) if f.show_in_list]
    return render(request, "customers/list.html", {
        "rows": rows, "filters": params, "error": error, "searched": _searched(user, params, count_text(total, more_than)),
        "page": counted(number, total, "/console/customers", params, 20, more_than),
        "can_manage": user.viewer.role in nav.CUSTOMER_MANAGERS,
        "notice": request.query_params.get("done") and NOTICES.get(request.query_params["done"]),
        "columns": columns, "export_params": {k: v for k, v in params.items() if v}, "column_values": custom_fields.values_for_customers(session, [c.id for c in rows], columns),
        "profile_filters": segment_profile.filter_choices(session), "profile_cmps": segment_profile.CMP_LABELS,
        **_choices(session, user),
    }, status_code=error.status if error else 200)


@router.post("/bulk", dependencies=[CsrfChecked])
def bulk_action(request: Request, session: SessionDep, user: Reader,
                action: Annotated[str, Form()] = "", ids: Annotated[list[int] | None, Form()] = None,
                grade: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
                back: Annotated[str, Form()] = "") -> Response:
    selected = ids or []

    def run() -> customer_bulk.BulkResult:
        if action == "grade":
            return customer_bulk.bulk_set_grade(session, user.viewer, selected, grade)
        if action == "blacklist":
            if user.viewer.role not in nav.CUSTOMER_MANAGERS:
                raise ValidationFailed("只有系统管理员、经理或主管可以拉黑客户")
            return customer_bulk.bulk_blacklist(session, user.viewer, selected, reason)
        if action == "release":
            return _bulk_release(session, user, selected, reason)
        raise ValidationFailed("请选择批量操作")

    result, error = attempt(session, run)
    labels = {"grade": "设置等级", "blacklist": "拉黑", "release": "释放到公海"}
    names = dict(session.execute(select(Customer.id, Customer.name).where(
        Customer.id.in_(list(result.done) + list(result.unchanged)))).all()) if result else {}
    back_url = back if back.startswith("/console/customers") else "/console/customers"
    return render(request, "customers/bulk_result.html", {
        "action_label": labels.get(action, "批量操作"), "result": result, "error": error, "names": names,
        "back": back_url,
    }, status_code=error.status if error else 200)


def _bulk_release(session: Session, user: ConsoleUser, ids: list[int], reason: str) -> customer_bulk.BulkResult:
    """Release each selected customer through crm.pool_service.release (its rules decide: the owner, or a
    supervisor/manager over them; a conditional update per customer). Each one wins or is refused on its own."""
    ids = customer_bulk.clean_ids(ids)
    if not reason.strip():
        raise ValidationFailed("请填写释放原因", field="reason")
    result = customer_bulk.BulkResult()
    for customer_id in ids:
        try:
            with session.begin_nested():
                pool_service.release(session, user.viewer, customer_id, reason)
            result.done.append(customer_id)
        except AppError as exc:
            result.refused[customer_id] = exc.message
    return result


# --- new customer ---------------------------------------------------------------------------------

class NewCustomerForm(BaseModel):
    name: str = ""
    phone: str = ""
    id_number: str = ""
    region: str = ""
    customer_type: str = "credit"
    source: str = "手工录入"  # crm.sources: the label of "manual"
    source_detail: str = ""
    demand_amount: str = ""
    demand_term_months: str = ""
    demand_purpose: str = ""
    grade: str = ""
    note: str = ""
    destination: str = "mine"  # mine | pool

    def to_input(self) -> customers.CustomerInput:
        term = self.demand_term_months.strip()
        if term and not term.isdigit():
            raise ValidationFailed("贷款期限必须是整数（月）", field="demand_term_months")
        return customers.CustomerInput(
            name=self.name.strip(), phone=self.phone.strip() or None, id_number=self.id_number.strip() or None,
            source=self.source.strip() or "手工录入", source_detail=self.source_detail.strip() or None,
            region=self.region.strip() or None, customer_type=self.customer_type or None,
            demand_amount=yuan_text_to_fen(self.demand_amount), demand_term_months=int(term) if term else None,
            demand_purpose=self.demand_purpose.strip() or None, grade=self.grade or None,
            note=self.note.strip() or None)


def _new_page(request: Request, session: Session, user: ConsoleUser, form: NewCustomerForm, *,
              error: AppError | None = None, collision: str | None = None, status_code: int = 200,
              values: dict[str, str] | None = None) -> Response:
    return render(request, "customers/new.html", {
        "custom_fields": custom_fields.definitions(session), "values": values or {},
        "error_fields": (error.details.get("errors") or {}) if error else {},
        "form": form, "error": error, "error_field": error.details.get("field") if error else None,
        "collision": collision, "grades": list(session.scalars(select(Grade).order_by(Grade.rank))),
        "type_labels": CUSTOMER_TYPE_LABELS,
    }, status_code=status_code)


@router.get("/pick")
def pick(request: Request, session: SessionDep, user: Reader, q: str = "", customer_q: str = "") -> Response:
    """An htmx fragment: the customers a name, pinyin initials, phone or its last four digits find, as
    radio choices named ``customer_id`` (the reminder and task forms; htmx sends the box's own name)."""
    q = q or customer_q
    found = customers.lookup(session, user.viewer, q, limit=8) if len(q.strip()) >= 1 else []
    return render(request, "customers/_pick.html", {"found": found, "q": q.strip()})


@router.get("/new")
def new_customer_form(request: Request, session: SessionDep, user: Reader) -> Response:
    default = "mine" if user.viewer.role == "sales" else "pool"
    return _new_page(request, session, user, NewCustomerForm(destination=default))


@router.post("/new", dependencies=[CsrfChecked])
def create_customer(request: Request, session: SessionDep, user: Reader,
                    form: Annotated[NewCustomerForm, Form()], fields: FormFields) -> Response:
    values = {k.removeprefix("cf_"): v for k, v in fields.items() if k.startswith("cf_")}

    def create() -> Any:
        done = intake_by_staff(session, user.viewer, form.to_input(), to_pool=form.destination == "pool",
                               channel="console")
        if done.outcome == "created":  # a merge or a collision leaves the existing record's fields alone
            custom_fields.set_values(session, None, done.result.customer.id, values,
                                     customer_type=form.customer_type or None, actor_staff_id=user.viewer.staff_id)
        return done

    done, error = attempt(session, create)
    if error or done is None:
        return _new_page(request, session, user, form, error=error, status_code=error.status if error else 422,
                         values=values)
    if done.outcome == "collision" or not done.visible:
        return _new_page(request, session, user, NewCustomerForm(), collision=done.message,
                         status_code=200)
    flag = "created" if done.outcome == "created" else "merged"
    return RedirectResponse(f"/console/customers/{done.result.customer.id}?done={flag}", status_code=303)


# --- Customer 360 ---------------------------------------------------------------------------------

def _names(session: Session, staff_ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in staff_ids if i}
    if not wanted:
        return {}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(wanted))).all())


def _tags_of(session: Session, customer_id: int) -> list[Any]:
    return list(tags.tags_of(session, customer_id))


def _extras(session: Session, user: ConsoleUser, customer: Customer) -> dict[str, Any]:
    """The work and pool panels: follow-ups, visits, claim and release."""
    return {
        "followup_form": "work/_followup_form.html",
        "followups": followups.list_followups(session, user.viewer, customer.id, limit=20),
        "visits": list(session.scalars(
            select(Visit).join(Customer, Customer.id == Visit.customer_id)
            .where(Visit.customer_id == customer.id, visits.visible_visits_clause(user.viewer))
            .order_by(Visit.scheduled_at.desc()).limit(20))),
        "can_claim": customer.status == CustomerStatus.POOL,
        "can_release_one": customer.status == CustomerStatus.OWNED and (
            customer.owner_id == user.viewer.staff_id or user.viewer.role in nav.CUSTOMER_MANAGERS),
    }


def detail_page(request: Request, session: Session, user: ConsoleUser, customer_id: int, *,
                 error: AppError | None = None, revealed_phone: str | None = None,
                 notice: str | None = None, status_code: int = 200,
                 revealed_qualification: dict[str, str] | None = None,
                 revealed_field: tuple[str, str] | None = None,
                 posted_qualification: dict[str, str] | None = None) -> Response:
    customer = customers.get_customer(session, user.viewer, customer_id)
    events = customers.timeline(session, customer.id)
    history = customers.owner_history(session, customer.id)
    collaborators = list(session.execute(
        select(CustomerCollaborator, Staff).join(Staff, Staff.id == CustomerCollaborator.staff_id)
        .where(CustomerCollaborator.customer_id == customer.id).order_by(CustomerCollaborator.added_at)))
    extras = _extras(session, user, customer)
    custom_values = custom_fields.shown_values(session, customer)
    names = _names(session, {e.actor_staff_id for e in events} | {h.from_owner_id for h in history}
                   | {f.staff_id for f in extras["followups"] or []}
                   | {h.to_owner_id for h in history} | {h.by_staff_id for h in history}
                   | {customer.owner_id, customer.previous_owner_id})
    pools = dict(session.execute(select(Pool.id, Pool.name)).all())
    owner_dept = None
    if customer.owner is not None:
        owner_dept = session.scalar(select(Department.name).where(Department.id == customer.owner.department_id))
    return render(request, "customers/detail.html", {
        "c": customer, "events": events, "history": history, "collaborators": collaborators, "names": names,
        "pools": pools, "owner_dept": owner_dept, "error": error,
        "error_field": error.details.get("field") if error else None, "revealed_phone": revealed_phone,
        "grades": list(session.scalars(select(Grade).order_by(Grade.rank))), "stage_labels": STAGE_LABELS,
        "type_labels": CUSTOMER_TYPE_LABELS, "can_manage": user.viewer.role in nav.CUSTOMER_MANAGERS,
        "tags": _tags_of(session, customer.id), "amount_yuan": customers_amount_text(customer.demand_amount),
        "notice": notice or NOTICES.get(request.query_params.get("done", "")), **extras,
        "followup_kinds": _labels("FOLLOWUP_KIND_LABELS"), "visit_status": _labels("VISIT_STATUS_LABELS"),
        "lending": customer_summary.for_customer(session, customer.id), "lending_labels": LENDING_LABELS,
        "qualification": qualification.read(session, user.viewer, customer.id),
        "qualification_codes": qualification.CODE_FIELDS, "sealed_fields": qualification.SEALED_FIELDS,
        "qualification_fields": set(qualification.FIELD_LABELS), "custom_keys": {v["key"] for v in custom_values}, "revealed_qualification": revealed_qualification,
        "custom_values": custom_values, "revealed_field": revealed_field,
        "posted": posted_qualification,
        "error_fields": (error.details.get("errors") or {}) if error else {},
        "tag_groups": tags.list_groups(session), **visit_form.context(session, user.viewer, customer),
        "industry_choices": INDUSTRY_CHOICES, **product_matching.context(session, customer),
    }, status_code=status_code)


def customers_amount_text(fen: int | None) -> str:
    return "" if fen is None else str(money.fen_to_yuan(fen))


@router.get("/{customer_id}")
def customer_detail(request: Request, session: SessionDep, user: Reader, customer_id: int) -> Response:
    return detail_page(request, session, user, customer_id)


class ProfileForm(BaseModel):
    name: str = ""
    region: str = ""
    customer_type: str = "credit"
    demand_amount: str = ""
    demand_term_months: str = ""
    demand_purpose: str = ""
    source_detail: str = ""
    note: str = ""
    phone: str = ""
    id_number: str = ""

    def changes(self) -> dict[str, Any]:
        term = self.demand_term_months.strip()
        if term and not term.isdigit():
            raise ValidationFailed("贷款期限必须是整数（月）", field="demand_term_months")
        out: dict[str, Any] = {
            "name": self.name.strip(), "region": self.region.strip() or None,
            "customer_type": self.customer_type or "credit", "demand_amount": yuan_text_to_fen(self.demand_amount),
            "demand_term_months": int(term) if term else None, "demand_purpose": self.demand_purpose.strip() or None,
            "source_detail": self.source_detail.strip() or None, "note": self.note.strip() or None,
        }
        if self.phone.strip():
            out["phone"] = self.phone.strip()
        if self.id_number.strip():
            out["id_number"] = self.id_number.strip()
        return out


def _then(request: Request, session: Session, user: ConsoleUser, customer_id: int, error: AppError | None,
          done: str) -> Response:
    if error:
        return detail_page(request, session, user, customer_id, error=error, status_code=error.status)
    return RedirectResponse(f"/console/customers/{customer_id}?done={done}", status_code=303)


@router.post("/{customer_id}/tags", dependencies=[CsrfChecked])
async def set_tags(request: Request, session: SessionDep, user: Reader, customer_id: int) -> Response:
    """The 360's tag editor: the ticked tags become the customer's tags (added and taken off through crm.tags,
    so WeCom follows and the audit log records who changed what)."""
    form = await request.form()
    wanted = {t for t in (parse_int(str(v)) for v in form.getlist("tag_ids")) if t is not None}

    def run() -> None:
        customers.get_customer(session, user.viewer, customer_id)  # in the viewer's scope, or 404
        have = {t.id for t in tags.tags_of(session, customer_id)}
        if wanted - have:
            tags.tag_customer(session, user.viewer, customer_id, sorted(wanted - have))
        if have - wanted:
            tags.untag_customer(session, user.viewer, customer_id, sorted(have - wanted))

    _, error = attempt(session, run)
    return _then(request, session, user, customer_id, error, "tags")


@router.post("/{customer_id}/profile", dependencies=[CsrfChecked])
def update_profile(request: Request, session: SessionDep, user: Reader, customer_id: int,
                   form: Annotated[ProfileForm, Form()]) -> Response:
    customers.get_customer(session, user.viewer, customer_id)
    _, error = attempt(session, lambda: customers.update_profile(session, user.viewer, customer_id, form.changes()))
    return _then(request, session, user, customer_id, error, "profile")


@router.post("/{customer_id}/grade", dependencies=[CsrfChecked])
def set_grade(request: Request, session: SessionDep, user: Reader, customer_id: int,
              grade: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: customers.set_grade(session, user.viewer, customer_id, grade or None))
    return _then(request, session, user, customer_id, error, "grade")


@router.post("/{customer_id}/stage", dependencies=[CsrfChecked])
def set_stage(request: Request, session: SessionDep, user: Reader, customer_id: int,
              stage: Annotated[str, Form()] = "") -> Response:
    _, error = attempt(session, lambda: customers.set_stage(session, customer_id, stage, viewer=user.viewer))
    return _then(request, session, user, customer_id, error, "stage")


@router.post("/{customer_id}/blacklist", dependencies=[CsrfChecked])
def blacklist(request: Request, session: SessionDep, user: Manager, customer_id: int,
              reason: Annotated[str, Form()] = "") -> Response:
    done, error = attempt(session, lambda: customers.blacklist(session, user.viewer, customer_id, reason))
    if done is not None and not customers.can_view(session, user.viewer, done):
        # Out of every owner's hands: only all-scope staff still see it.
        return RedirectResponse("/console/customers?done=blacklisted", status_code=303)
    return _then(request, session, user, customer_id, error, "blacklisted")


@router.post("/{customer_id}/unblacklist", dependencies=[CsrfChecked])
def unblacklist(request: Request, session: SessionDep, user: Manager, customer_id: int) -> Response:
    _, error = attempt(session, lambda: customers.unblacklist(session, user.viewer, customer_id))
    return _then(request, session, user, customer_id, error, "unblacklisted")


@router.post("/{customer_id}/reveal-phone", dependencies=[CsrfChecked])
def reveal_phone(request: Request, session: SessionDep, user: Reader, customer_id: int,
                 reason: Annotated[str, Form()] = "") -> Response:
    """Show the full number once, on this response only (not cached); the reveal is audit-logged."""
    phone, error = attempt(session, lambda: customers.reveal_phone(session, user.viewer, customer_id,
                                                                   reason.strip() or "控制台查看"))
    return detail_page(request, session, user, customer_id, error=error, revealed_phone=phone,
                        status_code=error.status if error else 200)


@router.post("/{customer_id}/claim", dependencies=[CsrfChecked])
def claim(request: Request, session: SessionDep, user: Reader, customer_id: int) -> Response:
    """Take the customer from its pool (crm.pool_service decides: caps, cooldown, who was first)."""
    customers.get_customer(session, user.viewer, customer_id)
    _, error = attempt(session, lambda: pool_service.claim(session, user.viewer, customer_id))
    return _then(request, session, user, customer_id, error, "claimed")


@router.post("/{customer_id}/release", dependencies=[CsrfChecked])
def release(request: Request, session: SessionDep, user: Reader, customer_id: int,
            reason: Annotated[str, Form()] = "") -> Response:
    done, error = attempt(session, lambda: pool_service.release(session, user.viewer, customer_id, reason))
    if done is not None and not customers.can_view(session, user.viewer, done):
        return RedirectResponse("/console/customers?done=released", status_code=303)
    return _then(request, session, user, customer_id, error, "released")
