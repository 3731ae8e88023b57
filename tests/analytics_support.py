"""A small seeded world for the analytics tests (no tests here), with its hand-counted figures.

Two salespeople in team 一组 (sales, other_sales), a salesperson in team 二组 (far), a manager over everything.
In November 2026 (the period):
- sales owns 李四 (follow-up, visit arrived, application approved → signed → disbursed 50,000.00), 王五
  (follow-up with the next one due the same day, application rejected) and 赵六 (untouched, source 'referral');
- other_sales owns 钱七 (follow-up, application still in intake);
- far owns 孙八 (untouched).
In October 2026 (the previous period): sales got 周九 (untouched).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from core import clock
from crm import followups, visits
from crm.models import Customer, Staff
from lending import applications, disbursement
from lending.models import Loan
from tests.factories import make_customer, make_staff
from tests.lending_flow_support import AMOUNT, NOW, V, World, advance_to, make_world, start

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
