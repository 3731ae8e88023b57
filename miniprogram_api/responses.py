"""Response bodies of the mini-program API: one pydantic model per answer, so /mp/openapi.json shows each shape.

Money leaves as yuan strings ("50000.00"); instants as ISO 8601 with offset; business dates as YYYY-MM-DD.
Every model forbids fields it does not declare: an answer the code builds with a field the model lacks fails
loudly in tests instead of being dropped silently.

The application draft has ONE shape for reading and writing (:class:`DraftFields`): ``GET`` answers it (plus
what the server keeps: id, status, documents, what is missing) and ``PUT``/``PATCH`` take it back as is.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from miniprogram_api.schemas import DraftFields

Yuan = str  # a yuan amount as a string, two decimals ("10000.00")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ok(Out):
    ok: bool = True


class ErrorOut(Out):
    """Every refusal: a stable code (see the error code table) and a Chinese message for the customer."""

    code: str = Field(description="稳定错误码（MpErrorCode）")
    message: str = Field(description="给客户看的中文说明")
    details: dict[str, object] | None = Field(None, description="补充信息，如 field、missing、document_ids")


# --- account ----------------------------------------------------------------------------------------

class Me(Out):
    id: int
    name: str | None
    phone_masked: str | None = Field(description="脱敏手机号，如 138****5678")
    id_number_masked: str | None
    phone_bound: bool
    stage: str
    stage_label: str


class LoginOut(Out):
    token: str = Field(description="之后请求带 Authorization: Bearer <token>")
    expires_at: datetime
    new_customer: bool
    attributed: bool = Field(description="本次登录是否记下了分享来源（scene）")
    customer: Me


# --- consents ---------------------------------------------------------------------------------------

class ConsentDocumentOut(Out):
    id: int
    code: str = Field(description="privacy 或 share:<资方ID>")
    kind: str = Field(description="privacy 隐私政策 | share 个人信息共享授权书")
    version: int
    title: str
    funder_id: int | None
    published_at: datetime


class ConsentDocumentBody(ConsentDocumentOut):
    body: str = Field(description="协议全文（纯文本，换行分段）")


class ConsentStateOut(ConsentDocumentOut):
    agreed_version: int | None = Field(description="客户同意过的版本（最近一次为同意时）")
    agreed: bool = Field(description="是否已同意最新版本")
    withdrawn: bool


class ConsentList(Out):
    documents: list[ConsentStateOut]


class ConsentRecordOut(Out):
    id: int
    document_id: int
    version: int
    action: str = Field(description="grant 同意 | withdraw 撤回")
    at: datetime


# --- referral ---------------------------------------------------------------------------------------

class ReferralCode(Out):
    code: str
    scene: str
    page: str


class Invitee(Out):
    name: str
    phone_masked: str | None
    at: datetime
    stage_label: str


class InviteeList(Out):
    invitees: list[Invitee]


class CommissionBalance(Out):
    total: Yuan
    available: Yuan
    pending: Yuan
    held: Yuan
    paid: Yuan
    withdrawable: Yuan


class CommissionEntry(Out):
    kind: str
    kind_label: str
    amount: Yuan
    at: datetime
    note: str | None


class WithdrawalOut(Out):
    id: int
    amount: Yuan
    status: str
    status_label: str
    requested_at: datetime


class CommissionOut(Out):
    balance: CommissionBalance
    entries: list[CommissionEntry]
    withdrawals: list[WithdrawalOut]


class PayeeOut(Out):
    name: str | None
    channel: str | None
    bank: str | None
    account_masked: str | None


# --- products and calculator ------------------------------------------------------------------------

class ProductOut(Out):
    id: int
    code: str
    name: str
    funder: str
    min_amount: Yuan
    max_amount: Yuan
    terms_months: list[int]
    repayment_method: str
    repayment_method_label: str
    annual_rate_percent: str = Field(description="如 \"12.00%\"")


class ProductList(Out):
    products: list[ProductOut]


class SchedulePeriod(Out):
    number: int
    due_date: date
    principal: Yuan
    interest: Yuan
    fee: Yuan
    total: Yuan
    balance: Yuan


class CalculatorOut(Out):
    amount: Yuan
    term_months: int
    repayment_method: str
    repayment_method_label: str
    apr_percent: str = Field(description="综合年化成本（IRR），如 \"12.68%\"")
    first_payment: Yuan
    received: Yuan = Field(description="实际到手金额")
    total_interest: Yuan
    total_fee: Yuan
    total_repayment: Yuan
    periods: list[SchedulePeriod]
    product_id: int | None
    version_id: int | None
    above_cap: bool = Field(description="不选产品试算时：是否超过综合年化成本上限")


class MatchOut(Out):
    product_id: int
    name: str
    funder: str
    monthly_payment: Yuan
    apr_percent: str
    notes: list[str]
    missing: list[str] = Field(default_factory=list, description="需补充资料：产品要求而资料中没有的信息")


class ExcludedOut(Out):
    product_id: int
    name: str
    reasons: list[str]
    missing: list[str] = Field(default_factory=list, description="另外待补充的资料")


class MatchResult(Out):
    matches: list[MatchOut]
    needs_info: list[MatchOut] = Field(default_factory=list, description="需补充资料的产品（补充后再确认是否符合）")
    excluded: list[ExcludedOut]


# --- applications -----------------------------------------------------------------------------------

class DocumentOut(Out):
    id: int
    kind: str = Field(description="id_front | id_back | income | other")
    kind_label: str
    content_type: str
    size_bytes: int
    sha256: str
    draft_id: int | None
    created_at: datetime


class DocumentList(Out):
    documents: list[DocumentOut]


class DraftRead(DraftFields):
    """The draft as the customer filled it (the same fields ``PUT`` takes), with what the server keeps.
    ``id_number`` is read back masked; sent back unchanged (masked) it leaves the number as registered."""

    model_config = ConfigDict(extra="forbid")

    id: int
    status: str = Field(description="draft 草稿 | submitted 已提交")
    status_label: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    application_id: int | None
    documents: list[DocumentOut]
    missing: list[str] = Field(description="提交前还缺的项目（中文）")


class DraftList(Out):
    applications: list[DraftRead]


class ProgressStep(Out):
    at: datetime
    status: str
    status_label: str
    node: str | None


class Progress(Out):
    status: str
    status_label: str
    node: str | None = Field(description="当前审批节点名称")
    history: list[ProgressStep]


class DraftSubmittedOut(DraftRead):
    progress: Progress


# --- visits -----------------------------------------------------------------------------------------

class Branch(Out):
    id: int
    name: str


class BranchList(Out):
    branches: list[Branch]


class VisitOut(Out):
    id: int
    department_id: int | None
    branch: str | None
    scheduled_at: datetime
    ends_at: datetime | None
    status: str
    status_label: str
    note: str | None
    rescheduled_to_id: int | None


class VisitList(Out):
    visits: list[VisitOut]


# --- my loans ---------------------------------------------------------------------------------------

class InstallmentOut(Out):
    number: int
    due_date: date
    principal: Yuan
    interest: Yuan
    fee: Yuan
    total: Yuan
    penalty: Yuan
    paid: Yuan
    paid_principal: Yuan
    paid_interest: Yuan
    paid_fee: Yuan
    paid_penalty: Yuan
    outstanding: Yuan
    status: str
    status_label: str


class LoanOut(Out):
    id: int
    contract_number: str | None
    principal: Yuan
    status: str
    status_label: str
    start_date: date
    next_due_date: date | None
    next_due_amount: Yuan | None
    overdue: bool
    overdue_days: int
    paid_total: Yuan
    outstanding_total: Yuan
    schedule: list[InstallmentOut]


class ContractOut(Out):
    id: int
    number: str
    status: str
    principal: Yuan
    term_months: int
    signed_at: datetime | None


class LoanList(Out):
    loans: list[LoanOut]
    contracts: list[ContractOut]
    note: str | None


class ReminderOptOut(Out):
    opted_out: bool


class PrepaymentPeriod(Out):
    number: int
    due_date: date
    principal: Yuan
    interest: Yuan
    fee: Yuan
    total: Yuan
    balance: Yuan
    prepayment: Yuan


class PrepaymentQuote(Out):
    loan_id: int
    date: date
    kind: str = Field(description="payoff 提前结清 | partial 部分提前还款")
    kind_label: str
    mode: str | None
    mode_label: str | None
    period: int | None
    due: dict[str, Yuan] = Field(description="截至该日已到期未还：penalty / fee / interest / principal")
    due_total: Yuan
    outstanding_principal: Yuan
    principal: Yuan
    accrued_interest: Yuan
    fee: Yuan
    charge: Yuan
    total: Yuan
    payoff: Yuan
    schedule: list[PrepaymentPeriod]


# --- bills and payments -----------------------------------------------------------------------------

class Bill(Out):
    loan_id: int
    period: int
    due_date: date
    amount: Yuan
    overdue: bool
    title: str


class BillList(Out):
    bills: list[Bill]


class PayParams(Out):
    """Pass to ``wx.requestPayment`` as is."""

    appId: str  # noqa: N815 - WeChat's field names
    timeStamp: str  # noqa: N815
    nonceStr: str  # noqa: N815
    package: str
    signType: str  # noqa: N815
    paySign: str  # noqa: N815


class PayOrder(Out):
    out_trade_no: str
    amount: Yuan
    status: str
    status_label: str
    pay_params: PayParams | None = Field(description="为空时订单已支付或无需支付，查询支付结果即可")


class Fee(Out):
    agreement_id: int
    settlement_id: int | None = Field(description="服务费时为结算 ID，定金时为空")
    kind: str = Field(description="deposit 定金 | settlement 服务费")
    title: str
    amount: Yuan


class FeeList(Out):
    fees: list[Fee]


class PaymentResult(Out):
    out_trade_no: str
    amount: Yuan
    status: str
    status_label: str
    paid: bool
    message: str
    paid_at: datetime | None
    method: str | None


class AuthorizationOut(Out):
    id: int
    account: str | None = Field(description="脱敏银行卡号")
    bank_name: str | None
    scope: list[str]
    max_amount: Yuan
    status: str
    signed_at: datetime | None
    revoked_at: datetime | None


class AuthorizationList(Out):
    authorizations: list[AuthorizationOut]


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (400, "请求被拒绝（如登录凭证无效）"), (401, "未登录或登录已失效：mp_session_invalid"),
        (404, "记录不存在，或不属于当前客户"), (409, "状态冲突（如申请已提交、需先同意协议）"),
        (422, "输入不正确：validation_failed（逐字段）或各业务错误码"), (429, "操作过于频繁：rate_limited"),
    )
}
