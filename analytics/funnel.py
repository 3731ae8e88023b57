"""The lead funnel (转化漏斗) from the events the product records: a customer has reached a step when the step's
event exists for it (a follow-up, an arrived visit, an application, an approval, a loan), whatever its current
stage says now (a lost customer who was visited still counts as visited)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists
from sqlalchemy.orm import Session

from core.errors import ValidationFailed
from crm import segment_profile
from crm.models import Customer, FollowUp, Visit, VisitStatus
from lending.models import Application, ApplicationTransition, Loan

__all__ = ["STEPS", "STEP_LABELS", "customer_list_clauses", "step_clause"]

STEP_LABELS = {"lead": "新线索", "contacted": "已联系", "visited": "已上门", "applied": "已进件", "approved": "已审批",
               "disbursed": "已放款"}
STEPS = tuple(STEP_LABELS)


def customer_list_clauses(session: Session, params: dict[str, str]) -> tuple[ColumnElement[bool], ...]:
    """The customer list's clauses above crm (its page and its export): a funnel step (``funnel``, the dashboard's
    drill-down) and one qualification / custom-field filter (``cf_field``, ``cf_cmp``, ``cf_value``)."""
    out: list[ColumnElement[bool]] = []
    step = params.get("funnel") or ""
    if step:
        if step not in STEP_LABELS:
            raise ValidationFailed(f"未知的漏斗环节：{step}", field="funnel")
        out.append(step_clause(step))
    profile = segment_profile.list_clause(session, params.get("cf_field") or "", params.get("cf_cmp") or "equals",
                                          params.get("cf_value") or "")
    return (*out, *(() if profile is None else (profile,)))


def step_clause(step: str) -> ColumnElement[bool]:
    """Customers (the ``customer`` table in the FROM) that reached ``step``."""
    if step == "lead":
        return Customer.id.is_not(None)
    if step == "contacted":
        return exists().where(FollowUp.customer_id == Customer.id)
    if step == "visited":
        return exists().where(Visit.customer_id == Customer.id, Visit.status == VisitStatus.ARRIVED)
    if step == "applied":
        return exists().where(Application.customer_id == Customer.id)
    if step == "approved":
        # an approval is the transition into the signing node's status: approved (then signed, disbursed)
        # correlated on both sides: per customer, its applications (by customer id) and their transitions (by
        # application id), both through an index — an uncorrelated IN over every approving transition would be
        # hashed whole, on every query, however few the customers asked about
        return exists().where(Application.customer_id == Customer.id,
                              ApplicationTransition.application_id == Application.id,
                              ApplicationTransition.to_status.in_(("approved", "signed", "disbursed")))
    if step == "disbursed":
        return exists().where(Loan.customer_id == Customer.id)
    raise ValueError(f"unknown funnel step {step!r}")
