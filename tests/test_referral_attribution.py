"""Referrers and attribution: first touch wins, self-referrals and loops refused, the lock window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import audit, clock
from crm.models import CustomerEvent
from crm.scope import Viewer
from referral import attribution, referrers
from referral.exceptions import AttributionLocked, NotAllowed, ReferralLoop, ReferrerNotFound, SelfReferral
from referral.models import Attribution
from tests.factories import make_customer, make_staff
from tests.referral_support import T0, counts, customer_referrer, make_agent, referred_customer


def _viewer(session, role="manager"):
    return Viewer.of(make_staff(session, role=role))


def test_referral_code_uses_the_unambiguous_alphabet_and_is_unique(session):
    codes = {make_agent(session).code for _ in range(20)}
    assert len(codes) == 20
    assert all(len(c) == referrers.CODE_LENGTH and set(c) <= set(referrers.CODE_ALPHABET) for c in codes)
    assert not set("01OIL") & set(referrers.CODE_ALPHABET)


def test_first_touch_wins(session):
    first, second = make_agent(session), make_agent(session)
    customer = make_customer(session)
    a = attribution.attribute(session, customer.id, first.code, source="miniprogram")
    b = attribution.attribute(session, customer.id, second.id, source="wecom")
    assert a.created and not b.created
    assert b.attribution.referrer_id == first.id
    assert session.scalar(select(Attribution.referrer_id).where(Attribution.customer_id == customer.id)) == first.id


def test_attribution_appears_on_the_customer_timeline(session):
    agent = make_agent(session, "张经纪")
    customer_id = referred_customer(session, agent)
    kinds = session.scalars(select(CustomerEvent.kind).where(CustomerEvent.customer_id == customer_id)).all()
    assert "referral.attributed" in kinds


def test_unknown_code_is_refused(session):
    customer = make_customer(session)
    with pytest.raises(ReferrerNotFound):
        attribution.attribute(session, customer.id, "ZZZZZZ")


def test_self_referral_is_refused_and_nothing_written(session):
    customer_id, own = customer_referrer(session)
    before = counts(session)
    with pytest.raises(SelfReferral) as exc:
        attribution.attribute(session, customer_id, own.code)
    assert "自己" in exc.value.message
    assert counts(session) == before


def test_two_person_loop_is_refused_and_nothing_written(session):
    a_customer, ref_a = customer_referrer(session, "甲")
    b_customer = make_customer(session, name="乙").id
    attribution.attribute(session, b_customer, ref_a.code)  # A refers B
    ref_b = referrers.create_referrer(session, referrers.ReferrerInput(kind="customer", customer_id=b_customer))
    assert ref_b.parent_id == ref_a.id
    before = counts(session)
    with pytest.raises(ReferralLoop) as exc:
        attribution.attribute(session, a_customer, ref_b.code)  # B refers A
    assert "循环" in exc.value.message
    assert counts(session) == before


def test_deeper_loop_is_refused(session):
    a_customer, ref_a = customer_referrer(session, "甲")
    b = make_customer(session, name="乙").id
    attribution.attribute(session, b, ref_a.code)
    ref_b = referrers.create_referrer(session, referrers.ReferrerInput(kind="customer", customer_id=b))
    c = make_customer(session, name="丙").id
    attribution.attribute(session, c, ref_b.code)
    ref_c = referrers.create_referrer(session, referrers.ReferrerInput(kind="customer", customer_id=c))
    with pytest.raises(ReferralLoop):
        attribution.attribute(session, a_customer, ref_c.code)  # C refers A: A→B→C→A


def test_parent_that_closes_a_loop_is_refused(session):
    top = make_agent(session)
    child = make_agent(session, parent=top)
    with pytest.raises(ReferralLoop):
        referrers.set_parent(session, top.id, child.id)
    assert session.get(type(top), top.id).parent_id is None


def test_manual_attribution_inside_the_lock_window_is_refused(session):
    first, second = make_agent(session), make_agent(session)
    customer_id = referred_customer(session, first)
    clock.freeze(T0 + timedelta(days=10))
    with pytest.raises(AttributionLocked):
        attribution.reassign(session, customer_id, second.id, viewer=_viewer(session))
    assert attribution.attribution_of(session, customer_id).referrer_id == first.id


def test_manual_attribution_after_the_lock_window_is_audited(session):
    first, second = make_agent(session), make_agent(session)
    customer_id = referred_customer(session, first)
    clock.freeze(T0 + timedelta(days=referrers.get_config(session).lock_days + 1))
    result = attribution.reassign(session, customer_id, second.id, viewer=_viewer(session), reason="客户确认")
    assert result.attribution.referrer_id == second.id and result.attribution.source == "manual"
    logged = audit.search(session, action="referral.attribution.manual", entity_id=str(customer_id))
    assert logged and logged[0].after == {"referrer_id": second.id}


def test_manual_attribution_when_none_exists(session):
    agent = make_agent(session)
    customer = make_customer(session)
    result = attribution.attribute(session, customer.id, agent.code, source="manual", viewer=_viewer(session))
    assert result.created and result.attribution.source == "manual"


def test_salesperson_may_not_attribute_by_hand(session):
    agent = make_agent(session)
    customer = make_customer(session)
    with pytest.raises(NotAllowed):
        attribution.reassign(session, customer.id, agent.id, viewer=_viewer(session, "sales"))
    assert attribution.attribution_of(session, customer.id) is None


def test_two_levels_by_default_never_deeper(session):
    top = make_agent(session, "顶层")
    middle = make_agent(session, "中层", parent=top)
    low = make_agent(session, "下层", parent=middle)
    customer_id = referred_customer(session, low)
    chain = attribution.beneficiaries(session, customer_id)
    assert [(level, r.id) for level, r in chain] == [(1, low.id), (2, middle.id)]


def test_one_level_when_configured(session):
    top = make_agent(session)
    low = make_agent(session, parent=top)
    customer_id = referred_customer(session, low)
    referrers.update_config(session, max_levels=1)
    assert [level for level, _ in attribution.beneficiaries(session, customer_id)] == [1]


def test_levels_other_than_one_or_two_are_refused(session):
    from referral.exceptions import InvalidReferrer

    with pytest.raises(InvalidReferrer):
        referrers.update_config(session, max_levels=3)
