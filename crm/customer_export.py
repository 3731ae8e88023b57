"""The customer list's columns in a spreadsheet (客户导出): personal data masked, the qualification profile's
plain facts (never its sealed figures) and every active custom field (a sensitive one masked). The rows are the
list's own SELECT (the viewer's scope and the list's filters), written by ``analytics.export_jobs`` through
``core.exports`` in batches (no formula ever reaches a cell)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session, aliased

from core import clock, money
from crm import custom_fields, sources
from crm.models import (
    CAR_LABELS,
    CREDIT_LEVEL_LABELS,
    CUSTOMER_TYPE_LABELS,
    EMPLOYMENT_LABELS,
    INCOME_BAND_LABELS,
    PROPERTY_LABELS,
    STAGE_LABELS,
    STATUS_LABELS,
    Customer,
    CustomerQualification,
    Staff,
)

__all__ = ["cells", "export_select", "header"]

BASE_HEADER = ["客户编号", "姓名", "手机（掩码）", "客户类型", "阶段", "状态", "等级", "地区", "来源", "需求金额（元）",
               "需求期限（月）", "归属", "录入时间"]
QUALIFICATION_HEADER = ["职业身份", "所属行业", "月收入档", "社保月数", "公积金月数", "房产", "车辆", "征信情况"]


def header(session: Session) -> list[str]:
    return BASE_HEADER + QUALIFICATION_HEADER + [f.label for f in custom_fields.definitions(session)]


def _qualification(q: CustomerQualification | None) -> list[Any]:
    if q is None:
        return [""] * len(QUALIFICATION_HEADER)
    return [EMPLOYMENT_LABELS.get(q.employment_type or "", ""), q.industry or "",
            INCOME_BAND_LABELS.get(q.income_band or "", ""), q.social_insurance_months, q.provident_fund_months,
            PROPERTY_LABELS.get(q.property_status or "", ""), CAR_LABELS.get(q.car_status or "", ""),
            CREDIT_LEVEL_LABELS.get(q.credit_level or "", "")]


def export_select(stmt: Select[tuple[Customer]]) -> Select[Any]:
    """The list's SELECT (already scoped and filtered) with what a row of the export shows beside the customer
    (joined as aliases: a filter's EXISTS on the qualification table must not correlate to this join)."""
    owner, q = aliased(Staff), aliased(CustomerQualification)
    return (stmt.add_columns(owner.display_name, q)
            .outerjoin(owner, owner.id == Customer.owner_id)
            .outerjoin(q, q.customer_id == Customer.id))


def cells(session: Session, found: Sequence[Any]) -> Iterator[list[Any]]:
    """The rows of one batch of :func:`export_select` (customer, owner's name, qualification, …), phone masked."""
    fields = custom_fields.definitions(session)
    values = custom_fields.values_for_customers(session, [row[0].id for row in found], fields)
    for c, owner, q, *_ in found:
        local = clock.ensure_aware(c.created_at).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
        yield [c.id, c.name, c.phone_masked or "", CUSTOMER_TYPE_LABELS.get(c.customer_type, c.customer_type),
               STAGE_LABELS.get(c.stage, c.stage), STATUS_LABELS.get(c.status, c.status), c.grade or "",
               c.region or "", sources.label(c.source),
               money.fen_to_yuan(c.demand_amount) if c.demand_amount is not None else None,
               c.demand_term_months, owner or "", local,
               *_qualification(q), *(values.get(c.id, {}).get(f.key, "") for f in fields)]
