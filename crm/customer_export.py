"""The customer list as a spreadsheet (客户导出): the viewer's scope and the list's filters, personal data
masked, the qualification profile's plain facts (never its sealed figures) and every active custom
field (a sensitive one masked). Written by ``core.exports`` (no formula ever reaches a cell)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core import audit, clock, exports, money
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
from crm.scope import Viewer

__all__ = ["MAX_ROWS", "export_xlsx", "header", "rows"]

MAX_ROWS = 50_000
BATCH = 500
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


def rows(session: Session, stmt: Select[tuple[Customer]]) -> Iterator[list[Any]]:
    """One row per customer of ``stmt`` (already scoped and filtered), in id order, at most MAX_ROWS."""
    fields = custom_fields.definitions(session)
    ids = list(session.scalars(stmt.with_only_columns(Customer.id).order_by(Customer.id).limit(MAX_ROWS)))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        found = session.execute(
            select(Customer, Staff.display_name, CustomerQualification)
            .outerjoin(Staff, Staff.id == Customer.owner_id)
            .outerjoin(CustomerQualification, CustomerQualification.customer_id == Customer.id)
            .where(Customer.id.in_(chunk)).order_by(Customer.id)).all()
        values = custom_fields.values_for_customers(session, chunk, fields)
        for c, owner, q in found:
            local = clock.ensure_aware(c.created_at).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
            yield [c.id, c.name, c.phone_masked or "", CUSTOMER_TYPE_LABELS.get(c.customer_type, c.customer_type),
                   STAGE_LABELS.get(c.stage, c.stage), STATUS_LABELS.get(c.status, c.status), c.grade or "",
                   c.region or "", sources.label(c.source),
                   money.fen_to_yuan(c.demand_amount) if c.demand_amount is not None else None,
                   c.demand_term_months, owner or "", local,
                   *_qualification(q), *(values.get(c.id, {}).get(f.key, "") for f in fields)]


def export_xlsx(session: Session, viewer: Viewer, stmt: Select[tuple[Customer]], filters: dict[str, str]) -> bytes:
    """The workbook; the export itself is audit-logged with its filters."""
    data = exports.xlsx_bytes("客户", header(session), rows(session, stmt))
    audit.record(session, "customer.export", entity_type="customer", entity_id=None,
                 after={"filters": {k: v for k, v in filters.items() if v}})
    return data
