"""Applications through the workflow: hand-off, the state machine, gates, stage, scope, SLA, dwell time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock
from core.errors import PermissionDenied, ValidationFailed
from crm import customers
from crm.exceptions import CustomerBlacklisted
from crm.models import Customer, CustomerEvent, Notification, WorkTask
from lending import applications
from lending.application_exceptions import (
    ApplicationAlreadyOpen,
    ApplicationClosed,
    ApplicationNotFound,
    ReasonRequired,
    RequirementsMissing,
    StaleNode,
    TransitionRefused,
)
from lending.models import Application, ApplicationNodeVisit, ApplicationTransition
from lending.product_exceptions import AmountOutOfRange, TermNotAllowed
from lending.workflow import engine
from tests.lending_flow_support import V, advance_to, count, default_codes, freeze, make_world, node, satisfy, start

OPEN_NODES = ["intake", "first_review", "second_review", "signing", "disbursement"]


def test_a_started_application_sits_at_intake_with_its_task_and_the_customer_applied(session):
    w = make_world(session)
    app = start(session, w)
    assert (app.status, node(session, app).code) == ("intake", "intake")
    assert session.get(Customer, w.customer.id).stage == "applied"
    task = session.scalar(select(WorkTask).where(WorkTask.source == f"lending:{app.id}"))
    assert task is not None and task.staff_id == w.sales.id and task.status == "open"
    first = session.scalar(select(ApplicationTransition).where(ApplicationTransition.application_id == app.id))
    assert (first.event, first.to_status, first.by_staff_id) == ("start", "intake", w.sales.id)


def test_approve_moves_to_the_next_node_only(session):
    w = make_world(session)
    app = start(session, w)
    satisfy(session, app, V(w.sales))
    with pytest.raises(TransitionRefused, match="不能跳过节点"):
        applications.approve(session, app.id, viewer=V(w.manager), to_node_code="second_review")
    applications.approve(session, app.id, viewer=V(w.sales), to_node_code="first_review")
    assert node(session, app).code == "first_review" and app.status == "reviewing"


def test_approve_is_refused_until_required_fields_and_documents_are_present(session):
    w = make_world(session)
    app = start(session, w)
    with pytest.raises(RequirementsMissing, match="借款用途、身份证"):
        applications.approve(session, app.id, viewer=V(w.sales))
    applications.set_fields(session, app.id, {"purpose": "装修"}, viewer=V(w.sales))
    with pytest.raises(RequirementsMissing, match="身份证"):
        applications.approve(session, app.id, viewer=V(w.sales))
    applications.add_document(session, app.id, "身份证", viewer=V(w.sales))
    applications.approve(session, app.id, viewer=V(w.sales))
    assert node(session, app).code == "first_review"


@pytest.mark.parametrize("code", OPEN_NODES)
def test_reject_with_a_reason_closes_from_any_open_node(session, code):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), code)
    with pytest.raises(ReasonRequired):
        applications.reject(session, app.id, "  ", viewer=V(w.manager))
    applications.reject(session, app.id, "负债过高", viewer=V(w.manager))
    assert (app.status, app.current_node_id, app.close_reason) == ("rejected", None, "负债过高")
    assert engine.open_visit(session, app.id) is None
    assert session.get(Customer, w.customer.id).stage == "lost"


@pytest.mark.parametrize("code", OPEN_NODES)
def test_withdraw_with_a_reason_closes_from_any_open_node(session, code):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), code)
    applications.withdraw(session, app.id, "客户不需要了", viewer=V(w.sales))
    assert app.status == "withdrawn"
    last = session.scalars(select(ApplicationTransition).where(ApplicationTransition.application_id == app.id)
                           .order_by(ApplicationTransition.id.desc())).first()
    assert (last.event, last.comment, last.by_staff_id) == ("withdraw", "客户不需要了", w.sales.id)


def test_a_closed_application_accepts_no_event(session):
    w = make_world(session)
    app = start(session, w)
    applications.withdraw(session, app.id, "不需要", viewer=V(w.sales))
    with pytest.raises(ApplicationClosed):
        applications.approve(session, app.id, viewer=V(w.manager))
    with pytest.raises(ApplicationClosed):
        applications.reject(session, app.id, "x", viewer=V(w.manager))


def test_a_stale_form_is_refused(session):
    w = make_world(session)
    app = start(session, w)
    intake_id = app.current_node_id
    advance_to(session, w, app, "first_review")
    with pytest.raises(StaleNode):
        applications.reject(session, app.id, "看错了", viewer=V(w.manager), expected_node_id=intake_id)


def test_sales_cannot_decide_a_risk_review(session):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), "first_review")
    satisfy(session, app, V(w.sales))
    with pytest.raises(PermissionDenied):
        applications.approve(session, app.id, viewer=V(w.sales))
    applications.approve(session, app.id, viewer=V(w.risk))
    assert node(session, app).code == "second_review"


def test_a_second_open_application_for_the_same_product_is_refused(session):
    w = make_world(session)
    first = start(session, w)
    with pytest.raises(ApplicationAlreadyOpen):
        start(session, w)
    applications.reject(session, first.id, "资料不全", viewer=V(w.manager))
    assert start(session, w).id != first.id


def test_the_same_idempotency_key_returns_the_same_application(session):
    w = make_world(session)
    a = start(session, w, channel="miniprogram", viewer=None, idempotency_key="mp-123")
    b = start(session, w, channel="miniprogram", viewer=None, idempotency_key="mp-123")
    assert a.id == b.id and count(session, Application) == 1 and a.channel == "miniprogram"


def test_a_blacklisted_customer_is_refused(session):
    w = make_world(session)
    customers.blacklist(session, V(w.manager), w.customer.id, "欺诈")
    with pytest.raises(CustomerBlacklisted):
        start(session, w, viewer=V(w.manager))
    assert count(session, Application) == 0


def test_amount_and_term_outside_the_product_are_refused_with_the_reason(session):
    w = make_world(session)
    with pytest.raises(AmountOutOfRange, match="不在产品允许的"):
        start(session, w, amount=100)
    with pytest.raises(TermNotAllowed, match="期限 7 个月不可选"):
        start(session, w, term=7)
    with pytest.raises(ValidationFailed):
        start(session, w, channel="fax")


def test_the_customer_stage_follows_the_application(session, task_runner):
    w = make_world(session)
    app = start(session, w)
    stages = {}
    for code in ["signing", "disbursement", "servicing"]:
        advance_to(session, w, app, code)
        stages[code] = session.get(Customer, w.customer.id).stage
    assert stages == {"signing": "approved", "disbursement": "signed", "servicing": "disbursed"}
    session.commit()
    task_runner.drain()
    session.expire_all()
    assert session.get(Customer, w.customer.id).stage == "repaying"


def test_rejection_leaves_the_stage_alone_while_another_application_is_open(session):
    w = make_world(session)
    from tests.lending_product_factories import make_product

    other_product = make_product(session)
    start(session, w)
    second = applications.start_application(session, w.customer.id, other_product.current_version_id, 2_000_000, 12,
                                            viewer=V(w.sales))
    applications.reject(session, second.id, "不符合", viewer=V(w.manager))
    assert session.get(Customer, w.customer.id).stage == "applied"


def test_every_transition_is_on_the_timeline_and_audited(session):
    from core.audit import AuditLog

    w = make_world(session)
    app = advance_to(session, w, start(session, w), "second_review")
    events = session.scalars(select(CustomerEvent.summary).where(
        CustomerEvent.customer_id == w.customer.id, CustomerEvent.kind == "lending_application")).all()
    assert len(events) == 3 and any("初审" in e for e in events)
    assert count(session, AuditLog, AuditLog.entity_type == "lending_application",
                 AuditLog.entity_id == str(app.id), AuditLog.action.like("lending.application.%")) >= 3


def test_another_salespersons_application_is_not_found(session):
    w = make_world(session)
    app = start(session, w)
    with pytest.raises(ApplicationNotFound):
        applications.get_application(session, V(w.other_sales), app.id)
    with pytest.raises(ApplicationNotFound):
        applications.approve(session, app.id, viewer=V(w.other_sales))
    board = applications.pipeline(session, V(w.other_sales))
    assert board.total == 0
    assert applications.pipeline(session, V(w.sales)).total == 1


def test_dwell_time_is_recorded_per_node_visit(session):
    freeze()
    w = make_world(session)
    app = start(session, w)
    satisfy(session, app, V(w.sales))
    clock.advance(timedelta(hours=3))
    board = applications.pipeline(session, V(w.manager))
    card = next(c for col in board.columns for c in col.cards if c.application.id == app.id)
    assert card.dwell_label == "已停留 3 小时"
    applications.approve(session, app.id, viewer=V(w.sales))
    visits = applications.visits(session, app.id)
    first, _ = visits[0]
    assert first.left_at - first.entered_at == timedelta(hours=3) and first.outcome == "approve"
    assert visits[1][0].left_at is None


def test_a_breached_sla_reminds_once_per_node_visit(session, task_runner):
    from core.tasks import run_task

    freeze()
    w = make_world(session)
    app = start(session, w)
    session.commit()
    assert run_task("lending.sla_reminders", (), {}) == 0
    clock.advance(timedelta(hours=25))
    assert run_task("lending.sla_reminders", (), {}) == 1
    assert run_task("lending.sla_reminders", (), {}) == 0
    assert count(session, Notification, Notification.kind == "lending_sla", Notification.staff_id == w.sales.id) == 1
    board = applications.pipeline(session, V(w.manager))
    assert board.columns[0].breached == 1
    satisfy(session, app, V(w.sales))
    applications.approve(session, app.id, viewer=V(w.sales))  # a new visit, a new SLA
    clock.advance(timedelta(hours=25))
    assert engine.send_sla_reminders(session) == 1


def test_entering_a_node_notifies_its_role(session):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), "first_review")
    assert count(session, Notification, Notification.kind == "lending_node", Notification.staff_id == w.risk.id) == 1
    visit = session.scalar(select(ApplicationNodeVisit).where(ApplicationNodeVisit.application_id == app.id,
                                                              ApplicationNodeVisit.left_at.is_(None)))
    assert (visit.responsible_role, visit.responsible_staff_id) == ("risk", None)


def test_the_default_workflow_has_the_six_nodes_in_order(session):
    w = make_world(session)
    app = start(session, w)
    names = [n.name for n in applications.machine_for(session, app).nodes]
    assert names == ["进件", "初审", "复审", "签约", "放款", "贷后"]
    assert [n.code for n in applications.machine_for(session, app).nodes] == default_codes()


def test_entering_first_review_runs_the_risk_rules_with_the_recent_applications_fact(session):
    from lending.models import RiskEvaluation
    from lending.risk import rules as risk_rules

    w = make_world(session)
    risk_rules.save_rule_set(session, w.product.id, [
        {"name": "多头申请", "expression": "recent_applications(30) >= 1", "outcome": "manual_review",
         "reason": "近期多次申请"}])
    from tests.lending_product_factories import make_product

    other = make_product(session)
    applications.start_application(session, w.customer.id, other.current_version_id, 2_000_000, 12, viewer=V(w.sales))
    app = advance_to(session, w, start(session, w), "first_review")
    evaluation = session.get(RiskEvaluation, app.risk_evaluation_id)
    assert evaluation is not None and evaluation.application_id == app.id
    assert evaluation.outcome == "manual_review" and evaluation.hits[0]["name"] == "多头申请"
