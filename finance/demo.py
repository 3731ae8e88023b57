"""Demo data of the finance center for `scrm seed-demo`: a case in every state, so `make run` shows a populated
finance center. Runs once per database (skipped when any agreement exists); every money movement goes through
the same services as the console, so the ledger balances and `scrm finance check` passes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from crm.models import Customer, Staff, Visit, VisitStatus
from crm.scope import Viewer
from finance import agreements, deposits, ledger, payment_purposes, reimbursements, settlements
from finance.models import Agreement, FeeType


def _staff(session: Session, username: str) -> Staff | None:
    return session.scalar(select(Staff).where(Staff.username == username))


def _arrived(session: Session, customer: Customer, inviter: Staff) -> None:
    now = clock.now()
    if session.scalar(select(Visit.id).where(Visit.customer_id == customer.id,
                                             Visit.status == VisitStatus.ARRIVED)) is None:
        session.add(Visit(customer_id=customer.id, inviter_id=inviter.id, department_id=inviter.department_id,
                          scheduled_at=now - timedelta(days=3), ends_at=now - timedelta(days=3, hours=-1),
                          status=VisitStatus.ARRIVED, channel="staff", arrived_at=now - timedelta(days=3),
                          created_at=now, updated_at=now))
        session.flush()


def seed(session: Session) -> list[str]:
    if session.scalar(select(Agreement.id).limit(1)) is not None:
        return []
    sales, sales2 = _staff(session, "sales1"), _staff(session, "sales2")
    supervisor, fin = _staff(session, "supervisor"), _staff(session, "finance")
    if not (sales and sales2 and supervisor and fin):
        return []
    customers = list(session.scalars(select(Customer).where(Customer.owner_id == sales.id).order_by(Customer.id)
                                     .limit(12)))
    if len(customers) < 12:
        return []
    vs, vf, vsup = Viewer.of(sales), Viewer.of(fin), Viewer.of(supervisor)
    last_month_day = clock.today().replace(day=1) - timedelta(days=5)

    def sign(i: int, loan_yuan: int, rate: str = "0.03", deposit_yuan: int = 2000, **kw: object) -> Agreement:
        _arrived(session, customers[i], sales)
        return agreements.create_agreement(session, agreements.AgreementInput(
            customer_id=customers[i].id, sales_staff_id=sales.id, case_officer_id=sales2.id,
            loan_amount=loan_yuan * 100, term_months=36, funder_annual_rate=Decimal("0.065"),
            repayment_method="equal_installment", service_fee_rate=Decimal(rate), deposit_amount=deposit_yuan * 100,
            other_fees=[{"name": "评估费", "amount": 50_000}], **kw), viewer=vs)  # type: ignore[arg-type]

    def approve(a: Agreement) -> Agreement:
        agreements.confirm(session, a.id, viewer=vf)
        agreements.approve(session, a.id, viewer=vsup)
        return a

    def deposit(a: Agreement, yuan: int, method: str = "wechat", confirm: bool = True, day=None):  # noqa: ANN001, ANN202
        d = deposits.record_deposit(session, a.id, amount=yuan * 100, method=method, viewer=vs, received_date=day)
        if confirm:
            deposits.confirm_deposit(session, d.id, viewer=vf)
        return d

    lines = []
    # Last month's business, closed (月结).
    settled_old = approve(sign(0, 300_000, signed_date=last_month_day))
    deposit(settled_old, 3000, "bank", day=last_month_day)
    sign(1, 80_000)  # 待合同确认
    agreements.confirm(session, sign(2, 150_000).id, viewer=vf)  # 待主管审批
    approve(sign(3, 120_000))  # 待收定金
    working = approve(sign(4, 200_000))  # 做单中, with a deposit waiting for confirmation too
    deposit(working, 1000, "alipay")
    deposit(working, 1000, "cash", confirm=False)
    refund_case = approve(sign(5, 100_000))
    d = deposit(refund_case, 2000, "wechat")
    deposits.request_refund(session, d.id, amount=50_000, method="wechat", reason="客户资金紧张，先退一部分", viewer=vs)
    done_refund = approve(sign(6, 90_000))
    d = deposit(done_refund, 2000, "cash")
    r = deposits.request_refund(session, d.id, amount=200_000, method="cash", reason="客户放弃贷款", viewer=vs)
    deposits.decide_refund(session, r.id, accept=True, viewer=vf)
    voided = approve(sign(7, 60_000))
    d = deposit(voided, 6000, "bank")
    deposits.void_deposit(session, d.id, reason="金额录错，应为 600 元", viewer=vf)
    deposit(voided, 600, "bank")
    amended = approve(sign(8, 180_000))
    deposit(amended, 2000, "alipay")
    agreements.propose_amendment(session, amended.id, {"service_fee_rate": Decimal("0.025")},
                                 reason="客户议价，服务费率降为 2.5%", viewer=vs)
    # 待结算: disbursed by an outside funder, with a customer loan to collect.
    pending = approve(sign(9, 250_000))
    deposit(pending, 2000, "wechat")
    deposits.lend_to_customer(session, pending.id, principal_amount=1_000_000, interest_amount=15_000,
                              cost_amount=5_000, method="bank", viewer=vf)
    settlements.record_disbursement(session, pending.id, funder_name="某消费金融公司", funder_type="consumer_finance",
                                    amount=25_000_000, disbursed_date=None, viewer=vf)
    # 待确认凭证: charged, one confirmation given.
    charged = approve(sign(10, 160_000))
    deposit(charged, 2000, "wechat")
    s = settlements.record_disbursement(session, charged.id, funder_name="某城商行", funder_type="bank",
                                        amount=16_000_000, disbursed_date=None, viewer=vf)
    settlements.charge(session, s.id, settlements.ChargeInput(
        expected_revision=s.revision, discount_kind="fixed", discount_amount=30_000, payments=[("wechat", 200_000), ("cash", 100_000)]), viewer=vf)
    settlements.confirm_voucher(session, s.id, "officer", revision=s.revision, viewer=Viewer.of(sales2))
    # 已结算: discount, two payment methods, an added fee, a rebate.
    visit_fee = session.scalar(select(FeeType).where(FeeType.code == "visit"))
    for a in (settled_old, approve(sign(11, 220_000))):
        if a is not settled_old:
            deposit(a, 2000, "alipay")
        s = settlements.record_disbursement(session, a.id, funder_name="某小额贷款公司", funder_type="microloan",
                                            amount=a.loan_amount, disbursed_date=None, viewer=vf)
        due = settlements.compute(session, s, settlements.ChargeInput(
            discount_kind="percent", discount_rate=Decimal("0.1"), fees=[(visit_fee.id, 30_000)])).total_due_amount
        settlements.charge(session, s.id, settlements.ChargeInput(
            expected_revision=s.revision, discount_kind="percent", discount_rate=Decimal("0.1"), fees=[(visit_fee.id, 30_000)],
            payments=[("wechat", due // 2), ("bank", due - due // 2)], rebates=[("合作渠道·李经理", 80_000)]),
            viewer=vf)
        for who, staff in (("officer", sales2), ("supervisor", supervisor), ("sales", sales)):
            settlements.confirm_voucher(session, s.id, who, revision=s.revision, viewer=Viewer.of(staff))
        settlements.close(session, s.id, viewer=vf)
        last_settled = s
    agreements.cancel(session, sign(3, 50_000, deposit_yuan=0).id, viewer=vf, reason="客户另寻渠道")
    ledger.close_period(session, last_month_day, viewer=vf)
    # A fee paid back after 结单 (part of the service fee; the staff commission on it reverses).
    settlements.refund_fee(session, last_settled.id, amount=100_000, method="bank",
                           reason="客户投诉服务延迟，协商退还部分服务费", viewer=vf)
    _online_refund_failed(session, approve(sign(5, 70_000)), vs, vf)
    settled_case = session.get(Agreement, last_settled.agreement_id)
    _reimbursements(session, {"pending": pending, "charged": charged, "working": working, "settled": settled_case},
                    customers, sales, sales2, supervisor, fin)
    lines.append("  财务中心：14 个签单覆盖每个状态（待合同确认 → 已结算、已取消），上月已月结；"
                 "做单报销与营销费用（已支付、作废后重新提交），原路退定金失败 1 笔，结单后退服务费 1 笔")
    return lines


def _online_refund_failed(session: Session, agreement: Agreement, vs: Viewer, vf: Viewer) -> None:
    """A deposit paid through WeChat Pay whose refund back the way it came failed at the provider (异常): the
    deposit stays held and a new refund may be asked for. The payment is recorded as the provider's verified
    notification would leave it (no provider is reachable while seeding); the deposit, the refund request
    and the provider's final answer go through the same services as the real flow."""
    from payments import refunds as payment_refunds
    from payments.models import PaymentOrder, PaymentRefund
    from payments.provider import RefundResult

    now, amount = clock.now(), agreement.deposit_amount
    order = PaymentOrder(out_trade_no=f"FDEMO{agreement.id:010d}", purpose=payment_purposes.PURPOSE,
                         obligation_ref=f"deposit:{agreement.id}", customer_id=agreement.customer_id, method="jsapi",
                         description=f"定金（协议 {agreement.number}）", total_amount=amount, paid_amount=amount,
                         status="reconciled", transaction_id=f"DEMO{agreement.id:020d}", paid_at=now,
                         paid_date=clock.today(), applied_at=now, reconciled_at=now, created_at=now, updated_at=now)
    session.add(order)
    session.flush()
    deposit = deposits.receive_paid(session, agreement.id, amount=amount, paid_date=clock.today(),
                                    out_trade_no=order.out_trade_no, payment_order_id=order.id)
    order.applied_ref = f"finance_deposit:{deposit.id}"
    refund = deposits.request_refund(session, deposit.id, amount=amount, method="wechat",
                                     reason="客户改用其他机构，申请原路退回", viewer=vs)
    # Finance accepted it and asked WeChat Pay (decide_refund → payments.refunds.request); the provider
    # answered PROCESSING, then ABNORMAL (the customer's card was closed).
    refund.status, refund.decided_at, refund.decided_by_staff_id = "refunding", now, vf.staff_id
    refund.out_refund_no = f"FDR{refund.id:012d}"
    session.add(PaymentRefund(order_id=order.id, out_refund_no=refund.out_refund_no, refund_amount=amount,
                              reason=f"退定金 {agreement.number}", status="submitted",
                              refund_ref=f"finance_deposit_refund:{refund.id}", by_staff_id=vf.staff_id,
                              created_at=now))
    session.flush()
    payment_refunds.record_result(session, RefundResult(out_refund_no=refund.out_refund_no, status="ABNORMAL"),
                                  source="demo")


def _reimbursements(session: Session, cases: dict[str, Agreement], customers: list[Customer], sales: Staff,
                    officer: Staff, supervisor: Staff, fin: Staff) -> None:
    """做单报销 per case and marketing costs per customer: submitted, confirmed, paid, one voided and resubmitted."""
    vo, vs, vf = Viewer.of(officer), Viewer.of(sales), Viewer.of(fin)
    day = clock.today()

    def case(key: str, category: str, yuan: int, note: str):  # noqa: ANN202
        return reimbursements.submit(session, agreement_id=cases[key].id, category=category, amount=yuan * 100,
                                     spent_date=day, approved_by_manager_id=supervisor.id, note=note, viewer=vo)

    paid = [case("settled", "下户费", 300, "下户核实经营场所"), case("charged", "交通费", 86, "陪同客户面签打车")]
    for row in paid:
        reimbursements.confirm(session, row.id, viewer=vf)
        reimbursements.pay(session, row.id, method="bank", viewer=vf)
    reimbursements.confirm(session, case("pending", "资料费", 45, "征信报告打印").id, viewer=vf)  # 待付款
    case("working", "办公用品", 120, "档案袋与复印纸")  # 待财务确认
    wrong = case("working", "餐饮招待", 1_580, "与资方客户经理沟通")
    reimbursements.void(session, wrong.id, reason="金额录错，应为 158 元", viewer=vo)
    reimbursements.resubmit(session, wrong.id, amount=15_800, viewer=vo)
    ad = reimbursements.submit(session, customer_id=customers[1].id, category="广告投放", amount=50_000,
                               spent_date=day, approved_by_manager_id=supervisor.id, note="朋友圈定向推广", viewer=vs)
    reimbursements.confirm(session, ad.id, viewer=vf)
    reimbursements.pay(session, ad.id, method="alipay", viewer=vf)
    reimbursements.submit(session, customer_id=customers[2].id, category="活动物料", amount=12_000, spent_date=day,
                          note="到店礼品", viewer=vs)
