"""The lead funnel (转化漏斗): lead → contacted → visited → applied → approved → signed → disbursed.

A customer has reached a step when the step's event exists for it (a follow-up, an arrived visit, an application,
an approval, a signing, a loan), whatever its current stage says now (a lost customer who was visited still counts
as visited). The first time of each step is kept per customer in ``analytics_customer_funnel`` (by database
triggers on the event tables, ``core.migrations.funnel_rollup``); the lead step is the customer's ``created_at``.

Two ways to count (``MODES``):
- cohort (按线索批次): the customers created in the period, and how many of them reached each step (ever);
- activity (按发生时间): for each step, the customers who reached it (for the first time) within the period.

The customer list's drill-down (``?funnel=step``, plus ``funnel_mode=activity&funnel_from=…&funnel_to=…`` for the
activity figures) reads the same rollup column as the count, so the list is exactly the customers counted.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists
from sqlalchemy.orm import Session

from analytics.models import CustomerFunnel
from core import clock
from core.errors import ValidationFailed
from crm import segment_profile
from crm.models import Customer

__all__ = ["MODES", "STEPS", "STEP_LABELS", "customer_list_clauses", "in_period", "reached_at", "step_clause"]

STEP_LABELS = {"lead": "新线索", "contacted": "已联系", "visited": "已上门", "applied": "已进件", "approved": "已审批",
               "signed": "已签约", "disbursed": "已放款"}
STEPS = tuple(STEP_LABELS)
MODES = {"cohort": "按线索批次", "activity": "按发生时间"}


def reached_at(step: str) -> Any:
    """The column holding when a customer reached ``step`` (NULL: not reached)."""
    if step == "lead":
        return Customer.created_at
    if step not in STEP_LABELS:
        raise ValueError(f"unknown funnel step {step!r}")
    return getattr(CustomerFunnel, f"{step}_at")


def in_period(column: Any, start: date, end: date) -> ColumnElement[bool]:
    """``column`` within the business days ``start`` … ``end`` (Asia/Shanghai, inclusive)."""
    return and_(column >= clock.start_of_business_day(start), column < clock.start_of_business_day(end + timedelta(days=1)))


def step_clause(step: str, period: tuple[date, date] | None = None) -> ColumnElement[bool]:
    """Customers (the ``customer`` table in the FROM) that reached ``step`` — within ``period`` when given (the
    activity funnel), ever otherwise (the cohort funnel, whose period is on the customer's creation)."""
    column = reached_at(step)
    reached = column.is_not(None) if period is None else in_period(column, *period)
    if step == "lead":
        return reached
    return exists().where(CustomerFunnel.customer_id == Customer.id, reached)


def _date(params: dict[str, str], key: str, label: str) -> date:
    try:
        return date.fromisoformat((params.get(key) or "").strip())
    except ValueError:
        raise ValidationFailed(f"{label}无效，请使用 YYYY-MM-DD 格式", field=key) from None


def customer_list_clauses(session: Session, params: dict[str, str]) -> tuple[ColumnElement[bool], ...]:
    """The customer list's clauses above crm (its page and its export): a funnel step (``funnel``, the dashboard's
    drill-down; with ``funnel_mode=activity``, reached within ``funnel_from`` … ``funnel_to``) and one
    qualification / custom-field filter (``cf_field``, ``cf_cmp``, ``cf_value``)."""
    out: list[ColumnElement[bool]] = []
    step = params.get("funnel") or ""
    mode = params.get("funnel_mode") or "cohort"
    if mode not in MODES:
        raise ValidationFailed(f"未知的漏斗统计方式：{mode}", field="funnel_mode")
    if step:
        if step not in STEP_LABELS:
            raise ValidationFailed(f"未知的漏斗环节：{step}", field="funnel")
        period = None
        if mode == "activity":
            period = (_date(params, "funnel_from", "漏斗开始日期"), _date(params, "funnel_to", "漏斗结束日期"))
            if period[0] > period[1]:
                raise ValidationFailed("漏斗开始日期不能晚于结束日期", field="funnel_from")
        out.append(step_clause(step, period))
    profile = segment_profile.list_clause(session, params.get("cf_field") or "", params.get("cf_cmp") or "equals",
                                          params.get("cf_value") or "")
    return (*out, *(() if profile is None else (profile,)))
