"""Demo applications and loans for `scrm seed-demo`, so risk, finance and collections open to real work.

Runs after the demo staff, customers and products (crm.demo, lending.product_demo) and once per database
(nothing when any application exists). Everything goes through the services a person would use, at the
moment they would have used them: the clock travels back (``core.clock.travel``) to each step, so a loan
disbursed five months ago has five months of bills, repayments on their due dates, audit entries and
timeline events of those days. Deterministic: the same customers in the same order, the same dates
relative to the day of seeding.

What it leaves:

- loans: current ones (one paid off), one in each overdue bucket (M1, M2, M3, M3+), assigned to the
  collector by the same rollover the nightly close runs, with a call, a promise to pay and a note;
- applications at every node of the default workflow (进件, 初审, 复审, 签约, 放款), one rejected by risk and
  one withdrawn by the customer; an application the rules reject stays at 初审 for the risk officer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from crm.models import Customer, CustomerStatus, Staff
from crm.scope import Viewer
from lending import applications, approval, contracts, disbursement
from lending.models import Application, Loan, Product, WorkflowNode
from lending.servicing import repayments as repayment_service
from lending.servicing import rollover
from lending.servicing import state as loan_state

__all__ = ["seed"]

# The customers the finance demo signs agreements with (sales1's first twelve) are left to it.
FINANCE_DEMO_CUSTOMERS = 12
MONTHLY_INCOME_YUAN = {"DEMO-XY": 25_000, "DEMO-FD": 60_000, "DEMO-XF": 15_000, "DEMO-JK": 12_000}
PRODUCT_FOR_TYPE = {"credit": "DEMO-XY", "mortgage": "DEMO-FD", "business": "DEMO-FD", "car": "DEMO-XF",
                    "other": "DEMO-JK", "unknown": "DEMO-XF"}


@dataclass(frozen=True)
class LoanPlan:
    product: str
    amount_yuan: int
    term: int
    signed_days_ago: int
    paid_bills: int | None  # None: every bill due by today


# Signed (and disbursed) N days ago; bills paid on their due dates. The overdue ones stop paying.
LOANS = (
    LoanPlan("DEMO-XY", 100_000, 12, 185, None),  # current, six bills paid
    LoanPlan("DEMO-FD", 800_000, 24, 140, None),  # current, interest-first
    LoanPlan("DEMO-XF", 30_000, 12, 70, None),  # current
    LoanPlan("DEMO-JK", 10_000, 3, 125, None),  # paid off (结清)
    LoanPlan("DEMO-XY", 150_000, 36, 12, None),  # new, nothing due yet
    LoanPlan("DEMO-XY", 80_000, 12, 130, 3),  # M1: the fourth bill, ten days late
    LoanPlan("DEMO-FD", 500_000, 24, 165, 3),  # M2
    LoanPlan("DEMO-XF", 20_000, 12, 200, 3),  # M3
    LoanPlan("DEMO-XY", 60_000, 12, 215, 2),  # M3+
)
# Open applications: (node code to stop at, product, amount in yuan, term, hours since started); a step every
# hour and a half, so most sit within their node's 24-hour SLA and a few are past it.
PIPELINE = (
    ("intake", "DEMO-XY", 120_000, 24, 3),
    ("intake", "DEMO-FD", 1_500_000, 36, 30),
    ("first_review", "DEMO-XY", 90_000, 12, 5),
    ("first_review", "DEMO-XF", 40_000, 12, 20),
    ("second_review", "DEMO-XY", 200_000, 36, 8),
    ("second_review", "DEMO-FD", 300_000, 12, 50),
    ("signing", "DEMO-XY", 70_000, 24, 26),
    ("disbursement", "DEMO-JK", 15_000, 6, 10),
    ("disbursement", "DEMO-FD", 1_000_000, 24, 80),
)
CLOSED = (("reject", "DEMO-XF", 45_000, 12, 9), ("withdraw", "DEMO-XY", 50_000, 12, 8))


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` in Shanghai on ``day``, as aware UTC."""
    return datetime.combine(day, time(hour, minute), tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


class _Demo:
    def __init__(self, session: Session, staff: dict[str, Staff], today: date) -> None:
        self.session, self.staff, self.today = session, staff, today
        self.products = {p.code: p for p in session.scalars(select(Product))}
        self.refs = 0

    def viewer(self, username: str) -> Viewer:
        return Viewer.of(self.staff[username])

    def owner(self, customer: Customer) -> Viewer:
        return Viewer.of(next(s for s in self.staff.values() if s.id == customer.owner_id))

    def ref(self, prefix: str) -> str:
        self.refs += 1
        return f"{prefix}-DEMO-{self.refs:04d}"

    def node(self, app: Application) -> WorkflowNode:
        node = self.session.get(WorkflowNode, app.current_node_id)
        assert node is not None
        return node

    def start(self, customer: Customer, code: str, amount_yuan: int, term: int, when: datetime) -> Application:
        product = self.products[code]
        assert product.current_version_id is not None
        with clock.travel(when):
            return applications.start_application(self.session, customer.id, product.current_version_id,
                                                  amount_yuan * 100, term, viewer=self.owner(customer))

    def advance(self, app: Application, customer: Customer, until: str, steps: list[datetime]) -> bool:
        """Drive ``app`` node by node, one step at each instant of ``steps``, until it sits at node ``until``
        (or its loan is disbursed, for "servicing"). False when its rules want an override: it stays at 初审."""
        sales = self.owner(customer)
        moments = iter(steps)
        while self.node(app).code != until:
            node = self.node(app)
            with clock.travel(next(moments)):
                if node.kind == "intake":
                    income = MONTHLY_INCOME_YUAN[self.products_by_id(app.product_id).code]
                    applications.set_fields(self.session, app.id, {
                        "purpose": customer.demand_purpose or "经营周转", "monthly_income": str(income),
                        "employer": "上海某贸易有限公司"}, viewer=sales)
                    applications.add_document(self.session, app.id, "身份证", viewer=sales, note="正反面已核对")
                    applications.approve(self.session, app.id, viewer=sales, comment="材料齐全，提交初审")
                elif node.kind == "review":
                    if approval.exceedance(self.session, app, node) is not None:
                        return False
                    who = "risk" if node.code == "first_review" else "manager"
                    applications.approve(self.session, app.id, viewer=self.viewer(who),
                                         comment="征信及流水正常，同意" if who == "risk" else "复核无误，同意放款审批")
                elif node.kind == "signing":
                    contracts.sign_contract(self.session, app.id, viewer=sales, comment="客户到店面签")
                elif node.kind == "disbursement":
                    disbursement.disburse(self.session, app.id, viewer=self.viewer("finance"),
                                          funder_reference=self.ref("FR"))
                else:
                    break
            self.session.refresh(app)
        return True

    def products_by_id(self, product_id: int) -> Product:
        return next(p for p in self.products.values() if p.id == product_id)

    def pay_bills(self, loan: Loan, count: int | None) -> int:
        """Pay the loan's bills in order on their due dates: ``count`` of them, or every one due by today."""
        paid = 0
        for row in loan_state.installments(self.session, loan.id):
            if row.due_date > self.today or (count is not None and paid >= count):
                break
            with clock.travel(at(row.due_date, 11, 20)):
                repayment_service.record_repayment(
                    self.session, loan.id, viewer=self.viewer("finance"), amount=row.outstanding_amount,
                    external_reference=self.ref("HK"), channel="withholding" if paid % 3 else "bank_transfer",
                    repayment_date=row.due_date)
            paid += 1
        return paid


def _candidates(session: Session, staff: dict[str, Staff]) -> list[Customer]:
    owned = list(session.scalars(select(Customer).where(
        Customer.owner_id.in_((staff["sales1"].id, staff["sales2"].id)),
        Customer.status != CustomerStatus.BLACKLIST).order_by(Customer.id)))
    finance_demo = {c.id for c in owned if c.owner_id == staff["sales1"].id}
    finance_demo = set(sorted(finance_demo)[:FINANCE_DEMO_CUSTOMERS])
    # customers with an ID number first: the credit bureau (simulated) answers for them
    rest = [c for c in owned if c.id not in finance_demo]
    return [c for c in rest if c.id_number_enc] + [c for c in rest if not c.id_number_enc]


def _pick(pool: list[Customer], product: str) -> Customer | None:
    for i, c in enumerate(pool):
        if PRODUCT_FOR_TYPE.get(c.customer_type) == product:
            return pool.pop(i)
    return pool.pop(0) if pool else None


def seed(session: Session) -> list[str]:
    if session.scalar(select(Application.id).limit(1)) is not None:
        return []
    staff = {s.username: s for s in session.scalars(select(Staff).where(Staff.username.in_(
        ("sales1", "sales2", "risk", "manager", "finance", "collector"))))}
    if len(staff) < 6 or session.scalar(select(Product.id).where(Product.code == "DEMO-XY")) is None:
        return []
    today = clock.today()
    demo = _Demo(session, staff, today)
    pool = _candidates(session, staff)
    loans: list[Loan] = []
    for plan in LOANS:
        placed = False
        while not placed and (customer := _pick(pool, plan.product)) is not None:
            signed = today - timedelta(days=plan.signed_days_ago)
            day = signed - timedelta(days=1)
            app = demo.start(customer, plan.product, plan.amount_yuan, plan.term, at(day, 9, 30))
            placed = demo.advance(app, customer, "servicing", [  # a day and a half from intake to the money
                at(day, 10), at(day, 15, 30), at(signed, 10, 15), at(signed, 16, 40), at(signed, 17, 20)])
            if not placed:  # the rules reject this applicant: risk declines it the same afternoon
                with clock.travel(at(day, 16, 10)):
                    applications.reject(session, app.id, "风控规则未通过（征信/年龄不符合产品准入）", viewer=demo.viewer("risk"))
            else:
                loan = disbursement.loan_for(session, app.id)
                assert loan is not None
                demo.pay_bills(loan, plan.paid_bills)
                loans.append(loan)
    now = clock.now()
    for code, product, amount, term, hours_ago in PIPELINE:
        customer = _pick(pool, product)
        if customer is None:
            break
        started = now - timedelta(hours=hours_ago)
        app = demo.start(customer, product, amount, term, started)
        demo.advance(app, customer, code, [started + timedelta(minutes=30 + 90 * k) for k in range(5)])
    _closed(demo, pool)
    rolled = rollover.roll_over(session, today)  # what the nightly close does: buckets, collector
    overdue = sum(1 for loan in loans if loan.bucket != "C")
    return [f"演示贷款：{len(loans)} 笔（{overdue} 笔逾期，分布 M1–M3+，已分配催收（催收员的首轮电话见贷后演示数据）；滚动 {rolled} 笔），"
            f"在途申请覆盖进件、初审、复审、签约、放款，另有被拒与撤回各一笔"]


def _closed(demo: _Demo, pool: list[Customer]) -> None:
    for event, product, amount, term, days_ago in CLOSED:
        customer = _pick(pool, product)
        if customer is None:
            return
        day = demo.today - timedelta(days=days_ago)
        app = demo.start(customer, product, amount, term, at(day, 9, 30))
        if event == "reject":
            demo.advance(app, customer, "first_review", [at(day, 11)])
            if app.status in ("intake", "reviewing"):
                with clock.travel(at(day + timedelta(days=1), 14, 0)):
                    applications.reject(demo.session, app.id, "近半年多头借贷，负债率过高", viewer=demo.viewer("risk"))
        else:
            with clock.travel(at(day + timedelta(days=1), 10, 0)):
                applications.withdraw(demo.session, app.id, "客户已在其他机构获批，撤回申请",
                                      viewer=demo.owner(customer))
