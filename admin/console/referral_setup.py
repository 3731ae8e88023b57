"""推荐佣金 console, setup side: referrers, attributions, commission rules and the referral settings.
Managers, finance and admins; referral.* decides, these routes parse forms and render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from core.errors import ValidationFailed
from core.money import format_yuan, yuan_to_fen
from core.web import SessionDep
from lending.models import FUNDER_TYPE_LABELS
from referral import attribution, ledger, referrers, rules
from referral.models import REFERRER_KIND_LABELS, ReferrerKind

router = APIRouter(prefix="/console/referral", include_in_schema=False)

REFERRAL_ROLES = nav.REFERRAL_STAFF
RULE_EDITORS = nav.REFERRAL_RULE_EDITORS
Reader = Annotated[ConsoleUser, Depends(require_roles(REFERRAL_ROLES))]
Editor = Annotated[ConsoleUser, Depends(require_roles(RULE_EDITORS))]
Text = Annotated[str, Form()]

TABS = [("referrers", "推荐人", "/console/referral"), ("attributions", "推荐归属", "/console/referral/attributions"),
        ("rules", "佣金规则", "/console/referral/rules"), ("withdrawals", "提现审批", "/console/referral/withdrawals"),
        ("batches", "发放批次", "/console/referral/batches"), ("reports", "报表", "/console/referral/reports")]
NOTICES = {"referrer": "推荐人已保存", "attribution": "推荐归属已保存", "rule": "佣金规则已保存", "config": "设置已保存",
           "status": "状态已更新", "reversed": "已冲回", "approved": "已批准", "rejected": "已驳回",
           "batch": "发放批次已创建", "paid": "已标记为已发放"}


def page(request: Request, user: ConsoleUser, template: str, tab: str, ctx: dict[str, Any], *,
         error: Any = None, status_code: int = 200) -> Response:
    base = {"tabs": TABS, "tab": tab, "yuan": format_yuan, "kind_labels": REFERRER_KIND_LABELS,
            "error": error, "notice": NOTICES.get(request.query_params.get("done", ""), None),
            "can_edit_rules": user.viewer.role in RULE_EDITORS}
    base.update(ctx)
    return render(request, template, base, status_code=status_code)


def fen_or_none(text: str | None, label: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    fen = yuan_to_fen(text)
    if fen < 0:
        raise ValidationFailed(f"{label}不能为负数")
    return fen


def _do(request: Request, session: SessionDep, user: ConsoleUser, action: Callable[[], object],
        redirect: str, again: Callable[[Any], Response]) -> Response:
    _, error = attempt(session, action)
    if error is not None:
        return again(error)
    return RedirectResponse(redirect, status_code=303)


# --- referrers ---------------------------------------------------------------------------------

def referrer_export_params(session: Session, user: ConsoleUser, form: dict[str, str]) -> dict[str, Any]:
    """导出 Excel of the referrer list with its commission balances (the referral roles): its filters."""
    require_roles(REFERRAL_ROLES)(user)
    return {k: v for k, v in (("kind", form.get("kind") if form.get("kind") in REFERRER_KIND_LABELS else None),
                              ("q", (form.get("q") or "").strip())) if v}


def _referrers_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
                    status_code: int = 200) -> Response:
    kind = request.query_params.get("kind") or None
    q = request.query_params.get("q") or None
    rows = referrers.list_referrers(session, kind=kind, q=q)
    export_params = referrer_export_params(session, user, dict(request.query_params))
    balances = ledger.balances(session, [r.id for r in rows]) if rows else {}
    parents = {r.id: r.name for r in referrers.list_referrers(session, limit=1000)}
    return page(request, user, "referral/referrers.html", "referrers", {
        "rows": rows, "balances": balances, "empty": ledger.Balance(), "kind": kind or "", "q": q or "",
        "parents": parents, "config": referrers.get_config(session), "export_params": export_params,
    }, error=error, status_code=status_code)


@router.get("")
def referrer_list(request: Request, session: SessionDep, user: Reader) -> Response:
    return _referrers_page(request, session, user)


@router.post("/referrers", dependencies=[CsrfChecked])
def create_referrer(request: Request, session: SessionDep, user: Editor, kind: Text = "agent", name: Text = "",
                    customer_id: Text = "", staff_id: Text = "", parent_code: Text = "", payee_name: Text = "",
                    payee_channel: Text = "", payee_bank: Text = "", payee_account: Text = "") -> Response:
    def action() -> object:
        parent_id = referrers.resolve(session, parent_code).id if parent_code.strip() else None
        return referrers.create_referrer(session, referrers.ReferrerInput(
            kind=kind, name=name, customer_id=parse_int(customer_id), staff_id=parse_int(staff_id),
            parent_id=parent_id, payee_name=payee_name, payee_channel=payee_channel or None, payee_bank=payee_bank,
            payee_account=payee_account or None))

    return _do(request, session, user, action, "/console/referral?done=referrer",
               lambda e: _referrers_page(request, session, user, error=e, status_code=e.status))


@router.post("/referrers/{referrer_id}/status", dependencies=[CsrfChecked])
def referrer_status(request: Request, session: SessionDep, user: Editor, referrer_id: int,
                    status: Text = "active") -> Response:
    return _do(request, session, user, lambda: referrers.set_status(session, referrer_id, status),
               f"/console/referral/referrers/{referrer_id}?done=status",
               lambda e: _referrers_page(request, session, user, error=e, status_code=e.status))


@router.post("/referrers/{referrer_id}/payee", dependencies=[CsrfChecked])
def referrer_payee(request: Request, session: SessionDep, user: Editor, referrer_id: int, payee_name: Text = "",
                   payee_channel: Text = "", payee_bank: Text = "", payee_account: Text = "") -> Response:
    def action() -> object:
        referrer = referrers.get_referrer(session, referrer_id, for_update=True)
        referrers.set_payee(referrer, name=payee_name, channel=payee_channel or None, bank=payee_bank,
                            account=payee_account or None)
        session.flush()
        from core import audit

        audit.record(session, "referral.referrer.payee", entity_type="referrer", entity_id=referrer_id,
                     after={"channel": referrer.payee_channel, "account": referrer.payee_account_masked})
        return referrer

    return _do(request, session, user, action, f"/console/referral/referrers/{referrer_id}?done=referrer",
               lambda e: _referrers_page(request, session, user, error=e, status_code=e.status))


@router.post("/config", dependencies=[CsrfChecked])
def save_config(request: Request, session: SessionDep, user: Editor, lock_days: Text = "", max_levels: Text = "",
                default_clawback_days: Text = "", payout_tax_rate: Text = "", payout_fee: Text = "") -> Response:
    def action() -> object:
        return referrers.update_config(
            session, lock_days=parse_int(lock_days), max_levels=parse_int(max_levels),
            default_clawback_days=parse_int(default_clawback_days),
            payout_tax_rate=payout_tax_rate.strip() or None,
            payout_fee_amount=fen_or_none(payout_fee, "手续费"))

    return _do(request, session, user, action, "/console/referral?done=config",
               lambda e: _referrers_page(request, session, user, error=e, status_code=e.status))


# --- attributions ------------------------------------------------------------------------------

def _attributions_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
                       status_code: int = 200) -> Response:
    return page(request, user, "referral/attributions.html", "attributions", {
        "rows": attribution.list_attributions(session, user.viewer),
        "source_labels": attribution.SOURCE_LABELS,
        "can_reassign": user.viewer.role in attribution.ATTRIBUTION_MANAGERS,
    }, error=error, status_code=status_code)


@router.get("/attributions")
def attribution_list(request: Request, session: SessionDep, user: Reader) -> Response:
    return _attributions_page(request, session, user)


@router.post("/attributions", dependencies=[CsrfChecked])
def manual_attribution(request: Request, session: SessionDep, user: Editor, customer_id: Text = "",
                       referrer_code: Text = "", reason: Text = "") -> Response:
    def action() -> object:
        cid = parse_int(customer_id)
        if cid is None:
            raise ValidationFailed("请填写客户编号")
        from crm.customers import get_customer

        get_customer(session, user.viewer, cid)  # data scope: only customers the manager may see
        referrer = referrers.resolve(session, referrer_code)
        return attribution.reassign(session, cid, referrer.id, viewer=user.viewer, reason=reason or None)

    return _do(request, session, user, action, "/console/referral/attributions?done=attribution",
               lambda e: _attributions_page(request, session, user, error=e, status_code=e.status))


# --- rules -------------------------------------------------------------------------------------

def _terms_from_form(form: dict[str, str]) -> rules.RuleTerms:
    return rules.RuleTerms(
        basis=form.get("basis", ""), bounty_event=form.get("bounty_event") or None,
        product_id=parse_int(form.get("product_id")), funder_type=form.get("funder_type") or None,
        referrer_kind=form.get("referrer_kind") or None, staff_level=parse_int(form.get("staff_level")),
        level1_rate=form.get("level1_rate") or "0", level2_rate=form.get("level2_rate") or "0",
        level1_bounty_amount=fen_or_none(form.get("level1_bounty"), "一级奖励") or 0,
        level2_bounty_amount=fen_or_none(form.get("level2_bounty"), "二级奖励") or 0,
        tiers=rules.tiers_from_text(form.get("tiers", "")),
        per_loan_cap_amount=fen_or_none(form.get("per_loan_cap"), "单笔封顶"),
        monthly_cap_amount=fen_or_none(form.get("monthly_cap"), "月度封顶"),
        clawback_days=parse_int(form.get("clawback_days"), default=30) or 0, note=form.get("note") or None)


def _rules_page(request: Request, session: SessionDep, user: ConsoleUser, *, error: Any = None,
                form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return page(request, user, "referral/rules.html", "rules", {
        "rows": rules.list_rules(session), "basis_labels": rules.BASIS_LABELS, "event_labels": rules.EVENT_LABELS,
        "beneficiary_labels": rules.BENEFICIARY_LABELS, "funder_types": FUNDER_TYPE_LABELS,
        "tiers_text": rules.tiers_as_text, "form": form or {},
    }, error=error, status_code=status_code)


@router.get("/rules")
def rule_list(request: Request, session: SessionDep, user: Reader) -> Response:
    return _rules_page(request, session, user)


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


@router.post("/rules", dependencies=[CsrfChecked])
async def create_rule(request: Request, session: SessionDep, user: Editor) -> Response:
    form = await _form(request)
    from fastapi.concurrency import run_in_threadpool

    def run() -> Response:
        return _do(request, session, user,
                   lambda: rules.create_rule(session, form.get("name", ""), form.get("beneficiary_kind", "referrer"),
                                             _terms_from_form(form), staff_id=user.viewer.staff_id),
                   "/console/referral/rules?done=rule",
                   lambda e: _rules_page(request, session, user, error=e, form=form, status_code=e.status))

    return await run_in_threadpool(run)


@router.post("/rules/{rule_id}/version", dependencies=[CsrfChecked])
async def new_rule_version(request: Request, session: SessionDep, user: Editor, rule_id: int) -> Response:
    form = await _form(request)
    from fastapi.concurrency import run_in_threadpool

    def run() -> Response:
        return _do(request, session, user,
                   lambda: rules.new_version(session, rule_id, _terms_from_form(form), staff_id=user.viewer.staff_id),
                   "/console/referral/rules?done=rule",
                   lambda e: _rules_page(request, session, user, error=e, status_code=e.status))

    return await run_in_threadpool(run)


@router.post("/rules/{rule_id}/active", dependencies=[CsrfChecked])
def rule_active(request: Request, session: SessionDep, user: Editor, rule_id: int, active: Text = "1") -> Response:
    return _do(request, session, user, lambda: rules.set_active(session, rule_id, active == "1"),
               "/console/referral/rules?done=status",
               lambda e: _rules_page(request, session, user, error=e, status_code=e.status))


KIND_CHOICES = [(k.value, REFERRER_KIND_LABELS[k.value]) for k in ReferrerKind]
