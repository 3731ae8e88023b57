"""The console lists a user can export to Excel in the background (导出任务), one :class:`Export` each: the
list's own SELECT, rebuilt from the job's stored parameters with the list's own filter and the requester's data
scope, and its columns. ``analytics.export_jobs`` does the rest (count, keyset batches, progress, the file).

The parameters a job stores are what the list page parsed from its query string: a filter dataclass (the loan
list's ``LoanFilter``, the pool's ``PoolFilters``) through ``dataclass_params``, the customer list's query
string as it is (its parser is ``crm.customer_queries.filter_from_params``), or the few keyword filters of the
finance, collections and referral lists. Names and phones are shown as the list shows them (masked where the
list masks them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from analytics import funnel, snapshot_drill
from analytics.export_spec import Column, Export, dataclass_filter
from analytics.report_export import ReportExport
from core import clock
from core.money import fen_to_yuan
from crm import customer_export, customer_queries, pool_service, sources
from crm.models import CUSTOMER_TYPE_LABELS, STAGE_LABELS, Customer, Staff
from crm.scope import Viewer
from finance import agreements, deposits, reimbursements, settlements
from finance import export as finance_export
from finance.models import (
    AGREEMENT_STATUS_LABELS,
    DEPOSIT_STATUS_LABELS,
    FUNDER_KIND_LABELS,
    METHOD_LABELS,
    REIMBURSEMENT_STATUS_LABELS,
    Agreement,
    Deposit,
    Reimbursement,
    Settlement,
)
from lending import applications
from lending.contracts import mask_name
from lending.models import (
    APPLICATION_STATUS_LABELS,
    BUCKET_LABELS,
    INSTALLMENT_STATUS_LABELS,
    Application,
    Contract,
    Loan,
    LoanInstallment,
)
from lending.servicing import bills, loans
from payments import orders, purposes
from payments.models import METHOD_LABELS as PAY_METHOD_LABELS
from payments.models import ORDER_STATUS_LABELS, PaymentOrder
from postloan import cases
from postloan.models import CASE_CLOSE_LABELS, CASE_STATUS_LABELS, RISK_TIER_LABELS, CollectionCase
from referral import ledger, payouts, referrers
from referral.models import REFERRER_KIND_LABELS, WITHDRAWAL_STATUS_LABELS, Referrer, WithdrawalRequest

__all__ = ["KINDS", "LOAN_STATUS", "AgreementFilter", "BoardFilter", "CaseFilter", "DepositFilter", "OrderFilter",
           "ReferrerFilter", "ReimbursementFilter", "SettlementFilter", "WithdrawalFilter"]

LOAN_STATUS = {"active": "在贷", "closed": "已结清"}
KINDS: dict[str, Export] = {}  # job kind -> the list


def register(name: str, export: Export) -> None:
    KINDS[name] = export


def _yuan(fen: int | None) -> Any:
    return None if fen is None else fen_to_yuan(int(fen))


def _local(at: datetime | None) -> str:
    return "" if at is None else clock.ensure_aware(at).astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def _names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    return dict(session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(wanted))).all()) if wanted else {}


# --- 贷款列表 the loan list ---------------------------------------------------------------------------------


def _loan_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    all_, _ = loans._outstanding()  # noqa: SLF001 - the list's own outstanding column
    return (select(Contract.number, Customer.name, Loan.principal_amount, Loan.start_date, Loan.status, Loan.bucket,
                   Loan.overdue_days, all_)
            .select_from(Loan).join(Customer, Customer.id == Loan.customer_id)
            .join(Contract, Contract.id == Loan.contract_id)
            .where(*loans.filter_clauses(viewer, dataclass_filter(loans.LoanFilter, params)),
                   *snapshot_drill.clauses(snapshot_drill.from_params(params))))


register("loans", Export("贷款列表", Loan.id, _loan_query, [
    Column("合同编号", lambda r: r[0]), Column("客户", lambda r: mask_name(r[1])),
    Column("放款本金(元)", lambda r: _yuan(r[2])), Column("放款日", lambda r: _day(r[3])),
    Column("状态", lambda r: LOAN_STATUS.get(r[4], r[4])), Column("账期", lambda r: BUCKET_LABELS.get(r[5], r[5])),
    Column("逾期天数", lambda r: r[6]), Column("未还合计(元)", lambda r: _yuan(r[7] or 0)),
]))


# --- 还款账单 the bills list (every loan's installments) -------------------------------------------------------


def _bill_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(bills.BillFilter, {k: v for k, v in params.items() if k != "loan"})
    flt = replace(flt, loan=dataclass_filter(loans.LoanFilter, params))
    i = LoanInstallment
    return bills.bills_query(viewer, flt, Contract.number, Customer.name, i.number, i.due_date, bills.due_amount(),
                             bills.paid_amount(), i.penalty_amount - i.paid_penalty_amount, i.status
                             ).join(Contract, Contract.id == Loan.contract_id)


register("bills", Export("还款账单", LoanInstallment.id, _bill_query, [
    Column("合同编号", lambda r: r[0]), Column("客户", lambda r: mask_name(r[1])), Column("期次", lambda r: r[2]),
    Column("到期日", lambda r: _day(r[3])), Column("应还(元)", lambda r: _yuan(r[4])),
    Column("已还(元)", lambda r: _yuan(r[5])), Column("未还(元)", lambda r: _yuan(r[4] - r[5])),
    Column("罚息未还(元)", lambda r: _yuan(r[6])),
    Column("状态", lambda r: INSTALLMENT_STATUS_LABELS.get(r[7], r[7])),
]))


# --- 客户列表 the customer list (and 公海 the public pool) -------------------------------------------------------


def _customer_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = customer_queries.filter_from_params(params)
    stmt = customer_queries.filtered(session, viewer, flt, funnel.customer_list_clauses(session, params))
    return customer_export.export_select(stmt)


def _customer_cells(session: Session, rows: list[Row[Any]]) -> Iterable[Sequence[Any]]:
    return customer_export.cells(session, rows)


# a bulk copy of customers' data: access-logged as the console's customer export always was
register("customers", Export("客户列表", Customer.id, _customer_query, header_of=customer_export.header,
                             cells_of=_customer_cells, audit_action="customer.export"))


def _pool_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    return pool_service.pool_query(session, viewer, int(params["pool_id"]),
                                   dataclass_filter(pool_service.PoolFilters, params))


register("pool", Export("公海客户", Customer.id, _pool_query, [
    Column("客户编号", lambda r: r[0].id), Column("姓名", lambda r: r[0].name or ""),
    Column("手机（掩码）", lambda r: r[0].phone_masked or ""), Column("地区", lambda r: r[0].region or ""),
    Column("类型", lambda r: CUSTOMER_TYPE_LABELS.get(r[0].customer_type, r[0].customer_type)),
    Column("等级", lambda r: r[0].grade or ""), Column("阶段", lambda r: STAGE_LABELS.get(r[0].stage, r[0].stage)),
    Column("来源", lambda r: sources.label(r[0].source)),
    Column("进入公海", lambda r: _local(r[0].released_at or r[0].created_at)),
], audit_action="customer.export"))


# --- 财务中心 the finance lists ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementFilter:
    status: str | None = None
    q: str | None = None


def _agreement_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(AgreementFilter, params)
    return agreements.listing_query(viewer, flt.status if flt.status in AGREEMENT_STATUS_LABELS else None, flt.q)


def _agreement_cells(session: Session, rows: list[Row[Any]]) -> Iterable[Sequence[Any]]:
    names = _names(session, [r[0].sales_staff_id for r in rows] + [r[0].case_officer_id for r in rows])
    for a, c, *_ in rows:
        yield [a.number, mask_name(c.name), _yuan(a.loan_amount), a.service_fee_rate,
               _yuan(a.service_fee_fixed_amount), _yuan(a.deposit_amount), a.apr_rate,
               names.get(a.sales_staff_id, ""), names.get(a.case_officer_id, ""), _day(a.signed_date),
               AGREEMENT_STATUS_LABELS.get(a.status, a.status)]


register("agreements", Export("服务协议", Agreement.id, _agreement_query, header_of=lambda _s: [
    "协议编号", "客户", "贷款金额(元)", "服务费率", "固定服务费(元)", "定金(元)", "综合年化", "营销专员", "做单专员",
    "签单日期", "状态"], cells_of=_agreement_cells))


@dataclass(frozen=True)
class DepositFilter:
    status: str | None = None
    held: bool = False


def _deposit_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(DepositFilter, params)
    return deposits.deposit_query(viewer, status=flt.status if flt.status in DEPOSIT_STATUS_LABELS else None,
                                  held=bool(flt.held))


register("deposits", Export("定金", Deposit.id, _deposit_query, [
    Column("编号", lambda r: r[0].id), Column("协议编号", lambda r: r[1].number),
    Column("客户", lambda r: mask_name(r[2].name)), Column("金额(元)", lambda r: _yuan(r[0].amount)),
    Column("已退(元)", lambda r: _yuan(r[0].refunded_amount)),
    Column("方式", lambda r: METHOD_LABELS.get(r[0].method, r[0].method)),
    Column("收款日期", lambda r: _day(r[0].received_date)),
    Column("状态", lambda r: DEPOSIT_STATUS_LABELS.get(r[0].status, r[0].status)),
]))


@dataclass(frozen=True)
class SettlementFilter:
    status: str | None = None
    funder_type: str | None = None
    since: date | None = None
    until: date | None = None


def _settlement_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(SettlementFilter, params)
    return settlements.listing_query(viewer, status=flt.status, funder_type=flt.funder_type, since=flt.since,
                                     until=flt.until)


register("settlements", Export("结算明细", Settlement.id, _settlement_query, header_of=lambda _s: list(
    finance_export.HEADERS), cells_of=finance_export.export_cells))


# --- 催收案件 the collection cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilter:
    status: str = "open"
    bucket: str | None = None
    risk_tier: str | None = None
    mine: bool = False
    unassigned: bool = False


def _case_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(CaseFilter, params)
    return cases.queue_query(viewer, status=flt.status, bucket=flt.bucket, risk_tier=flt.risk_tier,
                             mine=bool(flt.mine), unassigned=bool(flt.unassigned))


def _case_status(case: CollectionCase) -> str:
    label = CASE_STATUS_LABELS.get(case.status, case.status)
    return f"{label}（{CASE_CLOSE_LABELS.get(case.close_reason, case.close_reason)}）" if case.close_reason else label


register("cases", Export("催收案件", CollectionCase.id, _case_query, [
    Column("案件", lambda r: r[0].id), Column("客户", lambda r: mask_name(r[1])),
    Column("手机（掩码）", lambda r: r[2] or ""), Column("逾期天数", lambda r: r[0].overdue_days),
    Column("账期", lambda r: r[0].bucket), Column("风险", lambda r: RISK_TIER_LABELS.get(r[0].risk_tier, r[0].risk_tier)),
    Column("逾期金额(元)", lambda r: _yuan(r[0].overdue_amount)),
    Column("未还合计(元)", lambda r: _yuan(r[0].outstanding_amount)), Column("地区", lambda r: r[0].region or ""),
    Column("催收员", lambda r: r[3] or "待领取"), Column("状态", lambda r: _case_status(r[0])),
]))


# --- 推荐佣金 commission payouts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WithdrawalFilter:
    status: str | None = None


def _withdrawal_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    status = dataclass_filter(WithdrawalFilter, params).status
    return payouts.withdrawals_query(status if status in WITHDRAWAL_STATUS_LABELS else None)


register("withdrawals", Export("佣金提现", WithdrawalRequest.id, _withdrawal_query, [
    Column("编号", lambda r: r[0].id), Column("推荐人", lambda r: r[1].name),
    Column("收款方式", lambda r: payouts.CHANNEL_LABELS.get(r[1].payee_channel or "", "未设置")),
    Column("收款账号（掩码）", lambda r: r[1].payee_account_masked or ""),
    Column("金额(元)", lambda r: _yuan(r[0].amount)),
    Column("状态", lambda r: WITHDRAWAL_STATUS_LABELS.get(r[0].status, r[0].status)),
    Column("申请时间", lambda r: _local(r[0].requested_at)), Column("说明", lambda r: r[0].reason or ""),
]))


@dataclass(frozen=True)
class ReferrerFilter:
    kind: str | None = None
    q: str | None = None


def _referrer_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(ReferrerFilter, params)
    return referrers.referrers_query(kind=flt.kind if flt.kind in REFERRER_KIND_LABELS else None, q=flt.q)


def _referrer_cells(session: Session, rows: list[Row[Any]]) -> Iterable[Sequence[Any]]:
    """A batch of referrers with their commission balances (the ledger's sums, for this batch only)."""
    ids = [r[0].id for r in rows]
    balances = ledger.balances(session, ids)
    parents = dict(session.execute(select(Referrer.id, Referrer.name).where(
        Referrer.id.in_({r[0].parent_id for r in rows if r[0].parent_id}))).all())
    empty = ledger.Balance()
    for (r, *_) in rows:
        b = balances.get(r.id, empty)
        yield [r.code, r.name, REFERRER_KIND_LABELS.get(r.kind, r.kind), parents.get(r.parent_id, ""),
               "启用" if r.status == "active" else "停用", _yuan(b.available), _yuan(b.pending), _yuan(b.held),
               _yuan(b.paid), _yuan(b.total)]


register("referrers", Export("推荐人佣金", Referrer.id, _referrer_query, header_of=lambda _s: [
    "推荐码", "名称", "类型", "上级", "状态", "可提现(元)", "待确认(元)", "提现中(元)", "已发放(元)", "累计净佣金(元)"],
    cells_of=_referrer_cells))

# --- 贷款申请 the application board (every open application, past the board's 500 cards) -------------------


@dataclass(frozen=True)
class BoardFilter:
    product_id: int | None = None
    owner_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    mine: bool = False


def _application_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(BoardFilter, params)
    return applications.board_query(viewer, product_id=flt.product_id, owner_id=flt.owner_id,
                                    date_from=flt.date_from, date_to=flt.date_to, mine=bool(flt.mine))


def _application_cells(session: Session, rows: list[Row[Any]]) -> Iterable[Sequence[Any]]:
    names = _names(session, [r[4] for r in rows])
    now = clock.now()
    for app, visit, node, customer_name, owner_id, product_name, *_ in rows:
        late = visit.sla_due_at is not None and now > clock.ensure_aware(visit.sla_due_at)
        yield [app.id, mask_name(customer_name or ""), product_name, _yuan(app.requested_amount), app.term_months,
               node.name, APPLICATION_STATUS_LABELS.get(app.status, app.status), names.get(owner_id, ""),
               _local(app.created_at), _local(visit.entered_at), "是" if late else "否"]


register("applications", Export("贷款申请", Application.id, _application_query, header_of=lambda _s: [
    "申请编号", "客户", "产品", "申请金额(元)", "期数", "当前节点", "状态", "客户负责人", "申请时间", "进入节点时间",
    "超时"], cells_of=_application_cells))


# --- 支付订单 payment and withholding orders ----------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilter:
    method: str | None = None
    status: str | None = None


def _order_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    flt = dataclass_filter(OrderFilter, params)
    stmt = orders.listing_query(method=flt.method if flt.method in PAY_METHOD_LABELS else None,
                                status=flt.status if flt.status in ORDER_STATUS_LABELS else None)
    return stmt.add_columns(Customer.name).outerjoin(Customer, Customer.id == PaymentOrder.customer_id)


register("payment_orders", Export("支付订单", PaymentOrder.id, _order_query, [
    Column("商户订单号", lambda r: r[0].out_trade_no), Column("说明", lambda r: r[0].description),
    Column("第几次", lambda r: r[0].attempt_no), Column("方式", lambda r: PAY_METHOD_LABELS.get(r[0].method, r[0].method)),
    Column("用途", lambda r: purposes.label(r[0].purpose)), Column("客户", lambda r: mask_name(r[1]) if r[1] else ""),
    Column("金额(元)", lambda r: _yuan(r[0].total_amount)), Column("实付(元)", lambda r: _yuan(r[0].paid_amount)),
    Column("状态", lambda r: ORDER_STATUS_LABELS.get(r[0].status, r[0].status)),
    Column("复核原因", lambda r: r[0].review_reason or ""), Column("创建时间", lambda r: _local(r[0].created_at)),
    Column("支付时间", lambda r: _local(r[0].paid_at)),
]))


# --- 做单报销 reimbursements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReimbursementFilter:
    status: str | None = None


def _reimbursement_query(session: Session, viewer: Viewer, params: dict[str, Any]) -> Select[Any]:
    status = dataclass_filter(ReimbursementFilter, params).status
    return reimbursements.listing_query(viewer, status=status if status in REIMBURSEMENT_STATUS_LABELS else None)


def _reimbursement_cells(session: Session, rows: list[Row[Any]]) -> Iterable[Sequence[Any]]:
    names = _names(session, [s for r in rows for s in (r[0].confirmed_by_staff_id, r[0].paid_by_staff_id,
                                                        r[0].entered_by_staff_id)])
    for r, c, a, settlement, *_ in rows:
        yield [r.id, mask_name(c.name), a.number if a else "营销费用",
               FUNDER_KIND_LABELS.get(settlement.funder_type, settlement.funder_type) if settlement else "",
               _yuan(r.amount), r.category, _day(r.spent_date), names.get(r.confirmed_by_staff_id, ""),
               _local(r.confirmed_at), names.get(r.paid_by_staff_id, ""),
               METHOD_LABELS.get(r.paid_method, r.paid_method or ""), _local(r.paid_at),
               names.get(r.entered_by_staff_id, ""), REIMBURSEMENT_STATUS_LABELS.get(r.status, r.status), r.note or ""]


register("reimbursements", Export("做单报销", Reimbursement.id, _reimbursement_query, header_of=lambda _s: [
    "编号", "客户", "协议编号", "资方类型", "金额(元)", "类别", "发生日期", "财务确认", "确认时间", "付款人", "付款方式",
    "付款时间", "录入人", "状态", "备注"], cells_of=_reimbursement_cells))

register("report", ReportExport())  # type: ignore[arg-type] - computed rows: the same interface, not a SELECT
