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
from finance import agreements, deposits, ledger, settlements
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
    agreements.cancel(session, sign(3, 50_000, deposit_yuan=0).id, viewer=vf, reason="客户另寻渠道")
    ledger.close_period(session, last_month_day, viewer=vf)
    lines.append("  财务中心：12 个签单覆盖每个状态（待合同确认 → 已结算、已取消），上月已月结")
    return lines
