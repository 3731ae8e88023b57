"""crm.demo_customers: the demo customers behind `scrm seed-demo`, run after the demo staff."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from core import pii
from crm import demo, demo_customers
from crm.models import Customer, CustomerEvent, Staff


def test_seed_demo_creates_customers_for_sales_and_the_pool(session):
    lines = demo.seed(session)
    assert any(line.startswith("演示客户：") for line in lines)
    rows = list(session.scalars(select(Customer)))
    assert 50 <= len(rows) <= 70
    owners = {s.username: s.id for s in session.scalars(select(Staff))}
    by_owner = {o: sum(1 for c in rows if c.owner_id == o) for o in (owners["sales1"], owners["sales2"], None)}
    assert all(n >= 10 for n in by_owner.values())
    assert {c.region for c in rows} <= {"上海", "杭州", "苏州", "南京"}
    assert any(c.id_number_masked for c in rows) and any(c.grade for c in rows)
    assert len({c.stage for c in rows}) > 2


def test_demo_phones_and_ids_are_valid_and_masked(session):
    demo.seed(session)
    for c in session.scalars(select(Customer)):
        assert c.phone_masked and "****" in c.phone_masked
        assert c.name
        assert c.demand_amount is None or c.demand_amount % 100_000 == 0  # whole thousands of yuan


def test_id_numbers_carry_a_correct_gb11643_check_digit():
    rng = random.Random(7)
    for _ in range(200):
        assert pii.id_checksum_ok(demo_customers.make_id_number(rng, "320505"))
    assert demo_customers.id_check_digit("11010519491231002") == "X"


def test_seed_runs_once(session):
    demo.seed(session)
    count = session.scalar(select(func.count()).select_from(Customer))
    assert demo.seed(session) == []
    assert demo_customers.seed(session) == []
    assert session.scalar(select(func.count()).select_from(Customer)) == count


def test_demo_customers_have_timelines(session):
    demo.seed(session)
    assert session.scalar(select(func.count()).select_from(CustomerEvent).where(CustomerEvent.kind == "created")) \
        == session.scalar(select(func.count()).select_from(Customer))
