"""Approval controls: overriding a 拒绝 verdict or the credit limit needs the permission and a written reason;
one person never passes two review nodes of one application; the page offers only the buttons one may press."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from core import audit, clock
from lending import applications, approval
from lending.models import ApplicationTransition, RiskEvaluation, WorkflowDefinition
from tests.lending_flow_support import NOW, V, advance_to, make_world, node, satisfy, start
from tests.test_admin_support import bearer, console_client, log_in


@pytest.fixture
def w(session):
    clock.freeze(NOW)
    yield make_world(session)
    clock.unfreeze()


def _at_first_review(session, w, *, outcome="pass", limit=None, amount=None):
    app = advance_to(session, w, start(session, w, **({"amount": amount} if amount else {})), "first_review")
    evaluation = RiskEvaluation(product_version_id=w.version_id, customer_id=w.customer.id, application_id=app.id,
                                inputs={}, hits=[], outcome=outcome, credit_limit_amount=limit, provider="fake",
                                provider_status="ok", at=clock.now())
    session.add(evaluation)
    session.flush()
    app.risk_evaluation_id = evaluation.id
    satisfy(session, app, V(w.risk))
    session.flush()
    return app


def test_risk_cannot_approve_against_a_reject_verdict(session, w):
    app = _at_first_review(session, w, outcome="reject")
    with pytest.raises(approval.OverrideNotAllowed) as refused:
        applications.approve(session, app.id, viewer=V(w.risk), override_reason="客户资质其实很好，补充了流水")
    assert "风控结论为「拒绝」" in refused.value.message
    assert node(session, app).code == "first_review"


def test_an_override_needs_a_written_reason(session, w):
    app = _at_first_review(session, w, outcome="reject")
    with pytest.raises(approval.OverrideReasonRequired):
        applications.approve(session, app.id, viewer=V(w.manager), comment="同意")
    with pytest.raises(approval.OverrideReasonRequired):
        applications.approve(session, app.id, viewer=V(w.manager), override_reason="好")
    assert node(session, app).code == "first_review"


def test_an_override_with_permission_and_reason_is_recorded_on_the_application_and_in_the_audit_log(session, w):
    app = _at_first_review(session, w, outcome="pass", limit=4_500_000, amount=5_000_000)
    applications.approve(session, app.id, viewer=V(w.manager), comment="同意",
                         override_reason="客户补充了房产证明，额度可覆盖")
    assert node(session, app).code == "second_review"
    last = session.scalars(select(ApplicationTransition).where(ApplicationTransition.application_id == app.id)
                           .order_by(ApplicationTransition.id.desc())).first()
    assert "越权审批" in last.comment and "客户补充了房产证明" in last.comment
    assert "¥50,000.00 超过授信额度 ¥45,000.00" in last.comment
    entry = next(e for e in audit.search(session, action="lending.application.override"))
    assert entry.after["approved_amount"] == 5_000_000 and entry.after["reason"] == "客户补充了房产证明，额度可覆盖"


def test_within_the_limit_and_not_rejected_is_no_override(session, w):
    app = _at_first_review(session, w, outcome="manual_review", limit=50_000_000)
    applications.approve(session, app.id, viewer=V(w.risk), comment="同意")
    assert node(session, app).code == "second_review"


def test_one_person_cannot_pass_both_review_nodes(session, w):
    app = _at_first_review(session, w)
    applications.approve(session, app.id, viewer=V(w.risk), comment="初审通过")
    with pytest.raises(approval.SameReviewer):
        applications.approve(session, app.id, viewer=V(w.risk), comment="复审通过")
    assert node(session, app).code == "second_review"
    applications.approve(session, app.id, viewer=V(w.manager), comment="复审通过")
    assert node(session, app).code == "signing"


def test_a_workflow_may_allow_one_reviewer_for_both_nodes(session, w):
    app = _at_first_review(session, w)
    session.execute(update(WorkflowDefinition).where(WorkflowDefinition.id == app.definition_id)
                    .values(distinct_reviewers=False))
    applications.approve(session, app.id, viewer=V(w.risk), comment="初审通过")
    applications.approve(session, app.id, viewer=V(w.risk), comment="复审通过")
    assert node(session, app).code == "signing"


def test_the_page_offers_approve_only_to_who_may_press_it(session, w):
    app = _at_first_review(session, w, outcome="reject")
    url = f"/console/lending/applications/{app.id}"
    risk = console_client()
    log_in(risk, session, w.risk)
    page = risk.get(url).text
    assert "越权审批" in page and "/approve" not in page and "不能通过" in page
    assert "/reject" in page  # risk may still reject
    sales = console_client()
    log_in(sales, session, w.sales)
    page = sales.get(url).text
    assert "/approve" not in page and "/reject" not in page
    manager = console_client()
    log_in(manager, session, w.manager)
    page = manager.get(url).text
    assert 'name="override_reason"' in page and "越权批准" in page


def test_the_api_refuses_an_override_without_permission_and_changes_nothing(session, w):
    from crm import auth_service

    app = _at_first_review(session, w, outcome="reject")
    token, _ = auth_service.issue_api_token(session, w.risk.id, "测试")
    api = console_client()
    response = api.post(f"/api/v1/lending/applications/{app.id}/approve", headers=bearer(token),
                        json={"comment": "同意", "override_reason": "我觉得可以批准这个客户"})
    assert response.status_code == 403 and response.json()["code"] == "override_not_allowed"
    assert node(session, app).code == "first_review"


def test_the_simulated_credit_provider_gives_a_realistic_spread_of_verdicts():
    from collections import Counter

    from lending.risk.credit import simulated_report

    verdicts: Counter[str] = Counter()
    for n in range(2000):
        report = simulated_report("fake", f"11010119900101{n:04d}")
        verdicts["reject" if report.overdue_count >= 3 else "review" if report.score < 600 else "pass"] += 1
    assert 0.75 * 2000 <= verdicts["pass"] <= 0.95 * 2000
    assert 0.03 * 2000 <= verdicts["review"] <= 0.20 * 2000
    assert 0.01 * 2000 <= verdicts["reject"] <= 0.10 * 2000
    assert simulated_report("fake", "110101199001010011") == simulated_report("fake", "110101199001010011")


def test_the_designer_saves_whether_reviewers_must_differ_as_a_new_version(session, w):
    from lending.workflow import definitions

    active = definitions.ensure_active(session)
    assert active.distinct_reviewers is True
    specs = [definitions.NodeSpec.of(n) for n in definitions.nodes_of(session, active.id)]
    relaxed = definitions.save_definition(session, specs, note="放宽", distinct_reviewers=False)
    assert relaxed.id != active.id and relaxed.distinct_reviewers is False
    assert definitions.save_definition(session, specs, distinct_reviewers=False).id == relaxed.id  # nothing changed


def test_the_designer_takes_required_fields_by_their_chinese_labels(session, w):
    from lending.workflow import definitions

    active = definitions.ensure_active(session)
    specs = [definitions.NodeSpec.of(n) for n in definitions.nodes_of(session, active.id)]
    from dataclasses import replace

    specs[1] = replace(specs[1], required_fields="月收入（元）、工作单位")
    saved = definitions.save_definition(session, specs, note="按中文字段")
    second = definitions.nodes_of(session, saved.id)[1]
    assert second.required_fields == ["monthly_income", "employer"]
