"""Staff JSON API of the finance center (财务中心) under /api/v1/finance: agreements (签单, 合同确认, amendments,
approval), deposits (定金: receive, confirm, refund, void), customer loans, the work list (做单中心), settlement
(disbursement by hand, charge, voucher confirmations, 结单, fee refunds, .xlsx export), the ledger (accounts,
check, period close) and the added fee types. Every call goes through the same finance functions the console
uses; data-scoped by the case's salesperson and case officer. Amounts are integer fen; rates decimal strings."""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.background import BackgroundTask

from admin.api.deps import ERROR_RESPONSES, Caller
from admin.schemas import ErrorBody
from core import clock
from core.errors import ValidationFailed
from core.web import SessionDep
from finance import agreements, deposits, ledger, performance, reimbursements, settlements
from finance import export as finance_export
from finance.access import FINANCE, require
from finance.models import Account

router = APIRouter(prefix="/api/v1/finance", tags=["finance"], responses=ERROR_RESPONSES)

_E: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "角色无权执行此操作"},
    404: {"model": ErrorBody, "description": "不存在或不在您的数据范围内"},
    409: {"model": ErrorBody, "description": "状态冲突：已被他人处理、金额已锁定（amount_locked）、已结单（settlement_conflict）、"
                                             "尚未放款（not_disbursed）、该月已月结（period_closed）、收费后签单有变更须重新收费（charge_stale）"},
    422: {"model": ErrorBody, "description": "输入不正确（中文说明）：金额为负或不足一分、退款超过已收、优惠超过服务费、"
                                             "收款合计与应收不符、综合年化成本超过上限（apr_above_cap，details.apr）"},
}


class OtherFee(BaseModel):
    name: str = Field(description="费用名称，如 评估费")
    amount: int = Field(description="金额（分）")


class QuoteBody(BaseModel):
    """The fee terms of an agreement: what 签单试算 needs, and what an agreement records with its parties."""

    signed_date: date | None = Field(None, description="签单日期（计算起点），默认今天")
    loan_amount: int = Field(description="贷款金额（分）")
    term_months: int
    funder_annual_rate: Decimal = Field(description="资方年利率，小数，如 0.06")
    repayment_method: str = Field("equal_installment", description="equal_installment | equal_principal | "
                                                                   "interest_first | bullet")
    funder_fee_amount: int = Field(0, description="资方费用（分）")
    service_fee_rate: Decimal = Field(Decimal(0), description="服务费率，小数，如 0.03")
    service_fee_fixed_amount: int = Field(0, description="固定服务费（分）")
    other_fees: list[OtherFee] = Field(default_factory=list)


class AgreementCreate(QuoteBody):
    customer_id: int
    sales_staff_id: int | None = Field(None, description="营销专员，默认本人")
    case_officer_id: int = Field(description="做单专员")
    number: str | None = Field(None, max_length=32, description="协议编号，留空自动生成")
    application_id: int | None = Field(None, description="关联的贷款申请（放款后自动进入待结算）")
    deposit_amount: int = Field(0, description="约定定金（分）")
    note: str | None = Field(None, max_length=300)


class QuoteRead(BaseModel):
    apr_rate: Decimal = Field(description="综合年化成本（IRR 法，含资方利息费用与本公司服务费及其他费用），小数")
    cap_rate: Decimal = Field(description="上限，小数（SCRM_APR_CAP_RATE，默认 0.24）")
    within_cap: bool
    service_fee_amount: int = Field(description="服务费（分）")
    charges_amount: int = Field(description="各项费用合计（分）：资方费用 + 服务费 + 其他费用")
    message: str = Field(description="中文说明，含数值与上限")


class TermsChange(BaseModel):
    loan_amount: int | None = None
    term_months: int | None = None
    funder_annual_rate: Decimal | None = None
    repayment_method: str | None = None
    funder_fee_amount: int | None = None
    service_fee_rate: Decimal | None = None
    service_fee_fixed_amount: int | None = None
    deposit_amount: int | None = None
    other_fees: list[OtherFee] | None = None

    def changes(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        if "other_fees" in out:
            out["other_fees"] = [dict(f) for f in out["other_fees"]]
        return out


class AmendmentCreate(TermsChange):
    reason: str = Field(min_length=1, max_length=300)


class AgreementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    customer_id: int
    application_id: int | None
    sales_staff_id: int
    case_officer_id: int
    signed_date: date
    status: str = Field(description="draft 待合同确认 | confirmed 待主管审批 | approved 待收定金 | working 做单中 | "
                                    "disbursed 待结算 | settled 已结算 | cancelled 已取消")
    version: int
    loan_amount: int
    term_months: int
    funder_annual_rate: Decimal
    repayment_method: str
    funder_fee_amount: int
    service_fee_rate: Decimal
    service_fee_fixed_amount: int
    deposit_amount: int
    other_fees: list[dict[str, Any]] | None
    other_fees_amount: int
    apr_rate: Decimal = Field(description="综合年化成本（IRR 法，含资方利息费用与本公司服务费），小数")
    confirmed_at: datetime | None
    approved_at: datetime | None


class AmendmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agreement_id: int
    status: str = Field(description="pending | confirmed | rejected")
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str
    proposed_at: datetime
    decided_at: datetime | None


class DepositCreate(BaseModel):
    amount: int = Field(description="金额（分）")
    method: str = Field(description="cash | alipay | wechat | bank | withholding")
    received_date: date | None = None
    reference: str | None = Field(None, max_length=64)


class DepositRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agreement_id: int
    amount: int
    refunded_amount: int
    method: str
    received_date: date
    reference: str | None
    status: str = Field(description="received 待确认 | confirmed 已确认 | voided 已作废")
    confirmed_at: datetime | None
    journal_entry_id: int | None


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class RefundCreate(BaseModel):
    amount: int = Field(description="金额（分），不超过已收减已退与待确认的退款")
    method: str
    reason: str = Field(min_length=1, max_length=200)


class RefundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    deposit_id: int
    amount: int
    method: str
    reason: str
    status: str = Field(description="requested | confirmed | rejected")
    requested_at: datetime
    decided_at: datetime | None


class CustomerLoanCreate(BaseModel):
    principal_amount: int
    interest_amount: int = 0
    cost_amount: int = 0
    method: str
    loan_date: date | None = None
    note: str | None = Field(None, max_length=200)


class CustomerLoanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agreement_id: int
    principal_amount: int
    interest_amount: int
    cost_amount: int
    loan_date: date
    method: str
    status: str = Field(description="outstanding | repaid")


class DisbursementCreate(BaseModel):
    funder_name: str = Field(max_length=80)
    funder_type: str = Field(description="bank 银行 | consumer_finance 消金 | guarantee 信保 | microloan 小贷 | other")
    amount: int = Field(description="放款金额（分）")
    disbursed_date: date | None = None


class FeeLine(BaseModel):
    fee_type_id: int
    amount: int


class PaymentLine(BaseModel):
    method: str
    amount: int


class RebateLine(BaseModel):
    partner: str
    amount: int


class ChargeBody(BaseModel):
    discount_kind: str = Field("none", description="none | percent | fixed")
    discount_rate: Decimal | None = Field(None, description="percent：服务费的比例，小数，如 0.1")
    discount_amount: int = Field(0, description="fixed：优惠金额（分），不超过服务费")
    installment_fee_amount: int = 0
    fees: list[FeeLine] = Field(default_factory=list, description="追加费用（按配置的费用类型）")
    payments: list[PaymentLine] = Field(description="分笔收款，合计须等于应收")
    rebates: list[RebateLine] = Field(default_factory=list, description="返点")
    expected_revision: int = Field(description="必填，乐观锁：您看到的结算 revision（首次收费为 0）；两人同时收费只有一人成功，"
                                               "另一人 409 state_conflict")


class ConfirmationBody(BaseModel):
    as_: str = Field(alias="as", description="officer 做单专员 | supervisor 做单主管 | sales 营销专员")
    revision: int = Field(description="所确认的内部凭证版本（收费修改后须重新确认）")


class FeeRefundBody(BaseModel):
    amount: int
    method: str
    reason: str = Field(min_length=1, max_length=200)


class SettlementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agreement_id: int
    source: str = Field(description="lending | manual")
    loan_id: int | None
    funder_name: str
    funder_type: str
    disbursed_amount: int
    disbursed_date: date
    status: str = Field(description="pending 待结算 | charged 待确认凭证 | settled 已结算")
    revision: int
    service_fee_amount: int
    discount_kind: str
    discount_amount: int
    installment_fee_amount: int
    extra_fees_amount: int
    loan_repaid_amount: int
    deposit_applied_amount: int
    total_due_amount: int
    rebate_amount: int
    fee_refunded_amount: int
    officer_confirmed_at: datetime | None
    supervisor_confirmed_at: datetime | None
    sales_confirmed_at: datetime | None
    settled_at: datetime | None
    journal_entry_id: int | None


class AgreementDetail(AgreementRead):
    deposits: list[DepositRead]
    refunds: list[RefundRead]
    customer_loans: list[CustomerLoanRead]
    amendments: list[AmendmentRead]
    settlement: SettlementRead | None


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    number: str
    name: str
    kind: str
    balance_amount: int = Field(description="余额（分），借方为正")


class CheckRead(BaseModel):
    ok: bool
    entries: int
    lines: int
    closed_months: int
    problems: list[str]


class PeriodCloseBody(BaseModel):
    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")


class PeriodRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    period_month: date
    line_count: int
    debit_total_amount: int
    closed_at: datetime


class FeeTypeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    active: bool


class FeeTypeCreate(BaseModel):
    name: str = Field(max_length=40)


# --- agreements -------------------------------------------------------------------------------------------


def _detail(session: SessionDep, agreement: Any) -> AgreementDetail:
    settlement = settlements.settlement_for(session, agreement.id)
    return AgreementDetail(
        **AgreementRead.model_validate(agreement).model_dump(),
        deposits=[DepositRead.model_validate(d) for d in deposits.deposits_of(session, agreement.id)],
        refunds=[RefundRead.model_validate(r) for r in deposits.refunds_of(session, agreement.id)],
        customer_loans=[CustomerLoanRead.model_validate(ln) for ln in deposits.loans_of(session, agreement.id)],
        amendments=[AmendmentRead.model_validate(a) for a in agreements.amendments(session, agreement.id)],
        settlement=SettlementRead.model_validate(settlement) if settlement else None)


@router.get("/agreements", response_model=list[AgreementRead], summary="签单列表（按数据范围）")
def list_agreements(session: SessionDep, caller: Caller, status: str | None = Query(None),
                    q: str | None = Query(None, description="协议编号"), limit: int = Query(50, ge=1, le=500),
                    offset: int = Query(0, ge=0)) -> list[AgreementRead]:
    rows = agreements.list_agreements(session, caller.viewer, status=status, q=q, limit=limit, offset=offset)
    return [AgreementRead.model_validate(a) for a, _ in rows]


@router.post("/agreements/quote", response_model=QuoteRead, responses=_E,
             summary="签单试算：综合年化成本与上限（不保存）",
             description="按 IRR 法计算综合年化成本（与录入签单时的检查相同），不写入任何数据；"
                         "超过上限时 422 apr_above_cap，message 给出数值与上限（details.apr / details.cap）。")
def quote_agreement(body: QuoteBody, caller: Caller) -> QuoteRead:
    terms = body.model_dump(exclude={"signed_date"})
    terms["other_fees"] = [dict(f) for f in body.other_fees]
    q = agreements.quote(terms, signed_date=body.signed_date, viewer=caller.viewer)
    return QuoteRead(apr_rate=q.apr, cap_rate=q.cap, within_cap=q.within_cap, service_fee_amount=q.service_fee_amount,
                     charges_amount=q.charges_amount,
                     message=f"综合年化成本 {q.apr_text}%（上限 {q.cap_text}%），未超过上限，可以签约")


@router.post("/agreements", response_model=AgreementRead, status_code=201, responses=_E,
             summary="录入签单（居间服务协议）", description="客户须有到店记录；综合年化成本超过上限（默认 24%）被拒绝并给出数值。")
def create_agreement(body: AgreementCreate, session: SessionDep, caller: Caller) -> AgreementRead:
    data = agreements.AgreementInput(
        customer_id=body.customer_id, sales_staff_id=body.sales_staff_id or caller.viewer.staff_id,
        case_officer_id=body.case_officer_id, number=body.number, signed_date=body.signed_date,
        application_id=body.application_id, loan_amount=body.loan_amount, term_months=body.term_months,
        funder_annual_rate=body.funder_annual_rate, repayment_method=body.repayment_method,
        funder_fee_amount=body.funder_fee_amount, service_fee_rate=body.service_fee_rate,
        service_fee_fixed_amount=body.service_fee_fixed_amount, deposit_amount=body.deposit_amount,
        other_fees=[dict(f) for f in body.other_fees], note=body.note)
    return AgreementRead.model_validate(agreements.create_agreement(session, data, viewer=caller.viewer))


@router.get("/agreements/{agreement_id}", response_model=AgreementDetail, responses=_E,
            summary="签单详情：定金、退款、客户借款、变更、结算")
def read_agreement(agreement_id: int, session: SessionDep, caller: Caller) -> AgreementDetail:
    return _detail(session, agreements.get_agreement(session, caller.viewer, agreement_id))


@router.patch("/agreements/{agreement_id}", response_model=AgreementRead, responses=_E,
              summary="修改草稿的条款（合同确认后金额锁定：409 amount_locked，请提交变更）")
def update_agreement(agreement_id: int, body: TermsChange, session: SessionDep, caller: Caller) -> AgreementRead:
    return AgreementRead.model_validate(agreements.update_terms(session, agreement_id, body.changes(),
                                                                viewer=caller.viewer))


@router.post("/agreements/{agreement_id}/confirm", response_model=AgreementRead, responses=_E,
             summary="合同确认（财务）：金额锁定")
def confirm_agreement(agreement_id: int, session: SessionDep, caller: Caller) -> AgreementRead:
    return AgreementRead.model_validate(agreements.confirm(session, agreement_id, viewer=caller.viewer))


@router.post("/agreements/{agreement_id}/approve", response_model=AgreementRead, responses=_E,
             summary="主管审批：进入定金列表")
def approve_agreement(agreement_id: int, session: SessionDep, caller: Caller) -> AgreementRead:
    return AgreementRead.model_validate(agreements.approve(session, agreement_id, viewer=caller.viewer))


@router.post("/agreements/{agreement_id}/cancel", response_model=AgreementRead, responses=_E, summary="取消签单（未收定金时）")
def cancel_agreement(agreement_id: int, body: Reason, session: SessionDep, caller: Caller) -> AgreementRead:
    return AgreementRead.model_validate(agreements.cancel(session, agreement_id, viewer=caller.viewer,
                                                          reason=body.reason))


@router.post("/agreements/{agreement_id}/amendments", response_model=AmendmentRead, status_code=201, responses=_E,
             summary="提交已确认签单的金额变更（财务确认后生效）")
def propose_amendment(agreement_id: int, body: AmendmentCreate, session: SessionDep, caller: Caller) -> AmendmentRead:
    changes = body.changes()
    changes.pop("reason", None)
    return AmendmentRead.model_validate(agreements.propose_amendment(session, agreement_id, changes,
                                                                     reason=body.reason, viewer=caller.viewer))


@router.post("/amendments/{amendment_id}/confirm", response_model=AmendmentRead, responses=_E, summary="确认变更（财务）")
def confirm_amendment(amendment_id: int, session: SessionDep, caller: Caller) -> AmendmentRead:
    return AmendmentRead.model_validate(agreements.decide_amendment(session, amendment_id, accept=True,
                                                                    viewer=caller.viewer))


@router.post("/amendments/{amendment_id}/reject", response_model=AmendmentRead, responses=_E, summary="驳回变更（财务）")
def reject_amendment(amendment_id: int, session: SessionDep, caller: Caller) -> AmendmentRead:
    return AmendmentRead.model_validate(agreements.decide_amendment(session, amendment_id, accept=False,
                                                                    viewer=caller.viewer))


# --- deposits and customer loans ------------------------------------------------------------------------


@router.get("/deposits", response_model=list[DepositRead], summary="定金列表")
def list_deposits(session: SessionDep, caller: Caller, status: str | None = Query(None),
                  limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> list[DepositRead]:
    return [DepositRead.model_validate(d) for d, _, _ in deposits.deposit_list(session, caller.viewer, status=status,
                                                                               limit=limit, offset=offset)]


@router.post("/agreements/{agreement_id}/deposits", response_model=DepositRead, status_code=201, responses=_E,
             summary="登记定金收款（待财务确认）")
def record_deposit(agreement_id: int, body: DepositCreate, session: SessionDep, caller: Caller) -> DepositRead:
    return DepositRead.model_validate(deposits.record_deposit(
        session, agreement_id, amount=body.amount, method=body.method, received_date=body.received_date,
        reference=body.reference, viewer=caller.viewer))


@router.post("/deposits/{deposit_id}/confirm", response_model=DepositRead, responses=_E,
             summary="确认定金到账（财务）：入账，案件进入做单中心")
def confirm_deposit(deposit_id: int, session: SessionDep, caller: Caller) -> DepositRead:
    return DepositRead.model_validate(deposits.confirm_deposit(session, deposit_id, viewer=caller.viewer))


@router.post("/deposits/{deposit_id}/void", response_model=DepositRead, responses=_E,
             summary="作废定金（录入错误，须重新录入）；已确认的冲销入账")
def void_deposit(deposit_id: int, body: Reason, session: SessionDep, caller: Caller) -> DepositRead:
    return DepositRead.model_validate(deposits.void_deposit(session, deposit_id, reason=body.reason,
                                                            viewer=caller.viewer))


@router.post("/deposits/{deposit_id}/refunds", response_model=RefundRead, status_code=201, responses=_E,
             summary="申请退定金（做单专员）")
def request_refund(deposit_id: int, body: RefundCreate, session: SessionDep, caller: Caller) -> RefundRead:
    return RefundRead.model_validate(deposits.request_refund(session, deposit_id, amount=body.amount,
                                                             method=body.method, reason=body.reason,
                                                             viewer=caller.viewer))


@router.post("/refunds/{refund_id}/confirm", response_model=RefundRead, responses=_E, summary="确认退定金（财务）：入账")
def confirm_refund(refund_id: int, session: SessionDep, caller: Caller) -> RefundRead:
    return RefundRead.model_validate(deposits.decide_refund(session, refund_id, accept=True, viewer=caller.viewer))


@router.post("/refunds/{refund_id}/reject", response_model=RefundRead, responses=_E, summary="驳回退定金（财务）")
def reject_refund(refund_id: int, session: SessionDep, caller: Caller) -> RefundRead:
    return RefundRead.model_validate(deposits.decide_refund(session, refund_id, accept=False, viewer=caller.viewer))


@router.post("/agreements/{agreement_id}/customer-loans", response_model=CustomerLoanRead, status_code=201,
             responses=_E, summary="登记客户借款（财务），结算时收回")
def lend(agreement_id: int, body: CustomerLoanCreate, session: SessionDep, caller: Caller) -> CustomerLoanRead:
    return CustomerLoanRead.model_validate(deposits.lend_to_customer(
        session, agreement_id, principal_amount=body.principal_amount, interest_amount=body.interest_amount,
        cost_amount=body.cost_amount, method=body.method, loan_date=body.loan_date, note=body.note,
        viewer=caller.viewer))


@router.get("/work-list", response_model=list[AgreementRead], summary="做单中心：定金已确认的案件")
def work_list(session: SessionDep, caller: Caller, mine: bool = Query(False, description="只看我做单的")
              ) -> list[AgreementRead]:
    return [AgreementRead.model_validate(a) for a, _ in deposits.work_list(session, caller.viewer, mine=mine)]


# --- settlement -------------------------------------------------------------------------------------------


@router.post("/agreements/{agreement_id}/disbursement", response_model=SettlementRead, status_code=201,
             responses=_E, summary="登记外部资方放款（财务）：案件进入待结算")
def record_disbursement(agreement_id: int, body: DisbursementCreate, session: SessionDep,
                        caller: Caller) -> SettlementRead:
    return SettlementRead.model_validate(settlements.record_disbursement(
        session, agreement_id, funder_name=body.funder_name, funder_type=body.funder_type, amount=body.amount,
        disbursed_date=body.disbursed_date, viewer=caller.viewer))


@router.get("/agreements/{agreement_id}/settlement", response_model=SettlementRead, responses=_E,
            summary="案件的结算（未放款：409 not_disbursed）")
def settlement_of(agreement_id: int, session: SessionDep, caller: Caller) -> SettlementRead:
    return SettlementRead.model_validate(settlements.of_agreement(session, caller.viewer, agreement_id))


@router.get("/settlements", response_model=list[SettlementRead], summary="结算列表")
def list_settlements(session: SessionDep, caller: Caller, status: str | None = Query(None),
                     funder_type: str | None = Query(None), since: date | None = Query(None),
                     until: date | None = Query(None), limit: int = Query(50, ge=1, le=500),
                     offset: int = Query(0, ge=0)) -> list[SettlementRead]:
    rows = settlements.list_settlements(session, caller.viewer, status=status, funder_type=funder_type, since=since,
                                        until=until, limit=limit, offset=offset)
    return [SettlementRead.model_validate(r.settlement) for r in rows]


@router.get("/settlements/export.xlsx", summary="批量导出结算（.xlsx）", response_class=FileResponse,
            responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
def export_settlements(session: SessionDep, caller: Caller, status: str | None = Query(None),
                       funder_type: str | None = Query(None), since: date | None = Query(None),
                       until: date | None = Query(None)) -> FileResponse:
    require(caller.viewer, FINANCE, "导出结算")
    handle = tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False)  # noqa: SIM115 - removed after sending
    handle.close()
    finance_export.export_settlements(session, caller.viewer, handle.name, status=status, funder_type=funder_type,
                                      since=since, until=until)
    return FileResponse(handle.name, filename=f"结算明细-{clock.today():%Y%m%d}.xlsx",
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        background=BackgroundTask(os.unlink, handle.name))


@router.get("/settlements/{settlement_id}", response_model=SettlementRead, responses=_E, summary="结算详情")
def read_settlement(settlement_id: int, session: SessionDep, caller: Caller) -> SettlementRead:
    return SettlementRead.model_validate(settlements.get_settlement(session, caller.viewer, settlement_id))


@router.post("/settlements/{settlement_id}/charge", response_model=SettlementRead, responses=_E,
             summary="结算收费（财务）：优惠、分笔收款、追加费用、返点；确认人须重新确认")
def charge(settlement_id: int, body: ChargeBody, session: SessionDep, caller: Caller) -> SettlementRead:
    data = settlements.ChargeInput(
        discount_kind=body.discount_kind, discount_rate=body.discount_rate, discount_amount=body.discount_amount,
        installment_fee_amount=body.installment_fee_amount, fees=[(f.fee_type_id, f.amount) for f in body.fees],
        payments=[(p.method, p.amount) for p in body.payments], rebates=[(r.partner, r.amount) for r in body.rebates],
        expected_revision=body.expected_revision)
    return SettlementRead.model_validate(settlements.charge(session, settlement_id, data, viewer=caller.viewer))


@router.post("/settlements/{settlement_id}/confirmations", response_model=SettlementRead, responses=_E,
             summary="确认内部凭证（做单专员 / 做单主管 / 营销专员）")
def confirm_voucher(settlement_id: int, body: ConfirmationBody, session: SessionDep, caller: Caller) -> SettlementRead:
    return SettlementRead.model_validate(settlements.confirm_voucher(session, settlement_id, body.as_,
                                                                     revision=body.revision, viewer=caller.viewer))


@router.post("/settlements/{settlement_id}/close", response_model=SettlementRead, responses=_E,
             summary="结单（财务）→ 已结算；两人同时结单只有一人成功（409 settlement_conflict）")
def close(settlement_id: int, session: SessionDep, caller: Caller) -> SettlementRead:
    return SettlementRead.model_validate(settlements.close(session, settlement_id, viewer=caller.viewer))


@router.post("/settlements/{settlement_id}/fee-refunds", response_model=SettlementRead, responses=_E,
             summary="结单后退服务费（财务）：入账，员工佣金冲回")
def refund_fee(settlement_id: int, body: FeeRefundBody, session: SessionDep, caller: Caller) -> SettlementRead:
    return SettlementRead.model_validate(settlements.refund_fee(session, settlement_id, amount=body.amount,
                                                                method=body.method, reason=body.reason,
                                                                viewer=caller.viewer))


@router.get("/fee-types", response_model=list[FeeTypeRead], summary="追加费用类型")
def fee_types(session: SessionDep, caller: Caller) -> list[FeeTypeRead]:  # noqa: ARG001 - authenticated
    return [FeeTypeRead.model_validate(t) for t in settlements.fee_types(session, active_only=False)]


@router.post("/fee-types", response_model=FeeTypeRead, status_code=201, responses=_E, summary="新增费用类型（财务）")
def add_fee_type(body: FeeTypeCreate, session: SessionDep, caller: Caller) -> FeeTypeRead:
    return FeeTypeRead.model_validate(settlements.add_fee_type(session, body.name, viewer=caller.viewer))


# --- ledger -----------------------------------------------------------------------------------------------


@router.get("/ledger/accounts", response_model=list[AccountRead], responses=_E, summary="科目余额")
def accounts(session: SessionDep, caller: Caller) -> list[AccountRead]:
    require(caller.viewer, FINANCE, "查看总账")
    return [AccountRead.model_validate(a) for a in session.scalars(select(Account).order_by(Account.number))]


@router.get("/ledger/check", response_model=CheckRead, responses=_E, summary="总账校验（同 scrm finance check）")
def check(session: SessionDep, caller: Caller) -> CheckRead:
    require(caller.viewer, FINANCE, "校验总账")
    result = ledger.run_check(session)
    return CheckRead(ok=result.ok, entries=result.entries, lines=result.lines, closed_months=result.closed_months,
                     problems=result.problems)


@router.post("/ledger/periods", response_model=PeriodRead, status_code=201, responses=_E, summary="月结")
def close_period(body: PeriodCloseBody, session: SessionDep, caller: Caller) -> PeriodRead:
    try:
        month = date.fromisoformat(f"{body.month}-01")
    except ValueError:
        raise ValidationFailed(f"月份不正确：{body.month}", field="month") from None
    return PeriodRead.model_validate(ledger.close_period(session, month, viewer=caller.viewer))



# --- reimbursements and performance -----------------------------------------------------------------------


class ReimbursementCreate(BaseModel):
    agreement_id: int | None = Field(None, description="做单报销：案件；营销费用留空并填写 customer_id")
    customer_id: int | None = None
    category: str = Field(description="做单：交通费、办公用品、下户费、餐饮招待、资料费、其他；营销：广告投放、渠道推广、活动物料、其他")
    amount: int = Field(description="金额（分）")
    spent_date: date | None = None
    approved_by_manager_id: int | None = None
    note: str | None = Field(None, max_length=200)


class ReimbursementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="case 做单报销 | marketing 营销费用")
    agreement_id: int | None
    customer_id: int
    category: str
    amount: int
    spent_date: date
    approved_by_manager_id: int | None
    status: str = Field(description="submitted | confirmed | paid | voided")
    entered_by_staff_id: int | None
    confirmed_at: datetime | None
    paid_method: str | None
    paid_at: datetime | None
    resubmitted_from_id: int | None


class ResubmitBody(BaseModel):
    amount: int | None = Field(None, description="更正后的金额（分），留空沿用")
    category: str | None = None
    note: str | None = Field(None, max_length=200)


class PayBody(BaseModel):
    method: str


class PerformanceLine(BaseModel):
    staff_id: int
    name: str
    signed_count: int
    signed_amount: int
    disbursed_amount: int
    revenue_amount: int = Field(description="实收服务费（结单，扣除退费）")
    success_rate: Decimal


class FunderRank(BaseModel):
    funder_type: str
    count: int
    disbursed_amount: int
    revenue_amount: int


class PerformanceRead(BaseModel):
    staff: list[PerformanceLine]
    funder_types: list[FunderRank]


@router.get("/reimbursements", response_model=list[ReimbursementRead], summary="报销列表")
def list_reimbursements(session: SessionDep, caller: Caller, status: str | None = Query(None),
                        limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0)) -> list[ReimbursementRead]:
    return [ReimbursementRead.model_validate(r[0]) for r in reimbursements.listing(
        session, caller.viewer, status=status, limit=limit, offset=offset)]


@router.post("/reimbursements", response_model=ReimbursementRead, status_code=201, responses=_E, summary="提交报销")
def submit_reimbursement(body: ReimbursementCreate, session: SessionDep, caller: Caller) -> ReimbursementRead:
    return ReimbursementRead.model_validate(reimbursements.submit(
        session, agreement_id=body.agreement_id, customer_id=body.customer_id, category=body.category,
        amount=body.amount, spent_date=body.spent_date, approved_by_manager_id=body.approved_by_manager_id,
        note=body.note, viewer=caller.viewer))


@router.post("/reimbursements/{reimbursement_id}/confirm", response_model=ReimbursementRead, responses=_E,
             summary="确认报销（财务）：记入费用")
def confirm_reimbursement(reimbursement_id: int, session: SessionDep, caller: Caller) -> ReimbursementRead:
    return ReimbursementRead.model_validate(reimbursements.confirm(session, reimbursement_id, viewer=caller.viewer))


@router.post("/reimbursements/{reimbursement_id}/pay", response_model=ReimbursementRead, responses=_E,
             summary="支付报销（财务）")
def pay_reimbursement(reimbursement_id: int, body: PayBody, session: SessionDep, caller: Caller) -> ReimbursementRead:
    return ReimbursementRead.model_validate(reimbursements.pay(session, reimbursement_id, method=body.method,
                                                               viewer=caller.viewer))


@router.post("/reimbursements/{reimbursement_id}/void", response_model=ReimbursementRead, responses=_E,
             summary="作废报销（已确认的冲销入账；已支付的不能作废）")
def void_reimbursement(reimbursement_id: int, body: Reason, session: SessionDep, caller: Caller) -> ReimbursementRead:
    return ReimbursementRead.model_validate(reimbursements.void(session, reimbursement_id, reason=body.reason,
                                                                viewer=caller.viewer))


@router.post("/reimbursements/{reimbursement_id}/resubmit", response_model=ReimbursementRead, status_code=201,
             responses=_E, summary="重新提交已作废的报销")
def resubmit_reimbursement(reimbursement_id: int, body: ResubmitBody, session: SessionDep,
                           caller: Caller) -> ReimbursementRead:
    return ReimbursementRead.model_validate(reimbursements.resubmit(
        session, reimbursement_id, amount=body.amount, category=body.category, note=body.note, viewer=caller.viewer))


@router.get("/performance", response_model=PerformanceRead, responses=_E, summary="财务业绩（按数据范围）")
def read_performance(session: SessionDep, caller: Caller, since: date = Query(..., description="开始日期"),
                     until: date = Query(..., description="结束日期"), department_id: int | None = Query(None),
                     salesperson_id: int | None = Query(None)) -> PerformanceRead:
    lines, funders = performance.report(session, caller.viewer, since=since, until=until,
                                        department_id=department_id, salesperson_id=salesperson_id)
    return PerformanceRead(staff=[PerformanceLine(**vars(x)) for x in lines],
                           funder_types=[FunderRank(**vars(f)) for f in funders])


__all__ = ["router"]
