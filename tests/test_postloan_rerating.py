"""Risk re-rating after disbursement: early-warning rules on the risk expression language raise a case's tier
when a promise is broken or the credit report shows a new overdue, and tell the collector."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core import pii
from crm.models import Customer, Notification
from lending.risk.credit import CreditReport, FakeCreditProvider, set_credit_provider
from lending.servicing import cob
from postloan import cases, rerating
from postloan.exceptions import RuleInvalid
from postloan.models import CollectionCase
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import days, make_loan, on

DUE = date(2026, 12, 23)
D = DUE + days(10)
ID = "110101199003074518"


def _case(session):
    w, loan = make_loan(session)
    collector = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    rerating.save_warning_rule(session, V(w.manager), name="承诺违约", expression="broken_promises >= 1",
                               raise_to="high")
    rerating.save_warning_rule(session, V(w.manager), name="征信新增逾期", expression="external_overdue_new > 0",
                               raise_to="medium")
    on(D)
    cob.run_date(D)
    case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan.id))
    return w, case, collector


def test_a_broken_promise_raises_the_tier_and_tells_the_collector(session):
    w, case, collector = _case(session)
    cases.record_promise(session, case.id, viewer=V(collector), promised_date=D + days(1), promised_amount=5_000)
    on(D + days(2))
    cob.run_date(D + days(2))  # the promised day has passed unpaid: broken
    session.refresh(case)
    assert case.risk_tier == "high"
    assert any("风险等级上调为高风险" in (h.note or "") for h in cases.history_of(session, case))
    titles = list(session.scalars(select(Notification.title).where(Notification.staff_id == collector.id)))
    assert titles == [f"催收案件 #{case.id} 风险上调为高风险"]


def test_a_new_external_overdue_raises_the_tier_once(session):
    w, case, collector = _case(session)
    customer = session.get(Customer, case.customer_id)
    customer.id_number_enc = pii.seal(pii.ID_NUMBER, ID)
    provider = FakeCreditProvider(reports={ID: CreditReport("fake", 650, overdue_count=1)})
    set_credit_provider(provider)
    try:
        assert rerating.check_credit(session, case.id) == 0  # the first check sets the baseline
        assert case.risk_tier == "low"
        provider.reports[ID] = CreditReport("fake", 600, overdue_count=3)
        assert rerating.check_credit(session, case.id) == 2
        assert (case.risk_tier, case.external_overdue_count) == ("medium", 3)
        assert rerating.check_credit(session, case.id) == 0  # nothing new: no second raise
    finally:
        set_credit_provider(None)
    assert len(list(session.scalars(select(Notification).where(Notification.staff_id == collector.id)))) == 1


def test_open_cases_are_due_for_a_credit_recheck_every_n_days(session):
    w, case, collector = _case(session)
    customer = session.get(Customer, case.customer_id)
    customer.id_number_enc = pii.seal(pii.ID_NUMBER, ID)
    assert case.id in rerating.due_for_credit_check(session, every_days=30, limit=10)  # never checked
    assert rerating.due_for_credit_check(session, every_days=0, limit=10) == []  # re-checks switched off
    set_credit_provider(FakeCreditProvider(reports={ID: CreditReport("fake", 650, overdue_count=0)}))
    try:
        assert rerating.check_credit(session, case.id) == 0
    finally:
        set_credit_provider(None)
    assert case.id not in rerating.due_for_credit_check(session, every_days=30, limit=10)
    on(D + days(30))
    assert case.id in rerating.due_for_credit_check(session, every_days=30, limit=10)


def test_a_warning_rule_with_an_unknown_fact_is_refused(session):
    w, _ = make_loan(session)
    with pytest.raises(RuleInvalid, match="未知的字段「credit_score」") as exc:
        rerating.save_warning_rule(session, V(w.manager), name="坏", expression="credit_score < 500", raise_to="high")
    assert exc.value.details["field"] == "expression"
