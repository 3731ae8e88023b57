"""Products in the staff JSON API: the catalogue and its versions, quotes, and 进件产品匹配.

Money is integer fen, rates are decimal strings ("0.12" is 12 % a year). Everyone with a token may
read, quote and match (matching a CRM customer is limited to the caller's data scope); creating
products and saving new versions is for admins and managers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from admin import nav
from admin.api.deps import ERROR_RESPONSES, ApiCaller, Caller, require_roles
from admin.schemas import ErrorBody
from core.errors import ValidationFailed
from core.web import SessionDep
from crm import customers
from lending import matching, products
from lending.models import Product, ProductVersion

router = APIRouter(prefix="/api/v1/lending", tags=["lending products"], responses=ERROR_RESPONSES)

Editor = Annotated[ApiCaller, Depends(require_roles(nav.PRODUCT_EDITORS))]
REFUSED = {400: {"model": ErrorBody, "description": "试算的综合年化成本超过上限（apr_above_cap），附原因"},
           403: {"model": ErrorBody, "description": "只有系统管理员或经理可以维护产品"},
           409: {"model": ErrorBody, "description": "产品编码已存在"},
           422: {"model": ErrorBody, "description": "条款不正确，或某个金额与期限的试算被计算引擎拒绝"}}
NOT_FOUND = {404: {"model": ErrorBody, "description": "产品或版本不存在"}}
QUOTE_REFUSED = {400: {"model": ErrorBody, "description": "综合年化成本超过上限"},
                 422: {"model": ErrorBody, "description": "金额或期限不在产品范围内"}}


class TermsBody(BaseModel):
    """Every term of a version; amounts in fen, rates as decimal strings."""

    min_amount: int = Field(examples=[1_000_000])
    max_amount: int = Field(examples=[10_000_000])
    terms_months: list[int] = Field(examples=[[12, 24]])
    repayment_method: str = Field(examples=["equal_installment"],
                                  description="equal_installment | equal_principal | interest_first | bullet")
    annual_rate: Decimal = Field(examples=["0.12"])
    interest_method: str = "declining"
    interest_period: str = "same"
    days_in_year: str = "360"
    currency_digits: int = 2
    rounding: str = "half_up"
    installment_multiple_amount: int = 1
    grace_principal_periods: int = 0
    grace_interest_periods: int = 0
    penalty_rate: Decimal = Decimal(0)
    penalty_basis: str = "daily"
    overdue_grace_days: int = Field(0, description="逾期宽限天数：应还日后这么多天内未还不算逾期（0–30）")
    write_off_order: str = Field("penalty_fee_interest_principal",
                                 description="冲销顺序：penalty_fee_interest_principal | fee_interest_principal_penalty")
    service_fee_rate: Decimal = Decimal(0)
    service_fee_amount: int = 0
    service_fee_timing: str = "per_period"
    deposit_rate: Decimal = Decimal(0)
    deposit_amount: int = 0
    deposit_refundable: bool = True
    prepayment_charge_rate: Decimal = Field(Decimal(0), description="提前还款违约金：提前归还本金的比例（0.02 即 2%）")
    min_age: int | None = None
    max_age: int | None = None
    regions: list[str] | None = None
    customer_types: list[str] | None = None
    min_income_amount: int | None = Field(None, description="fen per month")
    min_social_insurance_months: int | None = Field(None, description="最低社保缴纳月数")
    min_provident_fund_months: int | None = Field(None, description="最低公积金缴纳月数")
    property_required: bool = Field(False, description="须有房产")
    car_required: bool = Field(False, description="须有车辆")
    max_debt_ratio: Decimal | None = Field(None, description="最高负债率：月还款/月收入（0.5 即 50%）")
    min_credit_level: str | None = Field(None, description="征信不差于：good | blank | minor | current | serious")
    max_credit_overdue_count: int | None = Field(None, description="近两年最多逾期次数")
    max_credit_queries_6m: int | None = Field(None, description="近半年最多征信查询次数")
    allowed_industries: list[str] | None = Field(None, description="准入行业（crm INDUSTRY_CHOICES）")
    excluded_industries: list[str] | None = Field(None, description="限制行业")

    def terms(self) -> products.ProductTerms:
        return products.ProductTerms(**self.model_dump())


class VersionRead(TermsBody):
    id: int
    product_id: int
    version: int
    max_apr_rate: Decimal | None = Field(description="the highest 综合年化成本 of the sample quotes at saving")
    note: str | None
    created_by_staff_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, v: ProductVersion) -> VersionRead:
        fields = {name: getattr(v, name) for name in TermsBody.model_fields}
        return cls(**fields, id=v.id, product_id=v.product_id, version=v.version, max_apr_rate=v.max_apr_rate,
                   note=v.note, created_by_staff_id=v.created_by_staff_id, created_at=v.created_at)


class ProductRead(BaseModel):
    id: int
    code: str
    name: str
    funder_id: int
    funder_name: str
    active: bool
    current_version: VersionRead | None

    @classmethod
    def of(cls, product: Product, version: ProductVersion | None) -> ProductRead:
        return cls(id=product.id, code=product.code, name=product.name, funder_id=product.funder_id,
                   funder_name=product.funder.name, active=product.active and product.funder.active,
                   current_version=VersionRead.of(version) if version else None)


class FunderRead(BaseModel):
    id: int
    name: str
    funder_type: str = Field(description="bank | consumer_finance | guarantee | microloan | other")
    active: bool


class FunderCreate(BaseModel):
    name: str = Field(max_length=80, examples=["某某银行"])
    funder_type: str = Field("bank", examples=["bank"])
    note: str | None = None


class ProductCreate(BaseModel):
    code: str = Field(max_length=40, examples=["XY-12"])
    name: str = Field(max_length=80, examples=["信用贷 12 期"])
    funder_id: int
    terms: TermsBody
    note: str | None = None


class VersionCreate(BaseModel):
    terms: TermsBody
    name: str | None = None
    note: str | None = Field(None, examples=["年利率下调到 10%"])


class QuoteRequest(BaseModel):
    version_id: int
    amount: int = Field(description="fen", examples=[5_000_000])
    term_months: int = Field(examples=[12])
    start_date: date | None = Field(None, description="disbursement date; today (Shanghai) by default")


class MatchRequest(BaseModel):
    amount: int | None = Field(None, description="fen; the customer's recorded demand when omitted",
                               examples=[5_000_000])
    term_months: int | None = Field(None, description="the customer's recorded demand when omitted", examples=[12])
    customer_type: str | None = Field(None, examples=["credit"])
    customer_id: int | None = Field(None, description="a CRM customer in the caller's scope: age, region, type")
    age: int | None = None
    region: str | None = None
    income_monthly: int | None = Field(None, description="fen per month, when known")


@router.get("/funders", response_model=list[FunderRead], summary="资方列表")
def list_funders(session: SessionDep, caller: Caller) -> list[FunderRead]:
    return [FunderRead(id=f.id, name=f.name, funder_type=f.funder_type, active=f.active)
            for f in products.list_funders(session)]


@router.post("/funders", response_model=FunderRead, status_code=201, summary="新建资方", responses=REFUSED)
def create_funder(session: SessionDep, caller: Editor, body: FunderCreate) -> FunderRead:
    f = products.create_funder(session, name=body.name, funder_type=body.funder_type, note=body.note)
    return FunderRead(id=f.id, name=f.name, funder_type=f.funder_type, active=f.active)


@router.get("/products", response_model=list[ProductRead], summary="产品列表（含当前版本）")
def list_products(session: SessionDep, caller: Caller, active_only: bool = False) -> list[ProductRead]:
    return [ProductRead.of(p, v) for p, v in products.list_products(session, active_only=active_only)]


@router.post("/products", response_model=ProductRead, status_code=201, summary="新建产品（版本 1）",
             responses=REFUSED)
def create_product(session: SessionDep, caller: Editor, body: ProductCreate) -> ProductRead:
    product = products.create_product(session, code=body.code, name=body.name, funder_id=body.funder_id,
                                      terms=body.terms.terms(), by_staff_id=caller.viewer.staff_id, note=body.note)
    return ProductRead.of(product, products.get_version(session, product.current_version_id))


@router.get("/products/{product_id}/versions", response_model=list[VersionRead], summary="产品的全部版本（新到旧）",
            responses=NOT_FOUND)
def list_versions(session: SessionDep, caller: Caller, product_id: int) -> list[VersionRead]:
    products.get_product(session, product_id)
    return [VersionRead.of(v) for v in products.versions_of(session, product_id)]


@router.post("/products/{product_id}/versions", response_model=VersionRead, status_code=201,
             summary="修改条款（保存为新版本；条款未变则返回当前版本）", responses={**REFUSED, **NOT_FOUND})
def create_version(session: SessionDep, caller: Editor, product_id: int, body: VersionCreate) -> VersionRead:
    version = products.edit_product(session, product_id, body.terms.terms(), name=body.name,
                                    by_staff_id=caller.viewer.staff_id, note=body.note)
    return VersionRead.of(version)


@router.get("/versions/{version_id}", response_model=VersionRead, summary="一个产品版本", responses=NOT_FOUND)
def get_version(session: SessionDep, caller: Caller, version_id: int) -> VersionRead:
    return VersionRead.of(products.get_version(session, version_id))


@router.post("/quote", summary="试算：还款计划与综合年化成本", responses={**QUOTE_REFUSED, **NOT_FOUND})
def quote(session: SessionDep, caller: Caller, body: QuoteRequest) -> dict[str, Any]:
    version = products.get_version(session, body.version_id)
    return products.quote(version, body.amount, body.term_months, body.start_date).as_dict()


@router.post("/match", summary="进件产品匹配：可选产品按综合年化成本排序，需补充资料的产品及所缺资料，其他产品的排除原因",
             responses={404: {"model": ErrorBody, "description": "客户不存在或不在您的数据范围内"}})
def match(session: SessionDep, caller: Caller, body: MatchRequest) -> dict[str, Any]:
    if body.customer_id is not None:
        customer = customers.get_customer(session, caller.viewer, body.customer_id)
        profile = matching.profile_of(customer, income_monthly=body.income_monthly)
        demand = matching.demand_of(customer, amount=body.amount, term_months=body.term_months,
                                    customer_type=body.customer_type)
    else:
        if body.amount is None or body.term_months is None:
            raise ValidationFailed("请填写申请金额和期限，或指定客户", field="amount")
        profile = matching.Profile(age=body.age, region=body.region, income_monthly=body.income_monthly,
                                   customer_type=body.customer_type)
        demand = matching.Demand(body.amount, body.term_months, body.customer_type)
    return matching.match_products(session, demand, profile).as_dict()
