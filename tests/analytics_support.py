"""Small seeded worlds for the analytics tests (no tests here), with their hand-counted figures.

``seed``:

Two salespeople in team 一组 (sales, other_sales), a salesperson in team 二组 (far), a manager over everything.
In November 2026 (the period):
- sales owns 李四 (follow-up, visit arrived, application approved → signed → disbursed 50,000.00), 王五
  (follow-up with the next one due the same day, application rejected) and 赵六 (untouched, source 'referral');
- other_sales owns 钱七 (follow-up, application still in intake);
- far owns 孙八 (untouched).
In October 2026 (the previous period): sales got 周九 (untouched).

``seed_dimensions``: owners in a department and its parent, a pool customer, channel details (来源明细),
industries and loans from two funders of two types (its docstring has the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from core import clock
from crm import followups, qualification, visits
from crm.models import Customer, Department, Staff
from lending import applications, disbursement
from lending.models import Funder, Loan, Product
from tests.factories import make_customer, make_staff
from tests.lending_flow_support import AMOUNT, NOW, V, World, advance_to, make_world, start
from tests.lending_product_factories import make_funder, make_product

PERIOD = (date(2026, 11, 1), date(2026, 11, 30))
PREVIOUS = (date(2026, 10, 2), date(2026, 10, 31))


@dataclass
class Seeded:
    w: World
    far: Staff
    customers: dict[str, Customer]
    loan: Loan


def _followup(session: Session, staff: Staff, customer: Customer, next_at: datetime | None = None) -> None:
    followups.log_followup(session, V(staff), customer.id, kind="call", content="电话沟通，客户有意向",
                           next_followup_at=next_at)


def seed(session: Session) -> Seeded:
    clock.freeze(datetime(2026, 10, 20, 2, 0, tzinfo=UTC))
    w = make_world(session)  # 李四, owned by w.sales; created 2026-10-20 … moved into November below
    october = make_customer(session, owner=w.sales, name="周九")
    clock.freeze(NOW)  # 2026-11-23 10:00 Shanghai
    w.customer.created_at = NOW
    far = make_staff(session, data_scope="own")  # in a department of its own, outside 一组
    c = {"李四": w.customer, "周九": october,
         "王五": make_customer(session, owner=w.sales, name="王五"),
         "赵六": make_customer(session, owner=w.sales, name="赵六", source="referral"),
         "钱七": make_customer(session, owner=w.other_sales, name="钱七"),
         "孙八": make_customer(session, owner=far, name="孙八")}
    session.flush()
    _followup(session, w.sales, c["李四"])
    _followup(session, w.sales, c["王五"], next_at=NOW + timedelta(hours=2))  # due today: 待跟进 1 for sales
    _followup(session, w.other_sales, c["钱七"])
    visit = visits.schedule_visit(session, c["李四"].id, NOW + timedelta(hours=1), department_id=w.sales.department_id,
                                  viewer=V(w.sales))
    visits.mark_arrived(session, V(w.sales), visit.id)
    app = start(session, w)
    advance_to(session, w, app, "disbursement")
    loan = disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference=f"FR-{app.id}")
    rejected = applications.start_application(session, c["王五"].id, w.version_id, 3_000_000, 12, viewer=V(w.sales))
    applications.reject(session, rejected.id, "资料不全", viewer=V(w.manager))
    applications.start_application(session, c["钱七"].id, w.version_id, 2_000_000, 12, viewer=V(w.other_sales))
    session.flush()
    assert loan.principal_amount == AMOUNT
    return Seeded(w, far, c, loan)


DETAIL_A = "渠道码：地推A / 双十一"
DETAIL_B = "渠道码：地推B"


@dataclass
class Dims:
    w: World
    branch: Department  # 上海分部, the parent of 一组 (where sales and other_sales sit)
    lead: Staff  # a salesperson in 上海分部 itself
    customers: dict[str, Customer]
    bank: Funder  # the world's product's funder
    cfc: Funder  # 消费金融公司, the funder of the second product
    second: Product


def _disburse(session: Session, w: World, customer: Customer, product: Product) -> Loan:
    app = applications.start_application(session, customer.id, product.current_version_id, AMOUNT, 12,
                                         viewer=V(w.manager))
    advance_to(session, w, app, "disbursement")
    return disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference=f"FR-{app.id}")


def seed_dimensions(session: Session) -> Dims:
    """November 2026. Customers (owner, 来源明细, industry, loan):
    李四 (sales, —, —, a loan from the bank); 甲 (sales, 地推A, 建筑装修, a loan from the 消金 funder);
    乙 (sales, 地推A, 建筑, an application in intake for the second product); 丙 (other_sales, 地推B, 物流);
    丁 (lead in 上海分部, —, 物流运输, a loan from the 消金 funder); 戊 (no owner: 公海, 地推B)."""
    clock.freeze(NOW)
    w = make_world(session)
    team_a = session.get(Department, w.sales.department_id)
    branch = session.get(Department, team_a.parent_id)
    lead = make_staff(session, department=branch, data_scope="own")
    cfc = make_funder(session, name="某消金", funder_type="consumer_finance")
    second = make_product(session, funder=cfc, name="消金贷")
    c = {"李四": w.customer,
         "甲": make_customer(session, owner=w.sales, name="甲", source_detail=DETAIL_A),
         "乙": make_customer(session, owner=w.sales, name="乙", source_detail=DETAIL_A),
         "丙": make_customer(session, owner=w.other_sales, name="丙", source_detail=DETAIL_B),
         "丁": make_customer(session, owner=lead, name="丁"),
         "戊": make_customer(session, name="戊", source_detail=DETAIL_B)}
    for name, industry in (("甲", "建筑装修"), ("乙", "建筑"), ("丙", "物流"), ("丁", "物流运输")):
        qualification.update(session, V(w.manager), c[name].id, {"industry": industry})
    _disburse(session, w, c["李四"], w.product)
    _disburse(session, w, c["甲"], second)
    _disburse(session, w, c["丁"], second)
    applications.start_application(session, c["乙"].id, second.current_version_id, AMOUNT, 12, viewer=V(w.sales))
    session.flush()
    assert c["戊"].owner_id is None
    bank = session.get(Funder, w.product.funder_id)
    return Dims(w, branch, lead, c, bank, cfc, second)
