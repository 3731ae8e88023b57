"""Service agreements: 签单 after a visit, the all-in cost under the cap, 合同确认 locks the amounts,
amendments confirmed again, supervisor approval; scoped by the case's salesperson and case officer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from core.audit import AuditLog
from core.errors import PermissionDenied
from finance import agreements
from finance.agreements import AmountLocked
from finance.exceptions import AmountInvalid, AprAboveCap, FinanceInvalid, RecordNotFound, StateConflict
from finance.models import Agreement
from tests.factories import make_customer
from tests.finance_support import V, agreement_input, make_world


def test_an_agreement_is_recorded_with_its_all_in_cost(session):
    w = make_world(session)
    a = agreements.create_agreement(session, agreement_input(w), viewer=V(w.sales))
    assert a.status == "draft" and a.number.startswith("FA")
    # 6% funder rate, 36 months, 3% service fee + 800 元 evaluation fee, paid out of the loan: about 8.3% all-in.
    assert Decimal("0.08") < a.apr_rate < Decimal("0.09")
    assert a.other_fees_amount == 80_000


def test_an_agreement_above_the_cap_is_refused_with_the_figure(session):
    w = make_world(session)
    with pytest.raises(AprAboveCap) as exc:
        agreements.create_agreement(session, agreement_input(w, term_months=6, service_fee_rate=Decimal("0.08")),
                                    viewer=V(w.sales))
    assert "综合年化成本" in exc.value.message and "超过上限 24.00%" in exc.value.message
    assert Decimal(exc.value.details["apr"]) > Decimal("0.24")
    assert session.scalar(select(Agreement.id)) is None


def test_a_customer_without_a_visit_cannot_sign(session):
    w = make_world(session)
    newcomer = make_customer(session, owner=w.sales, name="赵六")
    with pytest.raises(FinanceInvalid, match="到店"):
        agreements.create_agreement(session, agreement_input(w, customer_id=newcomer.id), viewer=V(w.sales))


@pytest.mark.parametrize(("field", "value", "words"), [
    ("loan_amount", -1, "不能为负数"), ("deposit_amount", 12.5, "整数分"), ("loan_amount", 0, "大于 0"),
    ("service_fee_rate", 0.03, "浮点数"), ("term_months", 0, "期限"),
])
def test_bad_amounts_are_refused_in_chinese(session, field, value, words):
    w = make_world(session)
    with pytest.raises((AmountInvalid, FinanceInvalid)) as exc:
        agreements.create_agreement(session, agreement_input(w, **{field: value}), viewer=V(w.sales))
    assert words in exc.value.message


def test_confirmation_locks_the_amounts_and_an_amendment_is_confirmed_again(session):
    w = make_world(session)
    a = agreements.create_agreement(session, agreement_input(w), viewer=V(w.sales))
    agreements.update_terms(session, a.id, {"deposit_amount": 600_000}, viewer=V(w.sales))  # a draft: direct
    with pytest.raises(PermissionDenied):
        agreements.confirm(session, a.id, viewer=V(w.sales))
    agreements.confirm(session, a.id, viewer=V(w.finance))
    with pytest.raises(AmountLocked) as exc:
        agreements.update_terms(session, a.id, {"deposit_amount": 700_000}, viewer=V(w.sales))
    assert "锁定" in exc.value.message and a.deposit_amount == 600_000
    amendment = agreements.propose_amendment(session, a.id, {"service_fee_rate": Decimal("0.025")},
                                             reason="客户议价", viewer=V(w.sales))
    assert a.service_fee_rate == Decimal("0.03")  # not applied until finance confirms
    with pytest.raises(StateConflict, match="待确认的变更"):
        agreements.propose_amendment(session, a.id, {"deposit_amount": 1}, reason="再改", viewer=V(w.sales))
    agreements.decide_amendment(session, amendment.id, accept=True, viewer=V(w.finance))
    session.refresh(a)
    assert a.service_fee_rate == Decimal("0.025") and a.version == 2
    actions = set(session.scalars(select(AuditLog.action).where(AuditLog.entity_type == "finance_agreement",
                                                                AuditLog.entity_id == str(a.id))))
    assert {"finance.agreement_confirmed", "finance.amendment_proposed", "finance.amendment_confirmed"} <= actions
    with pytest.raises(StateConflict, match="已处理"):
        agreements.decide_amendment(session, amendment.id, accept=True, viewer=V(w.finance))


def test_an_amendment_above_the_cap_is_refused(session):
    w = make_world(session)
    a = agreements.create_agreement(session, agreement_input(w), viewer=V(w.sales))
    agreements.confirm(session, a.id, viewer=V(w.finance))
    with pytest.raises(AprAboveCap):
        agreements.propose_amendment(session, a.id, {"service_fee_rate": Decimal("0.4")}, reason="x",
                                     viewer=V(w.sales))


def test_supervisor_approval_after_confirmation_only_and_once(session):
    w = make_world(session)
    a = agreements.create_agreement(session, agreement_input(w), viewer=V(w.sales))
    with pytest.raises(StateConflict):
        agreements.approve(session, a.id, viewer=V(w.supervisor))
    agreements.confirm(session, a.id, viewer=V(w.finance))
    with pytest.raises(StateConflict, match="可能已被他人处理"):
        agreements.confirm(session, a.id, viewer=V(w.finance))
    with pytest.raises(PermissionDenied):
        agreements.approve(session, a.id, viewer=V(w.sales))
    agreements.approve(session, a.id, viewer=V(w.supervisor))
    assert a.status == "approved"


def test_agreements_are_scoped_to_the_cases_salesperson_and_case_officer(session):
    w = make_world(session)
    a = agreements.create_agreement(session, agreement_input(w), viewer=V(w.sales))
    assert [r[0].id for r in agreements.list_agreements(session, V(w.officer))] == [a.id]
    assert agreements.list_agreements(session, V(w.other_sales)) == []
    with pytest.raises(RecordNotFound):
        agreements.get_agreement(session, V(w.other_sales), a.id)
    assert [r[0].id for r in agreements.list_agreements(session, V(w.finance))] == [a.id]
