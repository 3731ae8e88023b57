"""A customer's qualification profile (资质) and custom fields (自定义字段) over the staff API, and the
managers' definitions of those fields. Personal figures cross masked; the reveal endpoints are the
exception, and each reveal is audit-logged. Bad input is a 422 with a Chinese message; nothing changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from admin.api.deps import ERROR_RESPONSES, ApiCaller, Caller, require_roles
from admin.schemas_customers import RevealRequest
from core.web import SessionDep
from crm import custom_fields, customers, qualification
from crm.models import CustomField

router = APIRouter(prefix="/api/v1", tags=["customer profile"], responses=ERROR_RESPONSES)
Definer = Annotated[ApiCaller, Depends(require_roles(custom_fields.DEFINERS))]

# Any JSON value: the type of each field is checked by crm with a Chinese message naming the field
# (a float amount, text where a number belongs …), not by pydantic's union errors.
Raw = Any
_AMOUNT = "元，十进制字符串（如 \"8000.00\"），不接受浮点数；空字符串或 null 清空"


class QualificationUpdate(BaseModel):
    """Only the fields sent change. Codes may also be sent as their Chinese labels."""

    model_config = ConfigDict(extra="forbid")
    employment_type: Raw = Field(None, description="employee | civil_servant | self_employed | business_owner | "
                                                   "freelancer | retired | unemployed")
    employer: Raw = Field(None, description="工作单位（加密保存）")
    industry: Raw = None
    income_monthly_amount: Raw = Field(None, description="月收入，" + _AMOUNT)
    social_insurance_months: Raw = Field(None, description="社保缴纳月数")
    social_insurance_base_amount: Raw = Field(None, description="社保缴费基数，" + _AMOUNT)
    provident_fund_months: Raw = Field(None, description="公积金缴纳月数")
    provident_fund_base_amount: Raw = Field(None, description="公积金缴存基数，" + _AMOUNT)
    property_status: Raw = Field(None, description="none | full | mortgage")
    property_value_amount: Raw = Field(None, description=_AMOUNT)
    car_status: Raw = Field(None, description="none | full | loan")
    car_value_amount: Raw = Field(None, description=_AMOUNT)
    debt_total_amount: Raw = Field(None, description=_AMOUNT)
    debt_monthly_amount: Raw = Field(None, description=_AMOUNT)
    credit_level: Raw = Field(None, description="good | blank | minor | current | serious")
    credit_overdue_count: Raw = None
    credit_queries_6m: Raw = None
    credit_note: Raw = None


class QualificationField(BaseModel):
    name: str
    label: str
    value: Any = Field(description="明文字段的取值；加密字段为 null")
    shown: str = Field(description="显示文字（加密字段为掩码）")
    masked: bool


class QualificationRead(BaseModel):
    customer_id: int
    filled: bool
    income_band: str | None
    fields: list[QualificationField]
    updated_at: datetime | None


class FieldsReveal(BaseModel):
    customer_id: int
    fields: dict[str, str] = Field(description="字段中文名 → 完整取值（本次查看记入审计日志）")


class CustomFieldWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: StrictStr | None = Field(None, description="字段代码（创建时必填，之后不可改）：小写字母、数字、下划线")
    label: StrictStr
    field_type: StrictStr | None = Field(None, description="text | number | date | choice（创建时必填，之后不可改）")
    options: list[StrictStr] = Field(default_factory=list, description="单选的选项")
    required: StrictBool = False
    customer_types: list[StrictStr] = Field(default_factory=list, description="适用的客户类型；空表示全部")
    sensitive: StrictBool = Field(False, description="仅文本：加密保存、掩码显示")
    show_in_list: StrictBool = False
    position: StrictInt | None = None
    active: StrictBool = True


class CustomFieldRead(BaseModel):
    id: int
    key: str
    label: str
    field_type: str
    options: list[str]
    required: bool
    customer_types: list[str]
    sensitive: bool
    show_in_list: bool
    position: int
    active: bool

    @classmethod
    def of(cls, f: CustomField) -> CustomFieldRead:
        return cls(id=f.id, key=f.key, label=f.label, field_type=f.field_type, options=f.options,
                   required=f.required, customer_types=f.customer_types, sensitive=f.sensitive,
                   show_in_list=f.show_in_list, position=f.position, active=f.active)


class FieldValue(BaseModel):
    key: str
    label: str
    field_type: str
    options: list[str]
    required: bool
    sensitive: bool
    value: str = Field(description="显示值：数字与日期为文本，敏感字段为掩码，空为 \"\"")


class FieldValuesRead(BaseModel):
    customer_id: int
    fields: list[FieldValue]


FieldValuesWrite = dict[str, Any]


def _qualification(session: SessionDep, caller: ApiCaller, customer_id: int) -> QualificationRead:
    data = qualification.read(session, caller.viewer, customer_id)
    return QualificationRead(customer_id=customer_id, **data)


@router.get("/customers/{customer_id}/qualification", response_model=QualificationRead,
            summary="客户资质（个人金额与单位为掩码）")
def read_qualification(session: SessionDep, caller: Caller, customer_id: int) -> QualificationRead:
    return _qualification(session, caller, customer_id)


@router.put("/customers/{customer_id}/qualification", response_model=QualificationRead,
            summary="修改客户资质（只改传入的字段；任一字段不正确则全部不改）")
def update_qualification(session: SessionDep, caller: Caller, customer_id: int,
                         body: QualificationUpdate) -> QualificationRead:
    qualification.update(session, caller.viewer, customer_id, body.model_dump(exclude_unset=True))
    return _qualification(session, caller, customer_id)


@router.post("/customers/{customer_id}/qualification/reveal", response_model=FieldsReveal,
             summary="查看完整资质（记入审计日志）")
def reveal_qualification(session: SessionDep, caller: Caller, customer_id: int, response: Response,
                         body: RevealRequest | None = None) -> FieldsReveal:
    fields = qualification.reveal(session, caller.viewer, customer_id, body.reason if body else None)
    response.headers["Cache-Control"] = "no-store"
    return FieldsReveal(customer_id=customer_id, fields=fields)


@router.get("/custom-fields", response_model=list[CustomFieldRead], summary="自定义字段定义")
def list_fields(session: SessionDep, caller: Caller, include_inactive: bool = False) -> list[CustomFieldRead]:
    return [CustomFieldRead.of(f) for f in custom_fields.definitions(session, include_inactive=include_inactive)]


@router.post("/custom-fields", response_model=CustomFieldRead, status_code=201,
             summary="新建自定义字段（系统管理员、经理）")
def create_field(session: SessionDep, caller: Definer, body: CustomFieldWrite) -> CustomFieldRead:
    return CustomFieldRead.of(custom_fields.create_field(session, caller.viewer, body.model_dump()))


@router.put("/custom-fields/{field_id}", response_model=CustomFieldRead,
            summary="修改自定义字段（代码、类型、敏感设置不可改；已有选项不可删除）")
def update_field(session: SessionDep, caller: Definer, field_id: int, body: CustomFieldWrite) -> CustomFieldRead:
    return CustomFieldRead.of(custom_fields.update_field(session, caller.viewer, field_id, body.model_dump()))


@router.get("/customers/{customer_id}/fields", response_model=FieldValuesRead,
            summary="客户的自定义字段（适用于其客户类型的字段）")
def read_values(session: SessionDep, caller: Caller, customer_id: int) -> FieldValuesRead:
    customer = customers.get_customer(session, caller.viewer, customer_id)
    return FieldValuesRead(customer_id=customer_id,
                           fields=[FieldValue(**v) for v in custom_fields.shown_values(session, customer)])


@router.put("/customers/{customer_id}/fields", response_model=FieldValuesRead,
            summary="填写自定义字段（按字段代码；null 或空字符串清空；必填项不能为空）")
def write_values(session: SessionDep, caller: Caller, customer_id: int, body: FieldValuesWrite) -> FieldValuesRead:
    custom_fields.set_values(session, caller.viewer, customer_id, body)
    return read_values(session, caller, customer_id)


@router.post("/customers/{customer_id}/fields/{key}/reveal", response_model=FieldsReveal,
             summary="查看敏感自定义字段的完整取值（记入审计日志）")
def reveal_value(session: SessionDep, caller: Caller, customer_id: int, key: str, response: Response) -> FieldsReveal:
    value = custom_fields.reveal_value(session, caller.viewer, customer_id, key)
    response.headers["Cache-Control"] = "no-store"
    return FieldsReveal(customer_id=customer_id, fields={key: value})
