"""Risk re-rating after disbursement (贷后预警): early-warning rules on the risk rule engine's expression language
(``lending.risk.expressions``) over post-loan facts raise a case's tier and tell its collector.

Facts: ``overdue_days``, ``bucket`` (text: M1 …), ``overdue_amount`` and ``outstanding_amount`` (fen),
``broken_promises`` and ``kept_promises`` (of the case), the loan's repayment behaviour (``repaid_30d_amount``:
money received in the last 30 days, fen; ``days_since_repayment``: days since the last repayment that stands, or
since the loan started when there is none), ``external_overdue_count`` (the credit provider's overdue records at
the last check) and ``external_overdue_new`` (how many appeared since the check before).

When: every night over every open case (:func:`rerate_open`, the close of business's collections step), when a
promise is found broken (``history.ON_PROMISE_BROKEN``), and when the credit report is checked again
(:func:`check_credit`). A tier only goes up here, so a second run changes nothing (a manager sets it by hand,
up or down, with ``postloan.cases.set_tier``, audit-logged); each raise writes a note on
the case, an audit entry and a notification to the collector (console inbox, pushed to WeCom by the bot).
A rule that cannot be evaluated (a fact unknown) does not fire. A case opens at the tier of its application's
risk evaluation (:func:`initial_tier`: a warning hit (warn) → medium, else low).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core import audit, clock, pii
from crm import notify
from crm.models import Customer
from crm.scope import Viewer
from lending.models import Application, Loan, Repayment, RiskEvaluation
from lending.product_exceptions import InvalidRuleExpression
from lending.risk.credit import CreditFailed, CreditTimeout, Person, get_credit_provider
from lending.risk.expressions import BOOL, NUM, STR, EvaluationError, MissingFact, compile_expression, evaluate
from lending.servicing.state import standing_clause
from postloan import history
from postloan.actions import MANAGERS
from postloan.exceptions import RuleInvalid
from postloan.models import RISK_TIER_LABELS, RISK_TIERS, CollectionCase, CollectionPromise, WarningRule

__all__ = ["FACTS", "check_credit", "due_for_credit_check", "facts_of", "initial_tier", "on_promise_broken", "rerate",
           "rerate_open", "save_warning_rule"]

# the application's risk evaluation outcome -> the tier its case opens at
# (a warning rule hit; manual_review is not a risk signal: it is also what a product without rules or a failed
# credit query gets, and a person approved it)
TIER_OF_OUTCOME = {"warn": "medium"}
RERATE_CHUNK = 1000

FACTS: dict[str, tuple[str, str]] = {
    "overdue_days": (NUM, "逾期天数"),
    "bucket": (STR, "账期（M1、M2、M3、M3+）"),
    "overdue_amount": (NUM, "逾期金额（分）"),
    "outstanding_amount": (NUM, "未还合计（分）"),
    "broken_promises": (NUM, "违约的承诺次数"),
    "kept_promises": (NUM, "兑现的承诺次数"),
    "repaid_30d_amount": (NUM, "近 30 天还款金额（分）"),
    "days_since_repayment": (NUM, "距上次还款天数（从未还款：距起息日）"),
    "external_overdue_count": (NUM, "征信逾期记录数"),
    "external_overdue_new": (NUM, "新增征信逾期记录数"),
}


def save_warning_rule(session: Session, viewer: Viewer, *, name: str, expression: str, raise_to: str,
                      active: bool = True, rule_id: int | None = None) -> WarningRule:
    if viewer.role not in MANAGERS:
        raise RuleInvalid("只有经理或管理员可以配置预警规则")
    name = (name or "").strip()[:60]
    if not name:
        raise RuleInvalid("请填写预警规则名称", field="name")
    if raise_to not in ("medium", "high"):
        raise RuleInvalid("请选择上调到的风险等级：中风险或高风险", field="raise_to")
    try:
        compiled = compile_expression(expression, expect=BOOL, label="预警条件", facts=FACTS)
    except InvalidRuleExpression as exc:
        raise RuleInvalid(exc.message, field="expression") from None
    rule = session.get(WarningRule, rule_id) if rule_id else WarningRule()
    if rule is None:
        raise RuleInvalid("预警规则不存在", field="rule_id")
    rule.name, rule.expression, rule.raise_to, rule.active = name, compiled.source, raise_to, active
    rule.updated_by_staff_id, rule.updated_at = viewer.staff_id, clock.now()
    session.add(rule)
    session.flush()
    audit.record(session, "collections.warning_rule.save", entity_type="postloan_warning_rule", entity_id=rule.id,
                 after={"name": name, "expression": rule.expression, "raise_to": raise_to, "active": active})
    return rule


def initial_tier(session: Session, application_id: int) -> str:
    """The tier a new case opens at: from its application's risk evaluation outcome (low when there is none)."""
    outcome = session.scalar(select(RiskEvaluation.outcome).join(
        Application, Application.risk_evaluation_id == RiskEvaluation.id).where(Application.id == application_id))
    return TIER_OF_OUTCOME.get(outcome or "", "low")


def _facts(session: Session, batch: Sequence[CollectionCase], external_new: int = 0) -> dict[int, dict[str, Any]]:
    """The facts of each case of ``batch`` (a few grouped queries for the whole batch)."""
    ids = [c.id for c in batch]
    loan_ids = [c.loan_id for c in batch]
    counts: dict[tuple[int, str], int] = {(case_id, status): n for case_id, status, n in session.execute(
        select(CollectionPromise.case_id, CollectionPromise.status, func.count()).where(
            CollectionPromise.case_id.in_(ids)).group_by(CollectionPromise.case_id, CollectionPromise.status))}
    today = clock.today()
    since = today - timedelta(days=30)
    paid = {loan_id: (int(total or 0), int(recent or 0), last) for loan_id, total, recent, last in session.execute(
        select(Repayment.loan_id, func.sum(Repayment.amount),
               func.sum(sql_case((Repayment.repayment_date >= since, Repayment.amount), else_=0)),
               func.max(Repayment.repayment_date))
        .where(Repayment.loan_id.in_(loan_ids), standing_clause(("repayment",))).group_by(Repayment.loan_id))}
    starts: dict[int, date] = dict(session.execute(select(Loan.id, Loan.start_date).where(Loan.id.in_(loan_ids))).all())
    out = {}
    for case in batch:
        _, recent, last = paid.get(case.loan_id, (0, 0, None))
        since_day = last or starts.get(case.loan_id) or today
        out[case.id] = {
            "overdue_days": case.overdue_days, "bucket": case.bucket, "overdue_amount": case.overdue_amount,
            "outstanding_amount": case.outstanding_amount, "broken_promises": counts.get((case.id, "broken"), 0),
            "kept_promises": counts.get((case.id, "kept"), 0), "repaid_30d_amount": recent,
            "days_since_repayment": max(0, (today - since_day).days),
            "external_overdue_count": case.external_overdue_count, "external_overdue_new": external_new}
    return out


def facts_of(session: Session, case: CollectionCase, *, external_new: int = 0) -> dict[str, Any]:
    return _facts(session, [case], external_new)[case.id]


def _active_rules(session: Session) -> list[tuple[WarningRule, Any]]:
    compiled = []
    for rule in session.scalars(select(WarningRule).where(WarningRule.active.is_(True)).order_by(WarningRule.id)):
        try:
            compiled.append((rule, compile_expression(rule.expression, expect=BOOL, facts=FACTS)))
        except InvalidRuleExpression:
            continue
    return compiled


def rerate(session: Session, case: CollectionCase, *, external_new: int = 0, why: str = "",
           facts: dict[str, Any] | None = None, rules: list[tuple[WarningRule, Any]] | None = None) -> str | None:
    """Run the active warning rules; raise the tier to the highest a fired rule names. Returns the new tier, or
    None when it did not go up."""
    if case.status != "open":
        return None
    facts = facts if facts is not None else facts_of(session, case, external_new=external_new)
    fired: list[WarningRule] = []
    for rule, compiled in (rules if rules is not None else _active_rules(session)):
        try:
            if evaluate(compiled, facts):
                fired.append(rule)
        except (MissingFact, EvaluationError):
            continue
    if not fired:
        return None
    top = max(fired, key=lambda r: RISK_TIERS.index(r.raise_to))
    if RISK_TIERS.index(top.raise_to) <= RISK_TIERS.index(case.risk_tier):
        return None
    before, case.risk_tier = case.risk_tier, top.raise_to
    session.flush()
    loan = session.get(Loan, case.loan_id)
    assert loan is not None
    names = "、".join(r.name for r in fired)
    history.log(session, loan, "note", staff_id=None, case_id=case.id,
                note=f"风险等级上调为{RISK_TIER_LABELS[top.raise_to]}（预警：{names}{'；' + why if why else ''}）")
    audit.record(session, "collections.case.rerate", entity_type="postloan_case", entity_id=case.id,
                 before={"risk_tier": before}, after={"risk_tier": case.risk_tier, "rules": [r.id for r in fired]},
                 actor=audit.Actor.system("postloan.rerate"))
    if case.collector_staff_id:
        notify.notify(session, case.collector_staff_id, "collections_rerate",
                      f"催收案件 #{case.id} 风险上调为{RISK_TIER_LABELS[top.raise_to]}",
                      f"预警规则：{names}。{why}", customer_id=case.customer_id)
    return case.risk_tier


def rerate_open(session: Session, *, chunk: int = RERATE_CHUNK) -> int:
    """The nightly early warning: the active rules over every open case not already at the top tier, in chunks
    of ``chunk`` cases by id. Returns how many cases went up (0 on a second run the same day)."""
    rules = _active_rules(session)
    if not rules:
        return 0
    raised, after = 0, 0
    while True:
        batch = list(session.scalars(select(CollectionCase).where(
            CollectionCase.status == "open", CollectionCase.risk_tier != RISK_TIERS[-1], CollectionCase.id > after)
            .order_by(CollectionCase.id).limit(chunk)))
        if not batch:
            return raised
        facts = _facts(session, batch)
        for case in batch:
            if rerate(session, case, facts=facts[case.id], rules=rules, why="每日预警检查"):
                raised += 1
        after = batch[-1].id


def on_promise_broken(session: Session, promise: CollectionPromise) -> None:
    case = (session.get(CollectionCase, promise.case_id) if promise.case_id
            else history.open_case_of(session, promise.loan_id))
    if case is not None:
        rerate(session, case, why="承诺还款违约")


def due_for_credit_check(session: Session, *, every_days: int, limit: int) -> list[int]:
    """Open cases never checked, or last checked ``every_days`` ago or more, oldest check first."""
    if every_days <= 0:
        return []
    before = clock.now() - timedelta(days=every_days)
    c = CollectionCase
    return list(session.scalars(select(c.id).where(
        c.status == "open", or_(c.credit_checked_at.is_(None), c.credit_checked_at <= before))
        .order_by(c.credit_checked_at.is_not(None), c.credit_checked_at, c.id).limit(limit)))


def check_credit(session: Session, case_id: int) -> int | None:
    """Fetch the borrower's credit report again; a new external overdue re-rates the case. Returns the new
    records' count (None when the provider failed or the customer has no ID number)."""
    case = session.get(CollectionCase, case_id)
    customer = session.get(Customer, case.customer_id) if case else None
    if case is None or customer is None or not customer.id_number_enc:
        return None
    person = Person(customer.name or "", pii.open_sealed(pii.ID_NUMBER, customer.id_number_enc))
    try:
        report = get_credit_provider().fetch(person)
    except (CreditTimeout, CreditFailed):
        return None
    new = max(0, report.overdue_count - case.external_overdue_count) if case.external_overdue_count is not None else 0
    case.external_overdue_count = report.overdue_count
    case.credit_checked_at = clock.now()
    session.flush()
    if new:
        rerate(session, case, external_new=new, why=f"征信新增逾期 {new} 条")
    return new
