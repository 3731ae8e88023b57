"""Scripts (话术): templates per bucket and risk tier with ``{variables}``, shown beside the case.

The script of a case is the active one matching its bucket and tier most specifically (bucket and tier, then
bucket only, then tier only, then the general one; ties: the latest id). Variables: ``{name}`` (the customer's
family name with 先生/女士, never the full name), ``{amount_due}``, ``{outstanding}``, ``{days_overdue}``,
``{next_date}`` (the next unpaid bill's due date), ``{bucket}``. A template naming an unknown variable is
refused when saved, naming it."""

from __future__ import annotations

import re

from sqlalchemy import case as sql_case
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.money import format_yuan
from crm.models import Customer
from crm.scope import Viewer
from lending.models import BUCKETS, LoanInstallment
from postloan.actions import MANAGERS
from postloan.exceptions import ScriptInvalid
from postloan.models import RISK_TIERS, CollectionCase, CollectionScript

__all__ = ["VARIABLES", "pick", "render", "render_for", "save_script", "values_for"]

VARIABLES = {"name": "客户称呼", "amount_due": "逾期应还金额", "outstanding": "剩余未还合计", "days_overdue": "逾期天数",
             "next_date": "下一还款日", "bucket": "账期"}
_VAR = re.compile(r"\{(\w+)\}")


def save_script(session: Session, viewer: Viewer, *, name: str, body: str, bucket: str | None = None,
                risk_tier: str | None = None, script_id: int | None = None, active: bool = True) -> CollectionScript:
    if viewer.role not in MANAGERS:
        raise ScriptInvalid("只有经理或管理员可以维护话术")
    name, body = (name or "").strip()[:60], (body or "").strip()
    bucket, risk_tier = (bucket or "").strip() or None, (risk_tier or "").strip() or None
    if not name:
        raise ScriptInvalid("请填写话术名称", field="name")
    if not body:
        raise ScriptInvalid("请填写话术内容", field="body")
    if bucket is not None and bucket not in BUCKETS[1:]:
        raise ScriptInvalid(f"账期不正确：{bucket}", field="bucket")
    if risk_tier is not None and risk_tier not in RISK_TIERS:
        raise ScriptInvalid(f"风险等级不正确：{risk_tier}", field="risk_tier")
    unknown = sorted({v for v in _VAR.findall(body) if v not in VARIABLES})
    if unknown:
        raise ScriptInvalid(f"话术中有未知变量：{'、'.join('{' + v + '}' for v in unknown)}（可用："
                            f"{'、'.join('{' + v + '}' for v in VARIABLES)}）", field="body")
    script = session.get(CollectionScript, script_id) if script_id else CollectionScript()
    if script is None:
        raise ScriptInvalid("话术不存在", field="script_id")
    script.name, script.body, script.bucket, script.risk_tier, script.active = name, body, bucket, risk_tier, active
    script.updated_by_staff_id, script.updated_at = viewer.staff_id, clock.now()
    session.add(script)
    session.flush()
    audit.record(session, "collections.script.save", entity_type="postloan_script", entity_id=script.id,
                 after={"name": name, "bucket": bucket, "risk_tier": risk_tier})
    return script


def pick(session: Session, case: CollectionCase) -> CollectionScript | None:
    s = CollectionScript
    specificity = (sql_case((s.bucket.is_not(None), 2), else_=0) + sql_case((s.risk_tier.is_not(None), 1), else_=0))
    return session.scalar(select(s).where(s.active.is_(True), (s.bucket.is_(None)) | (s.bucket == case.bucket),
                                          (s.risk_tier.is_(None)) | (s.risk_tier == case.risk_tier))
                          .order_by(specificity.desc(), s.id.desc()).limit(1))


def values_for(session: Session, case: CollectionCase) -> dict[str, str]:
    customer = session.get(Customer, case.customer_id)
    name = (customer.name or "").strip() if customer else ""
    next_due = session.scalar(select(LoanInstallment.due_date).where(
        LoanInstallment.loan_id == case.loan_id, LoanInstallment.status != "paid",
        LoanInstallment.due_date >= clock.today()).order_by(LoanInstallment.due_date).limit(1))
    return {"name": f"{name[:1]}先生/女士" if name else "您", "amount_due": format_yuan(case.overdue_amount),
            "outstanding": format_yuan(case.outstanding_amount), "days_overdue": str(case.overdue_days),
            "next_date": next_due.isoformat() if next_due else "—", "bucket": case.bucket}


def render(body: str, values: dict[str, str]) -> str:
    return _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def render_for(session: Session, case: CollectionCase) -> tuple[CollectionScript | None, str | None]:
    script = pick(session, case)
    return (script, render(script.body, values_for(session, case))) if script else (None, None)
