"""The customer API's bodies. Amounts cross as yuan decimal strings ("120000.00"), never floats; personal
data only masked (the reveal endpoint is the one exception, and it is audit-logged)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core import money
from core.errors import ValidationFailed
from crm import customers
from crm.models import CUSTOMER_TYPE_LABELS, STAGE_LABELS, STATUS_LABELS, Customer, CustomerEvent, OwnerChange

AMOUNT_DESCRIPTION = "元，十进制字符串，最多两位小数，如 \"120000.00\"（不接受浮点数）"


def yuan_text_to_fen(raw: str | None, field: str = "demand_amount", label: str = "贷款金额") -> int | None:
    """A yuan amount typed by a person or sent by a program, as integer fen; empty means none. What the lead
    importer accepts ("120000", "120,000.5", "20万", "1,200,000元", full-width) through the one parser,
    :func:`core.money.parse_yuan_text`; refused with a Chinese message naming the field."""
    return money.parse_yuan_text(raw, label=label, field=field)


def fen_to_yuan_text(fen: int | None) -> str | None:
    return None if fen is None else str(money.fen_to_yuan(fen))


class CustomerCreate(BaseModel):
    """A lead entered through the API. At least one of phone, id_number, wecom/wechat ids."""

    name: str = Field("", max_length=64, examples=["张三"])
    phone: str | None = Field(None, description="大陆手机号；加密保存，仅返回掩码", examples=["13812345678"])
    id_number: str | None = Field(None, description="18 位身份证号（校验位按 GB 11643 校验）；加密保存")
    wecom_external_userid: str | None = Field(None, max_length=64)
    wechat_unionid: str | None = Field(None, max_length=64)
    wechat_openid: str | None = Field(None, max_length=64)
    source: str = Field("api", max_length=40, description="来源渠道，如 api、抖音、转介绍")
    source_detail: str | None = Field(None, max_length=120)
    region: str | None = Field(None, max_length=40, examples=["上海"])
    customer_type: str | None = Field(None, description="credit | mortgage | car | business | other")
    demand_amount: str | None = Field(None, description=AMOUNT_DESCRIPTION, examples=["200000.00"])
    demand_term_months: int | None = Field(None, ge=1, le=360)
    demand_purpose: str | None = Field(None, max_length=120)
    grade: str | None = Field(None, max_length=8, description="A | B | C | D（可配置）")
    note: str | None = Field(None, max_length=1000)
    to_pool: bool = Field(False, description="true：放入公海；false：归属调用者本人")

    def to_input(self) -> customers.CustomerInput:
        data = self.model_dump(exclude={"to_pool", "demand_amount"})
        return customers.CustomerInput(**data, demand_amount=yuan_text_to_fen(self.demand_amount))


class CustomerUpdate(BaseModel):
    """A partial profile edit: only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=64)
    region: str | None = Field(None, max_length=40)
    customer_type: str | None = None
    demand_amount: str | None = Field(None, description=AMOUNT_DESCRIPTION + "；空字符串清空")
    demand_term_months: int | None = Field(None, ge=1, le=360)
    demand_purpose: str | None = Field(None, max_length=120)
    note: str | None = Field(None, max_length=1000)
    source_detail: str | None = Field(None, max_length=120)
    phone: str | None = Field(None, description="新手机号（不能是其他客户的号码）")
    id_number: str | None = None

    def changes(self) -> dict[str, Any]:
        sent = self.model_dump(exclude_unset=True)
        if "demand_amount" in sent:
            sent["demand_amount"] = yuan_text_to_fen(sent["demand_amount"])
        for key in ("name", "customer_type"):  # not nullable: null means "leave as is"
            if key in sent and sent[key] is None:
                sent.pop(key)
        if "name" in sent:
            sent["name"] = sent["name"].strip()
        for key in ("phone", "id_number"):
            if key in sent and not sent[key]:
                sent.pop(key)
        if not sent:
            raise ValidationFailed("没有要修改的内容")
        return sent


class CustomerRead(BaseModel):
    id: int
    name: str
    phone_masked: str | None = Field(description="如 138****5678；完整号码只能经 reveal-phone 查看（留痕）")
    id_number_masked: str | None
    has_wecom: bool
    source: str
    source_detail: str | None
    region: str | None
    customer_type: str
    customer_type_label: str
    demand_amount: str | None = Field(description=AMOUNT_DESCRIPTION)
    demand_term_months: int | None
    demand_purpose: str | None
    grade: str | None
    stage: str
    stage_label: str
    status: str
    status_label: str
    blacklist_reason: str | None
    owner_id: int | None
    owner_name: str | None
    pool_id: int | None
    note: str | None
    last_followup_at: datetime | None
    next_followup_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Customer) -> CustomerRead:
        return cls(
            id=c.id, name=c.name, phone_masked=c.phone_masked, id_number_masked=c.id_number_masked,
            has_wecom=bool(c.wecom_external_userid), source=c.source, source_detail=c.source_detail,
            region=c.region, customer_type=c.customer_type,
            customer_type_label=CUSTOMER_TYPE_LABELS.get(c.customer_type, c.customer_type),
            demand_amount=fen_to_yuan_text(c.demand_amount), demand_term_months=c.demand_term_months,
            demand_purpose=c.demand_purpose, grade=c.grade, stage=c.stage,
            stage_label=STAGE_LABELS.get(c.stage, c.stage), status=c.status,
            status_label=STATUS_LABELS.get(c.status, c.status), blacklist_reason=c.blacklist_reason,
            owner_id=c.owner_id, owner_name=c.owner.display_name if c.owner else None, pool_id=c.pool_id,
            note=c.note, last_followup_at=c.last_followup_at, next_followup_at=c.next_followup_at,
            created_at=c.created_at, updated_at=c.updated_at,
        )


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    total: int
    page: int
    page_size: int


class IntakeRead(BaseModel):
    outcome: str = Field(description="created（新建）| merged（并入已有客户）| collision（撞单：已由他人跟进）")
    message: str
    customer_id: int | None = Field(description="调用者可见时返回；撞单于数据范围之外的客户时为 null")
    customer: CustomerRead | None = Field(None, description="调用者可见时返回；撞单时不返回他人客户的资料")
    owner_name: str | None = Field(None, description="调用者可见时返回；范围之外的撞单不透露跟进人")


class GradeSet(BaseModel):
    grade: str | None = Field(description="等级代码，null 清除")


class StageSet(BaseModel):
    stage: str = Field(description="new | contacted | intent | visited | applied | approved | signed | "
                                   "disbursed | repaying | closed | lost")


class BlacklistSet(BaseModel):
    blacklisted: bool = Field(True, description="true 拉黑，false 移出黑名单（回到公海）")
    reason: str | None = Field(None, max_length=200, description="拉黑原因（拉黑时必填）")


class RevealRequest(BaseModel):
    reason: str | None = Field(None, max_length=200, description="查看原因，记入审计日志")


class RevealRead(BaseModel):
    customer_id: int
    phone: str = Field(description="完整手机号；本次查看已记入审计日志")


class EventRead(BaseModel):
    id: int
    at: datetime
    kind: str
    summary: str
    actor_staff_id: int | None
    ref_type: str | None
    ref_id: str | None

    @classmethod
    def of(cls, e: CustomerEvent) -> EventRead:
        return cls(id=e.id, at=e.at, kind=e.kind, summary=e.summary, actor_staff_id=e.actor_staff_id,
                   ref_type=e.ref_type, ref_id=e.ref_id)


class OwnerChangeRead(BaseModel):
    at: datetime
    from_owner_id: int | None
    to_owner_id: int | None
    from_pool_id: int | None
    to_pool_id: int | None
    reason: str
    note: str | None

    @classmethod
    def of(cls, o: OwnerChange) -> OwnerChangeRead:
        return cls(at=o.at, from_owner_id=o.from_owner_id, to_owner_id=o.to_owner_id, from_pool_id=o.from_pool_id,
                   to_pool_id=o.to_pool_id, reason=o.reason, note=o.note)
