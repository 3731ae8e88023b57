"""Staff JSON API of servicing (贷后): loans with their schedule, repayments and reversals, the collections queue,
collection actions and assignment. The same lending.servicing functions the console calls; data-scoped."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from admin.api.deps import ERROR_RESPONSES, Caller
from admin.pagination import MAX_OFFSET
from admin.schemas import ErrorBody
from core.web import SessionDep
from lending.servicing import loans, prepayments, refunds, repayments, restructures, state, versions, waivers
from postloan import actions as collections

router = APIRouter(prefix="/api/v1/lending", tags=["lending-servicing"], responses=ERROR_RESPONSES)

_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "不存在或不在您的数据范围内"}}
_403: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "角色无权执行此操作"}}
_409: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "流水号已用于另一笔还款、贷款已结清、已冲正"}}
_422: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody,
                                               "description": "输入不正确；overpayment：超过应还金额（details.payable，分）"}}


class InstallmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    due_date: date
    status: str = Field(description="pending | overdue | paid")
    principal_amount: int
    interest_amount: int
    fee_amount: int
    penalty_amount: int = Field(description="罚息（分），截至 penalty_through_date")
    paid_principal_amount: int
    paid_interest_amount: int
    paid_fee_amount: int
    paid_penalty_amount: int
    outstanding_amount: int = Field(description="未还合计（分），含罚息")
    penalty_through_date: date | None
    paid_off_date: date | None


class LoanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contract_id: int
    application_id: int
    customer_id: int
    principal_amount: int
    status: str = Field(description="active | closed")
    start_date: date
    overdue_days: int = Field(description="自最早未还一期的应还日起算；未逾期为 0")
    bucket: str = Field(description="C | M1 | M2 | M3 | M3+")
    collector_staff_id: int | None
    closed_at: datetime | None


class LoanListItem(LoanRead):
    contract_number: str
    customer_phone_masked: str | None
    outstanding_amount: int
    overdue_amount: int


class LoanDetail(LoanRead):
    payable_amount: int = Field(description="今天可还（分）：已到期各期（含罚息）与当期")
    installments: list[InstallmentRead]


class RepaymentCreate(BaseModel):
    amount: int = Field(gt=0, description="还款金额（分）")
    external_reference: str = Field(min_length=1, max_length=64,
                                    description="银行回单号或渠道流水号（唯一）：同一流水号重复提交返回同一笔还款")
    channel: str = Field("bank_transfer", description="bank_transfer | withholding | wechat | alipay | cash | other")
    repayment_date: date | None = Field(None, description="还款（起息）日期，默认今天（上海），不能晚于今天")
    note: str | None = Field(None, max_length=300)
    prepayment_mode: str | None = Field(None, description="客户选择提前还款时：keep_term 期限不变减少月供 | "
                                                          "keep_installment 月供不变缩短期限。超过应还的金额按提前还款入账"
                                                          "（等于结清金额时提前结清）；不填则超过应还被拒绝")
    keep_excess: bool = Field(False, description="不提前还款时，超过应还的部分记为溢缴款（可部分或全部退款），而不是拒绝")


class RepaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    kind: str = Field(description="repayment | reversal | waiver | capitalisation（重组的逾期资本化）")
    purpose: str = Field(description="installment 还款 | prepayment 部分提前还款 | payoff 提前结清 | waiver 减免 | "
                                     "capitalisation 逾期资本化")
    amount: int
    repayment_date: date
    channel: str
    external_reference: str | None
    reversal_of_id: int | None
    note: str | None
    by_staff_id: int | None
    created_at: datetime


class ReversalCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=300, description="冲正原因")


class RefundCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=300, description="退款原因")
    reference: str | None = Field(None, max_length=64,
                                  description="转出款项的流水号（银行转账、现金等；微信支付/代扣原路退回时不填）")


class OverpaymentRefundCreate(RefundCreate):
    amount: int = Field(gt=0, description="退款金额（分），不超过该笔还款的溢缴款；其余仍为溢缴款")


class RefundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    repayment_id: int
    kind: str = Field(description="reversed 冲正退款（整笔） | overpayment 溢缴款退款（部分或全部）")
    amount: int
    route: str = Field(description="payments 原路退回（微信支付/代扣） | manual 财务转出")
    external_reference: str
    status: str = Field(description="submitted 退款处理中 | succeeded 已退款 | failed 退款失败（可重新退款）")
    reason: str
    by_staff_id: int | None
    created_at: datetime


class RestructureCreate(BaseModel):
    kind: str = Field(description="extension 展期 | restructure 重组")
    extra_periods: int | None = Field(None, ge=1, description="展期：在剩余期数上增加的期数")
    periods: int | None = Field(None, ge=1, description="重组：未到期本金分摊的总期数")
    annual_rate: Decimal | None = Field(None, description="重组：新的年利率（小数，0.08 即 8%），不填沿用原利率")
    capitalise: bool = Field(False, description="重组：把已逾期的本金、利息、费用和罚息（按批准当日）计入新本金")
    reason: str = Field(min_length=1, max_length=300)


class RestructureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    kind: str
    first_period: int = Field(description="新条款替换的第一期")
    periods: int
    balance_amount: int = Field(description="新条款偿还的未到期本金（分）")
    apr_rate: Decimal = Field(description="新条款的综合年化成本")
    status: str = Field(description="requested | approved | rejected")
    reason: str
    requested_by_staff_id: int | None
    decided_by_staff_id: int | None
    decision_note: str | None
    schedule_version_id: int | None
    annual_rate: Decimal | None = Field(description="重组的新年利率（None：沿用原利率）")
    capitalised_amount: int = Field(description="计入新本金的逾期金额（分；批准后为批准当日的金额）")


class Decision(BaseModel):
    note: str | None = Field(None, max_length=300)


class QueueItem(BaseModel):
    loan_id: int
    contract_number: str
    customer_id: int
    customer_phone_masked: str | None
    overdue_days: int
    bucket: str
    overdue_amount: int
    outstanding_amount: int
    collector_staff_id: int | None
    collector_name: str | None
    last_action_at: datetime | None
    promise_status: str | None = Field(description="最近一次承诺：open | kept | broken")


class ActionCreate(BaseModel):
    kind: str = Field(description="call | message | promise | note")
    outcome: str | None = Field(None, max_length=40)
    note: str | None = Field(None, max_length=500)
    promised_date: date | None = Field(None, description="承诺还款日期（kind=promise 必填，不早于今天）")
    promised_amount: int | None = Field(None, gt=0, description="承诺还款金额（分，kind=promise 必填）")


class ActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    kind: str
    outcome: str | None
    note: str | None
    bucket: str
    overdue_days: int
    by_staff_id: int | None
    at: datetime


class AssignBody(BaseModel):
    collector_id: int | None = Field(description="催收员（催收或风控角色）；null 取消分配")


@router.get("/loans", response_model=list[LoanListItem], summary="贷款列表（按数据范围，可按状态、账期筛选）")
def list_loans(session: SessionDep, caller: Caller,
               status: str | None = Query(None, description="active | closed"),
               bucket: str | None = Query(None, description="C | M1 | M2 | M3 | M3+ | overdue（M1 及以上）"),
               customer_id: int | None = Query(None), limit: int = Query(100, ge=1, le=500),
               offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> list[LoanListItem]:
    rows = loans.list_loans(session, caller.viewer, status=status, bucket=bucket, customer_id=customer_id,
                            limit=limit, offset=offset)
    return [LoanListItem(**LoanRead.model_validate(r.loan).model_dump(), contract_number=r.contract_number,
                         customer_phone_masked=r.customer.phone_masked, outstanding_amount=r.outstanding_amount,
                         overdue_amount=r.overdue_amount) for r in rows]


def _detail(session: SessionDep, loan: Any) -> LoanDetail:
    return LoanDetail(**LoanRead.model_validate(loan).model_dump(),
                      payable_amount=repayments.payable(session, loan) if loan.status == "active" else 0,
                      installments=[InstallmentRead.model_validate(i) for i in state.installments(session, loan.id)])


@router.get("/loans/{loan_id}", response_model=LoanDetail, responses=_404, summary="贷款详情与还款计划（应还 / 已还 / 未还 / 罚息）")
def read_loan(loan_id: int, session: SessionDep, caller: Caller) -> LoanDetail:
    return _detail(session, loans.get_loan(session, caller.viewer, loan_id))


@router.post("/loans/{loan_id}/repayments", response_model=RepaymentRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="登记还款（财务）",
             description="按最早到期的一期先冲销，期内默认 罚息 → 费用 → 利息 → 本金（产品可设）。超过已到期各期与当期应还"
                         "的金额被拒绝（422 overpayment，不入账）。同一流水号再次提交：内容一致返回同一笔还款，"
                         "不一致 409 repayment_reference_taken。成功后发送事件 lending.repayment_recorded，"
                         "结清时发送 lending.loan_closed。")
def record_repayment(loan_id: int, body: RepaymentCreate, session: SessionDep, caller: Caller) -> RepaymentRead:
    repayment = repayments.record_repayment(
        session, loan_id, viewer=caller.viewer, amount=body.amount, external_reference=body.external_reference,
        channel=body.channel, repayment_date=body.repayment_date, note=body.note,
        prepayment_mode=body.prepayment_mode, keep_excess=body.keep_excess)
    return RepaymentRead.model_validate(repayment)


class QuotePeriod(BaseModel):
    number: int
    due_date: date
    principal_amount: int
    interest_amount: int
    fee_amount: int
    total_amount: int
    balance_amount: int
    prepayment_amount: int = Field(description="本期提前归还的本金（含在 principal_amount 内）")


class PrepaymentQuoteRead(BaseModel):
    loan_id: int
    date: date
    kind: str = Field(description="payoff 提前结清 | prepayment 部分提前还款")
    mode: str | None = Field(description="keep_term | keep_installment（部分提前还款）")
    period: int = Field(description="提前还款所在期（当期）")
    due: dict[str, int] = Field(description="截至该日已到期未还（分）：penalty / fee / interest / principal")
    due_amount: int
    outstanding_principal_amount: int = Field(description="未到期本金（分）")
    principal_amount: int = Field(description="提前归还的本金（分）")
    accrued_interest_amount: int = Field(description="提前归还本金自当期起息日至该日按产品计息天数计的利息（分）")
    fee_amount: int = Field(description="当期费用（提前结清且当期已开始时）")
    charge_amount: int = Field(description="提前还款违约金（分）")
    total_amount: int = Field(description="应付合计（分）")
    payoff_amount: int = Field(description="该日提前结清所需（分）")
    schedule: list[QuotePeriod] = Field(description="办理后的还款计划")


class ScheduleVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    reason: str = Field(description="original | prepayment | payoff | extension | restructure")
    effective_date: date
    repayment_id: int | None
    mode: str | None
    rows: list[dict[str, Any]]
    installment_amount: int | None
    created_at: datetime


@router.get("/loans/{loan_id}/prepayment-quote", response_model=PrepaymentQuoteRead, responses={**_404, **_422},
            summary="提前还款试算（任意日期）",
            description="不带 amount 为提前结清；带 amount（分，客户支付的金额）为部分提前还款：先还清已到期，再按金额"
                        "提前归还本金（含其应计利息与违约金）。日期早于最近一笔交易、不早于到期日、金额超过结清金额："
                        "422 prepayment_refused。不写入任何数据。")
def prepayment_quote(loan_id: int, session: SessionDep, caller: Caller,
                     on: date = Query(alias="date", description="提前还款日期 YYYY-MM-DD"),
                     amount: int | None = Query(None, gt=0, description="支付金额（分），不填为提前结清"),
                     mode: str = Query("keep_term", description="keep_term | keep_installment")
                     ) -> PrepaymentQuoteRead:
    loan = loans.get_loan(session, caller.viewer, loan_id)
    return PrepaymentQuoteRead(**prepayments.quote(session, loan, on, amount=amount, mode=mode).as_dict())


@router.get("/loans/{loan_id}/schedule-versions", response_model=list[ScheduleVersionRead], responses=_404,
            summary="还款计划的各个版本（原始计划与每次重算），旧的在前")
def schedule_versions(loan_id: int, session: SessionDep, caller: Caller) -> list[ScheduleVersionRead]:
    loans.get_loan(session, caller.viewer, loan_id)
    return [ScheduleVersionRead.model_validate(v) for v in versions.history(session, loan_id)]


@router.get("/loans/{loan_id}/repayments", response_model=list[RepaymentRead], responses=_404,
            summary="还款记录（含冲正），新的在前")
def list_repayments(loan_id: int, session: SessionDep, caller: Caller) -> list[RepaymentRead]:
    loans.get_loan(session, caller.viewer, loan_id)
    return [RepaymentRead.model_validate(r) for r in loans.repayments(session, loan_id)]


@router.post("/repayments/{repayment_id}/reversal", response_model=RepaymentRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="冲正一笔还款（只能一次）",
             description="写入冲正记录与反向冲销；其后的每笔还款按日期顺序重新冲销（回溯重算，追加差额分录），"
                         "贷款按未还此笔重新计算（含罚息），已结清的贷款重新打开。其后有提前还款时 409 reversal_refused。"
                         "重复冲正 409 already_reversed。发送事件 lending.repayment_reversed。")
def reverse_repayment(repayment_id: int, body: ReversalCreate, session: SessionDep, caller: Caller) -> RepaymentRead:
    return RepaymentRead.model_validate(repayments.reverse_repayment(session, repayment_id, viewer=caller.viewer,
                                                                     reason=body.reason))


@router.post("/repayments/{repayment_id}/refund", response_model=RefundRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="退还一笔已冲正的还款（全额，只能一次）",
             description="微信支付、代扣收到的款项经支付渠道原路退回；其他渠道由财务转出后填写转出流水号。"
                         "未冲正或已退款 409 refund_refused。")
def refund_repayment(repayment_id: int, body: RefundCreate, session: SessionDep, caller: Caller) -> RefundRead:
    return RefundRead.model_validate(refunds.refund_reversed(session, repayment_id, viewer=caller.viewer,
                                                             reason=body.reason, reference=body.reference))


@router.post("/repayments/{repayment_id}/refund-overpayment", response_model=RefundRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="退还一笔还款的溢缴款（部分或全部）",
             description="原路退回（微信支付/代扣）或登记财务转出；超过溢缴款 409 refund_refused，其余仍为溢缴款。")
def refund_overpayment(repayment_id: int, body: OverpaymentRefundCreate, session: SessionDep,
                       caller: Caller) -> RefundRead:
    return RefundRead.model_validate(refunds.refund_overpayment(
        session, repayment_id, viewer=caller.viewer, amount=body.amount, reason=body.reason, reference=body.reference))


@router.get("/loans/{loan_id}/refunds", response_model=list[RefundRead], responses=_404, summary="退款记录")
def list_refunds(loan_id: int, session: SessionDep, caller: Caller) -> list[RefundRead]:
    loans.get_loan(session, caller.viewer, loan_id)
    return [RefundRead.model_validate(r) for r in refunds.refunds(session, loan_id)]


@router.post("/loans/{loan_id}/restructures", response_model=RestructureRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="申请展期或重组（未到期本金按新期数重算）",
             description="新条款的综合年化成本超过上限 422 apr_above_cap；已结清 409 loan_closed。")
def request_restructure(loan_id: int, body: RestructureCreate, session: SessionDep, caller: Caller) -> RestructureRead:
    return RestructureRead.model_validate(restructures.request(
        session, loan_id, viewer=caller.viewer, kind=body.kind, reason=body.reason, extra_periods=body.extra_periods,
        periods=body.periods, annual_rate=body.annual_rate, capitalise=body.capitalise))


@router.get("/loans/{loan_id}/restructures", response_model=list[RestructureRead], responses=_404,
            summary="展期/重组申请，新的在前")
def list_restructures(loan_id: int, session: SessionDep, caller: Caller) -> list[RestructureRead]:
    loans.get_loan(session, caller.viewer, loan_id)
    return [RestructureRead.model_validate(x) for x in restructures.restructures(session, loan_id)]


@router.post("/restructures/{restructure_id}/approve", response_model=RestructureRead,
             responses={**_403, **_404, **_409, **_422}, summary="批准展期/重组（风控、经理、管理员；非申请人）",
             description="改写未到期各期并追加还款计划版本（旧版本保留）。")
def approve_restructure(restructure_id: int, body: Decision, session: SessionDep, caller: Caller) -> RestructureRead:
    return RestructureRead.model_validate(restructures.approve(session, restructure_id, viewer=caller.viewer,
                                                               note=body.note))


@router.post("/restructures/{restructure_id}/reject", response_model=RestructureRead,
             responses={**_403, **_404, **_409}, summary="驳回展期/重组申请")
def reject_restructure(restructure_id: int, body: Decision, session: SessionDep, caller: Caller) -> RestructureRead:
    return RestructureRead.model_validate(restructures.reject(session, restructure_id, viewer=caller.viewer,
                                                              note=body.note))


@router.get("/collections/queue", response_model=list[QueueItem], responses=_403,
            summary="催收队列（催收员看自己的，经理看全部）")
def queue(session: SessionDep, caller: Caller, bucket: str | None = Query(None, description="M1 | M2 | M3 | M3+"),
          mine: bool = Query(False, description="只看分配给我的"),
          broken: bool = Query(False, description="只看最近承诺已违约的")) -> list[QueueItem]:
    rows = collections.queue(session, caller.viewer, bucket=bucket, mine=mine, broken_only=broken)
    return [QueueItem(loan_id=r.loan.id, contract_number=r.contract_number, customer_id=r.loan.customer_id,
                      customer_phone_masked=r.phone_masked, overdue_days=r.loan.overdue_days, bucket=r.loan.bucket,
                      overdue_amount=r.overdue_amount, outstanding_amount=r.outstanding_amount,
                      collector_staff_id=r.loan.collector_staff_id, collector_name=r.collector_name,
                      last_action_at=r.last_action_at, promise_status=r.promise_status) for r in rows]


@router.get("/loans/{loan_id}/collection-actions", response_model=list[ActionRead], responses=_404,
            summary="催收记录")
def list_actions(loan_id: int, session: SessionDep, caller: Caller) -> list[ActionRead]:
    loans.get_loan(session, caller.viewer, loan_id)
    return [ActionRead.model_validate(a) for a in collections.actions(session, loan_id)]


@router.post("/loans/{loan_id}/collection-actions", response_model=ActionRead, status_code=201,
             responses={**_403, **_404, **_422}, summary="记录催收动作（电话、消息、承诺还款、备注）")
def log_action(loan_id: int, body: ActionCreate, session: SessionDep, caller: Caller) -> ActionRead:
    return ActionRead.model_validate(collections.log_action(
        session, loan_id, viewer=caller.viewer, kind=body.kind, outcome=body.outcome, note=body.note,
        promised_date=body.promised_date, promised_amount=body.promised_amount))


@router.post("/loans/{loan_id}/collector", response_model=LoanRead, responses={**_403, **_404, **_422},
             summary="分配催收员（经理、管理员）")
def assign(loan_id: int, body: AssignBody, session: SessionDep, caller: Caller) -> LoanRead:
    return LoanRead.model_validate(collections.assign(session, loan_id, body.collector_id, viewer=caller.viewer))


class WaiverCreate(BaseModel):
    installment_number: int = Field(ge=1, description="期数")
    component: str = Field(description="penalty 罚息 | interest 利息 | fee 费用")
    amount: int = Field(gt=0, description="减免金额（分），不超过该期该项尚欠")
    reason: str = Field(min_length=1, max_length=300)


class WaiverDecision(BaseModel):
    note: str | None = Field(None, max_length=300)


class WaiverRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    installment_id: int
    component: str
    amount: int
    status: str = Field(description="requested | approved | rejected")
    reason: str
    requested_by_staff_id: int | None
    requested_at: datetime
    decided_by_staff_id: int | None
    decided_at: datetime | None
    decision_note: str | None
    repayment_id: int | None = Field(description="批准后入账的减免交易（lending_repayment，kind=waiver）")


class WaiverLimitBody(BaseModel):
    max_amount: int | None = Field(ge=0, description="该角色单笔减免审批上限（分）；null 取消该角色的审批权限")


@router.post("/loans/{loan_id}/waivers", response_model=WaiverRead, status_code=201,
             responses={**_403, **_404, **_409, **_422}, summary="申请减免（罚息、利息或费用）")
def request_waiver(loan_id: int, body: WaiverCreate, session: SessionDep, caller: Caller) -> WaiverRead:
    return WaiverRead.model_validate(waivers.request_waiver(
        session, loan_id, viewer=caller.viewer, installment_number=body.installment_number,
        component=body.component, amount=body.amount, reason=body.reason))


@router.get("/loans/{loan_id}/waivers", response_model=list[WaiverRead], responses=_404, summary="贷款的减免申请")
def loan_waivers(loan_id: int, session: SessionDep, caller: Caller) -> list[WaiverRead]:
    loans.get_loan(session, caller.viewer, loan_id)
    return [WaiverRead.model_validate(x) for x in waivers.waivers(session, loan_id=loan_id)]


@router.post("/waivers/{waiver_id}/approve", response_model=WaiverRead, responses={**_403, **_404, **_409, **_422},
             summary="批准减免（复核）并入账",
             description="审批人不能是申请人；其角色须配置了减免审批额度，金额不超过额度（403 waiver_above_limit）；"
                         "已审批 409 waiver_decided。批准后作为一笔 kind=waiver 的交易入账。")
def approve_waiver(waiver_id: int, body: WaiverDecision, session: SessionDep, caller: Caller) -> WaiverRead:
    return WaiverRead.model_validate(waivers.approve_waiver(session, waiver_id, viewer=caller.viewer, note=body.note))


@router.post("/waivers/{waiver_id}/reject", response_model=WaiverRead, responses={**_403, **_404, **_409},
             summary="驳回减免")
def reject_waiver(waiver_id: int, body: WaiverDecision, session: SessionDep, caller: Caller) -> WaiverRead:
    return WaiverRead.model_validate(waivers.reject_waiver(session, waiver_id, viewer=caller.viewer, note=body.note))


@router.get("/waiver-limits", response_model=dict[str, int], summary="各角色的减免审批额度（分）")
def waiver_limits(session: SessionDep, caller: Caller) -> dict[str, int]:
    return waivers.limits(session)


@router.put("/waiver-limits/{role}", response_model=dict[str, int], responses={**_403, **_422},
            summary="设置角色的减免审批额度（管理员）")
def set_waiver_limit(role: str, body: WaiverLimitBody, session: SessionDep, caller: Caller) -> dict[str, int]:
    waivers.set_limit(session, role, body.max_amount, viewer=caller.viewer)
    return waivers.limits(session)


__all__ = ["router"]
