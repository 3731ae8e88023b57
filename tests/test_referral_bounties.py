"""Event bounties: the first application (lending.applications.ON_APPLICATION_STARTED) and the first
arrived visit (crm.visits.ON_VISIT_ARRIVED) of an attributed customer earn the referrer a fixed amount,
in the same unit of work, once per customer."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from core import clock
from core.db import unit_of_work
from crm import visits
from crm.models import Customer
from lending import applications
from referral import attribution, bounties, rules
from referral.models import CommissionEntry, Referrer
from tests.factories import make_customer, make_org, make_staff
from tests.lending_flow_support import NOW, V, World, freeze, make_world, start
from tests.lending_product_factories import make_product
from tests.referral_support import make_agent

FIRST_APP_L1, FIRST_APP_L2 = 8_800, 1_200  # 88.00 / 12.00 yuan
VISIT_L1 = 5_000


def _bounty_rule(session, event: str, level1: int, level2: int = 0, **terms: object) -> None:
    rules.create_rule(session, f"{event}奖励", "referrer", rules.RuleTerms(
        basis="bounty", bounty_event=event, level1_bounty_amount=level1, level2_bounty_amount=level2, **terms))


def _entries(session, customer_id: int) -> list[tuple[int, int, int, str]]:
    rows = session.scalars(select(CommissionEntry).where(CommissionEntry.customer_id == customer_id)
                           .order_by(CommissionEntry.level, CommissionEntry.id))
    return [(e.referrer_id, e.level, e.amount, e.source_event_key.split(":")[1]) for e in rows]


def _referred_world(session, **kw: object) -> tuple[World, Referrer]:
    freeze()
    w = make_world(session)
    agent = make_agent(session, **kw)
    attribution.attribute(session, w.customer.id, agent.code)
    return w, agent


# --- wiring ---------------------------------------------------------------------------------------------


def test_handlers_are_registered_with_lending_and_crm():
    assert bounties.on_application_started in applications.ON_APPLICATION_STARTED
    assert bounties.on_visit_arrived in visits.ON_VISIT_ARRIVED


# --- first application ----------------------------------------------------------------------------------


def test_first_application_accrues_the_bounty_to_the_referrer(session):
    w, agent = _referred_world(session)
    _bounty_rule(session, "first_application", FIRST_APP_L1)
    app = start(session, w)
    assert _entries(session, w.customer.id) == [(agent.id, 1, FIRST_APP_L1, "first_application")]
    entry = session.scalar(select(CommissionEntry).where(CommissionEntry.customer_id == w.customer.id))
    assert (entry.kind, entry.product_id, entry.loan_id, entry.event_at) == ("accrued", w.product.id, None,
                                                                             app.created_at)


def test_a_second_application_for_another_product_earns_nothing_more(session):
    w, agent = _referred_world(session)
    _bounty_rule(session, "first_application", FIRST_APP_L1)
    start(session, w)
    other = make_product(session)
    applications.start_application(session, w.customer.id, other.current_version_id, 5_000_000, 12,
                                   viewer=V(w.sales))
    assert _entries(session, w.customer.id) == [(agent.id, 1, FIRST_APP_L1, "first_application")]


def test_a_repeated_start_with_the_same_idempotency_key_earns_nothing_more(session):
    w, agent = _referred_world(session)
    _bounty_rule(session, "first_application", FIRST_APP_L1)
    first = start(session, w, idempotency_key="mp-req-1")
    again = start(session, w, idempotency_key="mp-req-1")
    assert again.id == first.id
    assert _entries(session, w.customer.id) == [(agent.id, 1, FIRST_APP_L1, "first_application")]


def test_a_rule_created_after_the_first_application_pays_nothing_for_the_second(session):
    w, _agent = _referred_world(session)
    start(session, w)
    _bounty_rule(session, "first_application", FIRST_APP_L1)
    applications.start_application(session, w.customer.id, make_product(session).current_version_id,
                                   5_000_000, 12, viewer=V(w.sales))
    assert _entries(session, w.customer.id) == []


def test_first_application_pays_both_levels_when_the_rule_has_a_level2_amount(session):
    freeze()
    w = make_world(session)
    top = make_agent(session)
    agent = make_agent(session, parent=top)
    attribution.attribute(session, w.customer.id, agent.code)
    _bounty_rule(session, "first_application", FIRST_APP_L1, FIRST_APP_L2)
    start(session, w)
    assert _entries(session, w.customer.id) == [(agent.id, 1, FIRST_APP_L1, "first_application"),
                                                 (top.id, 2, FIRST_APP_L2, "first_application")]


def test_an_unattributed_customers_application_earns_nothing(session):
    freeze()
    w = make_world(session)
    make_agent(session)
    _bounty_rule(session, "first_application", FIRST_APP_L1)
    start(session, w)
    assert session.scalars(select(CommissionEntry)).all() == []


def test_a_bounty_rule_for_another_product_does_not_apply(session):
    w, _agent = _referred_world(session)
    _bounty_rule(session, "first_application", FIRST_APP_L1, product_id=make_product(session).id)
    start(session, w)
    assert _entries(session, w.customer.id) == []


def test_the_visit_rule_does_not_pay_for_an_application(session):
    w, _agent = _referred_world(session)
    _bounty_rule(session, "visit", VISIT_L1)
    start(session, w)
    assert _entries(session, w.customer.id) == []


# --- visits ---------------------------------------------------------------------------------------------


def _book(session, org, sales, customer, hours: int):
    return visits.schedule_visit(session, customer.id, clock.now() + timedelta(hours=hours),
                                 department_id=org["branch"].id, viewer=V(sales))


def _visit_world(session, *, referred: bool = True, parent: Referrer | None = None):
    clock.freeze(NOW)
    org = make_org(session)
    sales = make_staff(session, department=org["team_a"])
    customer = make_customer(session, owner=sales)
    agent = make_agent(session, parent=parent)
    if referred:
        attribution.attribute(session, customer.id, agent.code)
    return org, sales, customer, agent


def test_an_arrived_visit_accrues_the_bounty_once(session):
    org, sales, customer, agent = _visit_world(session)
    _bounty_rule(session, "visit", VISIT_L1)
    first, second = _book(session, org, sales, customer, 1), _book(session, org, sales, customer, 3)
    clock.advance(timedelta(hours=1))
    visits.mark_arrived(session, V(sales), first.id)
    assert _entries(session, customer.id) == [(agent.id, 1, VISIT_L1, "visit")]
    clock.advance(timedelta(hours=2))
    visits.mark_arrived(session, V(sales), second.id)  # the customer comes again
    assert _entries(session, customer.id) == [(agent.id, 1, VISIT_L1, "visit")]
    bounties.on_visit_arrived(session, first.id)  # a re-delivery of the hook
    assert len(_entries(session, customer.id)) == 1


def test_a_scheduled_visit_earns_nothing_until_it_is_arrived(session):
    org, sales, customer, _agent = _visit_world(session)
    _bounty_rule(session, "visit", VISIT_L1)
    visit = _book(session, org, sales, customer, 1)
    bounties.on_visit_arrived(session, visit.id)
    visits.cancel_visit(session, V(sales), visit.id, "客户出差")
    assert _entries(session, customer.id) == []


def test_an_arrived_visit_pays_both_levels(session):
    clock.freeze(NOW)
    top = make_agent(session)
    org, sales, customer, agent = _visit_world(session, parent=top)
    _bounty_rule(session, "visit", VISIT_L1, 1_000)
    visit = _book(session, org, sales, customer, 1)
    visits.mark_arrived(session, V(sales), visit.id)
    assert _entries(session, customer.id) == [(agent.id, 1, VISIT_L1, "visit"), (top.id, 2, 1_000, "visit")]


def test_an_unattributed_customers_visit_earns_nothing(session):
    org, sales, customer, _agent = _visit_world(session, referred=False)
    _bounty_rule(session, "visit", VISIT_L1)
    visit = _book(session, org, sales, customer, 1)
    visits.mark_arrived(session, V(sales), visit.id)
    assert session.scalars(select(CommissionEntry)).all() == []


# --- concurrency (real commits, real threads) -------------------------------------------------------------


def test_two_visits_of_one_customer_arriving_at_once_accrue_once(committed):
    with unit_of_work() as s:
        org, sales, customer, agent = _visit_world(s)
        s.get(Customer, customer.id).stage = "applied"  # no stage move: the customer row is not touched
        _bounty_rule(s, "visit", VISIT_L1)
        ids = [_book(s, org, sales, customer, 1).id, _book(s, org, sales, customer, 3).id]
        viewer, customer_id, agent_id = V(sales), customer.id, agent.id
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def arrive(visit_id: int) -> None:
        barrier.wait()
        try:
            with unit_of_work() as s:
                visits.mark_arrived(s, viewer, visit_id)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each worker got
            errors.append(exc)

    threads = [threading.Thread(target=arrive, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with unit_of_work() as s:
        assert _entries(s, customer_id) == [(agent_id, 1, VISIT_L1, "visit")]
