"""The charge's guards: the revision it was made against is required, 结单 refuses figures an amendment made
stale, and the all-in annualised cost is checked again with what the charge adds (at the charge and at 结单)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.settings import reset_settings_cache
from finance import agreements, settlements
from finance.exceptions import AprAboveCap, FinanceInvalid, StateConflict
from finance.models import FeeType, JournalEntry, Settlement
from finance.settlements import ChargeInput
from tests.finance_support import V, make_world, working_agreement

# 200,000 元 over 12 months at 6%, 3% service fee and 800 元 of other fees: about 12.5% all-in.
TERMS = {"term_months": 12}


def _disbursed(session, w, amount=20_000_000):
    a = working_agreement(session, w, deposit_amount=100_000, **TERMS)
    s = settlements.record_disbursement(session, a.id, funder_name="某银行", funder_type="bank", amount=amount,
                                        disbursed_date=None, viewer=V(w.finance))
    return a, s


def _pay_all(session, s, **kw) -> ChargeInput:
    due = settlements.compute(session, s, ChargeInput(**kw)).total_due_amount
    return ChargeInput(expected_revision=s.revision, payments=[("bank", due)], **kw)


def _confirm_all(session, w, s):
    for who, staff in (("officer", w.officer), ("supervisor", w.supervisor), ("sales", w.sales)):
        settlements.confirm_voucher(session, s.id, who, revision=s.revision, viewer=V(staff))


@pytest.fixture
def cap(monkeypatch):
    def set_cap(value: str) -> None:
        monkeypatch.setenv("SCRM_APR_CAP_RATE", value)
        reset_settings_cache()

    yield set_cap
    monkeypatch.delenv("SCRM_APR_CAP_RATE", raising=False)
    reset_settings_cache()


def test_a_charge_without_the_revision_it_saw_is_refused(session):
    w = make_world(session)
    _, s = _disbursed(session, w)
    data = _pay_all(session, s)
    data.expected_revision = None
    with pytest.raises(FinanceInvalid, match="缺少收费版本") as exc:
        settlements.charge(session, s.id, data, viewer=V(w.finance))
    assert exc.value.details["field"] == "expected_revision"
    session.refresh(s)
    assert s.status == "pending" and s.revision == 0


def test_an_amendment_confirmed_after_the_charge_makes_settling_refused_until_charged_again(session):
    w = make_world(session)
    a, s = _disbursed(session, w)
    settlements.charge(session, s.id, _pay_all(session, s), viewer=V(w.finance))
    assert s.service_fee_amount == 600_000 and s.charged_agreement_version == 1
    amendment = agreements.propose_amendment(session, a.id, {"service_fee_rate": Decimal("0.02")}, reason="让利",
                                             viewer=V(w.sales))
    agreements.decide_amendment(session, amendment.id, accept=True, viewer=V(w.finance))
    assert a.version == 2
    _confirm_all(session, w, s)
    with pytest.raises(StateConflict, match="收费后有变更（收费按第 1 版计算，现为第 2 版）.*请重新完成结算收费") as exc:
        settlements.close(session, s.id, viewer=V(w.finance))
    assert exc.value.code == "charge_stale"
    session.refresh(s)
    assert s.status == "charged" and s.journal_entry_id is None
    settlements.charge(session, s.id, _pay_all(session, s), viewer=V(w.finance))
    assert s.service_fee_amount == 400_000 and s.charged_agreement_version == 2
    _confirm_all(session, w, s)
    settlements.close(session, s.id, viewer=V(w.finance))
    assert s.status == "settled"


def test_a_charge_whose_installment_fee_takes_the_all_in_cost_past_the_cap_is_refused_with_the_figure(session):
    w = make_world(session)
    _, s = _disbursed(session, w)
    with pytest.raises(AprAboveCap, match=r"综合年化成本 33\.\d\d%.*超过上限 24\.00%，不能按此收费") as exc:
        settlements.charge(session, s.id, _pay_all(session, s, installment_fee_amount=2_000_000), viewer=V(w.finance))
    assert Decimal(exc.value.details["apr"]) > Decimal("0.33")
    session.refresh(s)
    assert s.status == "pending" and s.revision == 0


def test_added_fees_count_in_the_all_in_cost_of_the_charge(session):
    w = make_world(session)
    _, s = _disbursed(session, w)
    visit = session.query(FeeType).filter_by(code="visit").one()
    settlements.charge(session, s.id, _pay_all(session, s, fees=[(visit.id, 1_000_000)]), viewer=V(w.finance))
    assert s.revision == 1  # 22.76%: within the cap
    with pytest.raises(AprAboveCap, match="不能按此收费"):
        settlements.charge(session, s.id, _pay_all(session, s, fees=[(visit.id, 2_000_000)]), viewer=V(w.finance))


def test_settling_rechecks_the_all_in_cost_and_refuses_above_the_cap_with_the_figure(session, cap):
    w = make_world(session)
    _, s = _disbursed(session, w)
    settlements.charge(session, s.id, _pay_all(session, s, installment_fee_amount=1_000_000), viewer=V(w.finance))
    _confirm_all(session, w, s)
    cap("0.20")  # the cap was lowered after the charge
    entries = session.query(JournalEntry).count()
    with pytest.raises(AprAboveCap, match=r"综合年化成本 22\.\d\d%.*超过上限 20\.00%，不能结单"):
        settlements.close(session, s.id, viewer=V(w.finance))
    assert session.get(Settlement, s.id).status == "charged" and session.query(JournalEntry).count() == entries
    cap("0.24")
    settlements.close(session, s.id, viewer=V(w.finance))
    assert s.status == "settled"
