"""Payment endpoints: my bills, pay this bill, my fees (an agreement's deposit 定金), pay this fee (JSAPI, the signed ``wx.requestPayment`` parameters), the
payment's result, and the customer's withholding (代扣) authorisations. Everything is scoped to the
logged-in customer: another customer's loan or payment is a 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from core.errors import NotFound
from core.web import SessionDep
from finance import payment_purposes as fee_purposes
from finance.models import Agreement, Settlement
from lending.models import Loan
from lending.payment_purposes import PURPOSE, current_bill
from miniprogram_api.catalog import yuan
from miniprogram_api.deps import Customer
from miniprogram_api.errors import MpErrorCode
from miniprogram_api.exceptions import LoanNotFound
from miniprogram_api.responses import (
    ERROR_RESPONSES,
    AuthorizationList,
    AuthorizationOut,
    BillList,
    FeeList,
    PaymentResult,
    PayOrder,
)
from miniprogram_api.schemas import to_fen
from payments import checkout, orders, withholding
from payments.exceptions import ProviderUnavailable
from payments.models import ORDER_STATUS_LABELS, PaymentOrder, WithholdingAuthorization

router = APIRouter(responses=ERROR_RESPONSES)


class PaymentNotFound(NotFound):
    code = MpErrorCode.PAYMENT_NOT_FOUND
    message = "支付记录不存在"


def _my_loan(session: Any, customer_id: int, loan_id: int) -> Loan:
    loan = session.get(Loan, loan_id)
    if loan is None or loan.customer_id != customer_id:
        raise LoanNotFound()
    return loan


@router.get("/bills", summary="我的账单：每笔贷款今天应还的金额", tags=["还款"], response_model=BillList)
def my_bills(ident: Customer, session: SessionDep) -> dict[str, Any]:
    bills = []
    for loan in session.scalars(select(Loan).where(Loan.customer_id == ident.customer_id, Loan.status == "active")
                                .order_by(Loan.id)):
        bill = current_bill(session, loan)
        if bill is None:
            continue
        bills.append({"loan_id": loan.id, "period": bill.period, "due_date": bill.due_date, "amount": yuan(bill.amount),
                      "overdue": bill.overdue, "title": f"贷款 #{loan.id} 第 {bill.period} 期"
                      + ("（含逾期）" if bill.overdue else "")})
    return {"bills": bills}


@router.post("/bills/{loan_id}/pay", summary="还这笔账单：下单并返回 wx.requestPayment 参数", tags=["还款"], response_model=PayOrder)
def pay_bill(loan_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    loan = _my_loan(session, ident.customer_id, loan_id)
    bill = current_bill(session, loan)
    if bill is None:
        raise NotFound("这笔贷款今天没有应还金额", code=MpErrorCode.NOTHING_DUE)
    order, params = checkout.start_jsapi(session, purpose=PURPOSE, obligation_ref=bill.obligation_ref,
                                         customer_id=ident.customer_id, amount=bill.amount,
                                         description=f"贷款 #{loan.id} 第 {bill.period} 期还款", openid=ident.openid)
    return {"out_trade_no": order.out_trade_no, "amount": yuan(order.total_amount), "status": order.status,
            "status_label": ORDER_STATUS_LABELS[order.status], "pay_params": params or None}


@router.get("/fees", summary="我的待付费用：签单的定金（可在线支付）", tags=["还款"], response_model=FeeList)
def my_fees(ident: Customer, session: SessionDep) -> dict[str, Any]:
    fees = []
    for agreement in session.scalars(select(Agreement).where(Agreement.customer_id == ident.customer_id,
                                                             Agreement.status.in_(("approved", "working")))
                                     .order_by(Agreement.id)):
        bill = fee_purposes.deposit_bill(session, agreement)
        if bill is not None:
            fees.append({"agreement_id": agreement.id, "settlement_id": None, "kind": "deposit", "title": bill.title,
                         "amount": yuan(bill.amount)})
    for settlement in session.scalars(select(Settlement).join(Agreement, Agreement.id == Settlement.agreement_id)
                                      .where(Agreement.customer_id == ident.customer_id, Settlement.status == "charged")
                                      .order_by(Settlement.id)):
        bill = fee_purposes.settlement_bill(session, settlement)
        if bill is not None:
            fees.append({"agreement_id": bill.agreement_id, "settlement_id": settlement.id, "kind": "settlement",
                         "title": bill.title, "amount": yuan(bill.amount)})
    return {"fees": fees}


@router.post("/fees/deposit/{agreement_id}/pay", summary="支付定金：下单并返回 wx.requestPayment 参数", tags=["还款"], response_model=PayOrder)
def pay_deposit(agreement_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or agreement.customer_id != ident.customer_id:
        raise NotFound("协议不存在", code=MpErrorCode.AGREEMENT_NOT_FOUND)
    order, params = fee_purposes.pay_deposit(session, agreement, openid=ident.openid)
    return {"out_trade_no": order.out_trade_no, "amount": yuan(order.total_amount), "status": order.status,
            "status_label": ORDER_STATUS_LABELS[order.status], "pay_params": params or None}


@router.post("/fees/settlement/{settlement_id}/pay", summary="支付服务费（结算的微信部分）：下单并返回 wx.requestPayment 参数",
             tags=["还款"], response_model=PayOrder)
def pay_settlement(settlement_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    settlement = session.get(Settlement, settlement_id)
    agreement = session.get(Agreement, settlement.agreement_id) if settlement else None
    if agreement is None or agreement.customer_id != ident.customer_id:
        raise NotFound("结算不存在", code=MpErrorCode.SETTLEMENT_NOT_FOUND)
    order, params = fee_purposes.pay_settlement(session, settlement, openid=ident.openid)
    return {"out_trade_no": order.out_trade_no, "amount": yuan(order.total_amount), "status": order.status,
            "status_label": ORDER_STATUS_LABELS[order.status], "pay_params": params or None}


@router.get("/payments/{out_trade_no}", summary="支付结果（未知时向微信支付查询一次）", tags=["还款"], response_model=PaymentResult)
def payment_result(out_trade_no: str, ident: Customer, session: SessionDep) -> dict[str, Any]:
    order = orders.by_out_trade_no(session, out_trade_no)
    if order is None or order.customer_id != ident.customer_id:
        raise PaymentNotFound()
    if order.status in ("submitted", "unknown"):
        try:
            orders.poll(session, order.id)
        except ProviderUnavailable:
            pass  # the answer stays "not known yet"; the notification or the periodic poll will tell
    return _payment(order)


def _payment(order: PaymentOrder) -> dict[str, Any]:
    paid = order.status in ("succeeded", "reconciled")
    done = "支付成功" if order.purpose == fee_purposes.PURPOSE else "还款成功"
    message = {"succeeded": done, "reconciled": done, "review": "已收到付款，正在核对，请勿重复支付",
               "refunded": "款项已原路退回", "failed": "支付失败", "closed": "订单已关闭"}.get(
        order.status, "支付结果确认中")
    return {"out_trade_no": order.out_trade_no, "amount": yuan(order.total_amount), "status": order.status,
            "status_label": ORDER_STATUS_LABELS[order.status], "paid": paid, "message": message,
            "paid_at": order.paid_at, "method": order.method}


# --- withholding authorisations (代扣授权) -------------------------------------------------------

class AuthorizationIn(BaseModel):
    account_no: str = Field(..., max_length=30, description="银行卡号")
    holder_name: str = Field(..., max_length=40, description="持卡人姓名")
    bank_name: str = Field(..., max_length=40, description="开户银行")
    max_amount: str = Field(..., max_length=20, description="单笔代扣上限（元）")


class RevokeIn(BaseModel):
    reason: str = Field(..., max_length=200)


def _authorization(row: WithholdingAuthorization) -> dict[str, Any]:
    return {"id": row.id, "account": row.account_masked, "bank_name": row.bank_name, "scope": row.scope.split(","),
            "max_amount": yuan(row.max_amount), "status": row.status, "signed_at": row.signed_at,
            "revoked_at": row.revoked_at}


@router.get("/withholding/authorizations", summary="我的代扣授权", tags=["还款"], response_model=AuthorizationList)
def my_authorizations(ident: Customer, session: SessionDep) -> dict[str, Any]:
    rows = session.scalars(select(WithholdingAuthorization).where(
        WithholdingAuthorization.customer_id == ident.customer_id).order_by(WithholdingAuthorization.id.desc()))
    return {"authorizations": [_authorization(r) for r in rows]}


@router.post("/withholding/authorizations", summary="授权代扣贷款还款", tags=["还款"], response_model=AuthorizationOut)
def authorize(body: AuthorizationIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    row = withholding.authorize(session, customer_id=ident.customer_id, account_no=body.account_no,
                                holder_name=body.holder_name, bank_name=body.bank_name, scope=[PURPOSE],
                                max_amount=to_fen(body.max_amount, "max_amount") or 0, signed_via="miniprogram")
    return _authorization(row)


@router.post("/withholding/authorizations/{authorization_id}/revoke", summary="撤销代扣授权", tags=["还款"], response_model=AuthorizationOut)
def revoke(authorization_id: int, body: RevokeIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    row = session.get(WithholdingAuthorization, authorization_id)
    if row is None or row.customer_id != ident.customer_id:
        raise NotFound("代扣授权不存在", code=MpErrorCode.AUTHORIZATION_NOT_FOUND)
    return _authorization(withholding.revoke(session, row.id, reason=body.reason, staff_id=None))
