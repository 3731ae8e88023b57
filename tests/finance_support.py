"""Factories for the finance center's tests: staff of every role, a customer who came to a visit, a case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from core import clock
from crm.models import Customer, Staff, Visit
from crm.scope import Viewer
from finance import agreements, deposits
from finance.models import Agreement
from tests.factories import make_customer, make_org, make_staff


def V(staff: Staff) -> Viewer:  # noqa: N802 - reads like a type
    return Viewer.of(staff)


@dataclass
class World:
    sales: Staff
    officer: Staff
    supervisor: Staff
    finance: Staff
    other_sales: Staff
    customer: Customer


def make_world(session: Session) -> World:
    org = make_org(session)
    sales = make_staff(session, role="sales", department=org["team_a"], display_name="销售甲")
    officer = make_staff(session, role="sales", department=org["team_a"], display_name="做单乙")
    supervisor = make_staff(session, role="supervisor", department=org["branch"], display_name="主管丙")
    finance = make_staff(session, role="finance", department=org["company"], display_name="财务丁")
    other = make_staff(session, role="sales", department=org["team_b"], display_name="销售戊")
    customer = make_customer(session, owner=sales, name="王五")
    arrived(session, customer, sales)
    return World(sales, officer, supervisor, finance, other, customer)


def arrived(session: Session, customer: Customer, inviter: Staff) -> Visit:
    now = clock.now()
    visit = Visit(customer_id=customer.id, inviter_id=inviter.id, department_id=inviter.department_id,
                  scheduled_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1), status="arrived",
                  channel="staff", arrived_at=now - timedelta(hours=2), created_at=now, updated_at=now)
    session.add(visit)
    session.flush()
    return visit


def agreement_input(w: World, **kw: object) -> agreements.AgreementInput:
    values: dict[str, object] = dict(
        customer_id=w.customer.id, sales_staff_id=w.sales.id, case_officer_id=w.officer.id,
        loan_amount=20_000_000, term_months=36, funder_annual_rate=Decimal("0.06"),
        repayment_method="equal_installment", service_fee_rate=Decimal("0.03"), service_fee_fixed_amount=0,
        deposit_amount=500_000, other_fees=[{"name": "评估费", "amount": 80_000}])
    values.update(kw)
    return agreements.AgreementInput(**values)  # type: ignore[arg-type]


def approved_agreement(session: Session, w: World, **kw: object) -> Agreement:
    a = agreements.create_agreement(session, agreement_input(w, **kw), viewer=V(w.sales))
    agreements.confirm(session, a.id, viewer=V(w.finance))
    agreements.approve(session, a.id, viewer=V(w.supervisor))
    return a


def working_agreement(session: Session, w: World, deposit_amount: int = 500_000, **kw: object) -> Agreement:
    a = approved_agreement(session, w, **kw)
    d = deposits.record_deposit(session, a.id, amount=deposit_amount, method="wechat", viewer=V(w.officer))
    deposits.confirm_deposit(session, d.id, viewer=V(w.finance))
    return a
