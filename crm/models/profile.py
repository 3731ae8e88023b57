"""The customer's qualification profile (资质) and the manager-defined custom fields (自定义字段).

Qualification: coarse, non-identifying facts live in plain columns (employment type, industry, the
income band, 社保 / 公积金 months, property and car holding, credit level) so that lists, filters,
segments and product matching can use them in SQL; the exact personal figures (income, employer,
contribution bases, asset values, debts, credit report details) are sealed together as one
AES-GCM token (``core.pii``, kind ``qualification``), shown masked, and revealed to a person only
through ``core.audit.reveal``.

Custom fields: a definition (type text / number / date / choice, options, required-ness, the
customer types it applies to, sensitive or not) and one value row per customer and field, in the
column of its type; a sensitive text value is sealed like the qualification.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core import pii_rotation
from core.db import Base

__all__ = [
    "CAR_LABELS", "CREDIT_LEVEL_LABELS", "CustomField", "CustomFieldValue", "CustomerQualification",
    "CREDIT_LEVEL_ORDER", "EMPLOYMENT_LABELS", "FIELD_TYPE_LABELS", "INCOME_BAND_LABELS", "INDUSTRY_CHOICES",
    "PROPERTY_LABELS",
]

EMPLOYMENT_LABELS = {"employee": "企业员工", "civil_servant": "公务员/事业单位", "self_employed": "个体户",
                     "business_owner": "企业主", "freelancer": "自由职业", "retired": "退休", "unemployed": "无业"}
PROPERTY_LABELS = {"none": "无房", "full": "全款房", "mortgage": "按揭房"}
CAR_LABELS = {"none": "无车", "full": "全款车", "loan": "按揭车"}
CREDIT_LEVEL_LABELS = {"good": "良好", "blank": "白户", "minor": "有轻微逾期", "current": "当前逾期",
                       "serious": "严重逾期（连三累六）"}
# best first: a product that accepts "minor" accepts good, blank and minor
CREDIT_LEVEL_ORDER = ("good", "blank", "minor", "current", "serious")
# the industries products admit or exclude (所属行业 stays free text; a name here matches a customer's
# industry that starts with it: "建筑" matches "建筑装修")
INDUSTRY_CHOICES = ("制造业", "互联网", "批发零售", "教育", "建筑", "金融", "房地产", "餐饮住宿", "交通运输",
                    "医疗卫生", "机关事业单位", "农林牧渔", "娱乐休闲", "矿产能源", "其他")
# monthly income band: code -> (label, lower bound in fen, inclusive)
INCOME_BAND_LABELS = {"lt3k": "3千以下", "3k_5k": "3千–5千", "5k_10k": "5千–1万", "10k_20k": "1万–2万",
                      "20k_50k": "2万–5万", "gte50k": "5万以上"}
FIELD_TYPE_LABELS = {"text": "文本", "number": "数字", "date": "日期", "choice": "单选"}


class CustomerQualification(Base):
    """One row per customer, written the first time someone records a qualification."""

    __tablename__ = "customer_qualification"
    __table_args__ = (
        CheckConstraint("social_insurance_months IS NULL OR social_insurance_months BETWEEN 0 AND 600",
                        name="social_insurance_months_range"),
        CheckConstraint("provident_fund_months IS NULL OR provident_fund_months BETWEEN 0 AND 600",
                        name="provident_fund_months_range"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    employment_type: Mapped[str | None] = mapped_column(String(16))
    industry: Mapped[str | None] = mapped_column(String(40))
    income_band: Mapped[str | None] = mapped_column(String(8))
    social_insurance_months: Mapped[int | None]  # 社保 months paid
    provident_fund_months: Mapped[int | None]  # 公积金 months paid
    property_status: Mapped[str | None] = mapped_column(String(8))
    car_status: Mapped[str | None] = mapped_column(String(8))
    has_debt: Mapped[bool | None]
    credit_level: Mapped[str | None] = mapped_column(String(8))
    # income_monthly_amount, employer, *_base_amount, *_value_amount, debt_*, credit_* as sealed JSON
    sealed: Mapped[str | None] = mapped_column(String(4000))
    updated_at: Mapped[datetime]
    updated_by_staff_id: Mapped[int | None]  # staff.id


pii_rotation.register(CustomerQualification.sealed, "qualification")


class CustomField(Base):
    """A field a manager added to the customer record."""

    __tablename__ = "crm_custom_field"
    __table_args__ = (
        CheckConstraint("field_type IN ('text', 'number', 'date', 'choice')", name="field_type_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # stable ascii name (exports, API, segments)
    label: Mapped[str] = mapped_column(String(30), unique=True)
    field_type: Mapped[str] = mapped_column(String(8))
    options: Mapped[list[str]] = mapped_column(JSON, default=list)  # choice only
    required: Mapped[bool] = mapped_column(default=False)
    customer_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every type
    sensitive: Mapped[bool] = mapped_column(default=False)  # text only: sealed, masked, reveal logged
    show_in_list: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CustomFieldValue(Base):
    """One customer's value of one field, in the column of the field's type."""

    __tablename__ = "customer_field_value"
    __table_args__ = (
        Index("ix_customer_field_value_field_text", "field_id", "text_value"),
        Index("ix_customer_field_value_field_number", "field_id", "number_value"),
        Index("ix_customer_field_value_field_date", "field_id", "date_value"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("crm_custom_field.id", ondelete="CASCADE"), primary_key=True)
    text_value: Mapped[str | None] = mapped_column(String(200))  # text, choice; the masked form when sensitive
    number_value: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))
    date_value: Mapped[date | None]
    sealed_value: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[datetime]
    updated_by_staff_id: Mapped[int | None]  # staff.id

    def display(self) -> Any:
        return self.number_value if self.number_value is not None else self.date_value or self.text_value


pii_rotation.register(CustomFieldValue.sealed_value, "custom_field")
