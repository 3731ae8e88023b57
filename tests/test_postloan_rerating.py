"""Risk re-rating after disbursement: early-warning rules on the risk expression language raise a case's tier
when a promise is broken or the credit report shows a new overdue, and tell the collector."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core import clock, pii
from core.audit import AuditLog
from crm.models import Customer, Notification
from lending.models import Application, RiskEvaluation
from lending.risk.credit import CreditReport, FakeCreditProvider, set_credit_provider
from lending.servicing import cob
from postloan import cases, nightly, rerating
from postloan.exceptions import CollectionInvalid, RuleInvalid
from postloan.models import CollectionCase
from tests.factories import make_staff
from tests.lending_flow_support import V
from tests.servicing_support import days, make_loan, on, pay
from tests.test_admin_support import console_client, log_in

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


def _rule_case(session, *, expression: str, raise_to: str = "high"):
    w, loan = make_loan(session)
    collector = make_staff(session, role="collector", department=w.manager.department, data_scope="own")
    rerating.save_warning_rule(session, V(w.manager), name="逾期较久", expression=expression, raise_to=raise_to)
    return w, loan, collector


def _notes(session, collector):
    return list(session.scalars(select(Notification.title).where(Notification.staff_id == collector.id)))


def test_the_nightly_run_raises_open_cases_by_the_rules_once(session):
    w, loan, collector = _rule_case(session, expression='overdue_days >= 12 and bucket == "M1"')
    on(D)
    cob.run_date(D)  # ten days overdue: the rule does not fire yet
    case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan.id))
    assert (case.risk_tier, case.collector_staff_id) == ("low", collector.id)
    on(D + days(2))
    cob.run_date(D + days(2))  # twelve days: raised by the nightly run, with no promise or credit check
    session.refresh(case)
    assert case.risk_tier == "high"
    assert _notes(session, collector) == [f"催收案件 #{case.id} 风险上调为高风险"]
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "collections.case.rerate", AuditLog.entity_id == str(case.id))) == 1
    assert nightly.run(session, D + days(2)) >= 0  # the same night again: nothing new
    on(D + days(3))
    cob.run_date(D + days(3))
    assert _notes(session, collector) == [f"催收案件 #{case.id} 风险上调为高风险"]


def test_repayment_behaviour_is_a_warning_fact(session):
    w, loan, collector = _rule_case(session, expression="days_since_repayment >= 30 and repaid_30d_amount == 0",
                                    raise_to="medium")
    on(D)
    cob.run_date(D)
    case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan.id))
    facts = rerating.facts_of(session, case)
    assert facts["repaid_30d_amount"] == 0 and facts["days_since_repayment"] == (D - loan.start_date).days
    assert case.risk_tier == "medium"  # never paid since the start, more than 30 days ago
    pay(session, w, loan, 10_000, D)
    facts = rerating.facts_of(session, case)
    assert (facts["repaid_30d_amount"], facts["days_since_repayment"]) == (10_000, 0)


def test_a_case_opens_at_the_tier_of_its_applications_risk_evaluation(session):
    w, loan = make_loan(session)
    app = session.get(Application, loan.application_id)
    previous = session.get(RiskEvaluation, app.risk_evaluation_id) if app.risk_evaluation_id else None
    flagged = RiskEvaluation(product_version_id=previous.product_version_id if previous else w.version_id,
                             customer_id=loan.customer_id, application_id=app.id, inputs={}, hits=[],
                             outcome="warn", provider_status="skipped", at=clock.now())
    session.add(flagged)
    session.flush()
    app.risk_evaluation_id = flagged.id
    session.flush()
    assert rerating.initial_tier(session, app.id) == "medium"
    on(D)
    cob.run_date(D)
    case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan.id))
    assert case.risk_tier == "medium"


def test_a_manager_sets_the_tier_by_hand_audited_and_a_collector_may_not(session):
    w, loan, collector = _rule_case(session, expression="overdue_days >= 100")
    on(D)
    cob.run_date(D)
    case = session.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan.id))
    with pytest.raises(CollectionInvalid):
        cases.set_tier(session, case.id, "high", viewer=V(collector), reason="我觉得")
    with pytest.raises(CollectionInvalid, match="原因"):
        cases.set_tier(session, case.id, "high", viewer=V(w.manager), reason=" ")
    client = console_client()
    csrf = log_in(client, session, w.manager)
    session.commit()
    bad = client.post(f"/console/collections/cases/{case.id}/tier", data={"csrf_token": csrf, "risk_tier": "x",
                                                                          "reason": "r"})
    assert bad.status_code == 422 and "请选择风险等级" in bad.text
    done = client.post(f"/console/collections/cases/{case.id}/tier",
                       data={"csrf_token": csrf, "risk_tier": "high", "reason": "借款人失联"})
    assert done.status_code == 303
    session.refresh(case)
    assert case.risk_tier == "high"
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "collections.case.set_tier"))
    assert entry is not None and entry.entity_id == str(case.id) and entry.detail == "借款人失联"
    assert _notes(session, collector) == [f"催收案件 #{case.id} 风险等级调整为高风险"]
    page = client.get(f"/console/collections/cases/{case.id}")
    assert "手动：借款人失联" in page.text and "调整风险等级" in page.text
