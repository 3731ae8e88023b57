"""lending.loan_demo (and the tag and consent demos): `scrm seed-demo` leaves every role something to work on."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from core import audit, clock
from crm import demo as crm_demo
from crm.models import CustomerTag, Staff, TagGroup
from lending import demo as lending_demo
from lending.models import Application, Loan, LoanInstallment, Repayment, WorkflowNode
from lending.models.consent import MpConsent, MpConsentDocument
from miniprogram_api import demo as mp_demo

NOW = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


def _count(session, *what) -> int:
    return session.scalar(select(func.count()).select_from(what[0]).where(*what[1:])) or 0


def test_demo_has_applications_at_every_node_and_loans_in_every_bucket(session):
    clock.freeze(NOW)
    crm_demo.seed(session)
    lines = lending_demo.seed(session)
    mp_demo.seed(session)
    assert any(line.startswith("演示贷款：9 笔") for line in lines), lines

    at_node = dict(session.execute(select(WorkflowNode.code, func.count()).join(
        Application, Application.current_node_id == WorkflowNode.id).group_by(WorkflowNode.code)).all())
    assert at_node.keys() >= {"intake", "first_review", "second_review", "signing", "disbursement", "servicing"}
    statuses = set(session.scalars(select(Application.status)))
    assert {"rejected", "withdrawn", "disbursed"} <= statuses

    loans = list(session.scalars(select(Loan)))
    assert {loan.bucket for loan in loans} == {"C", "M1", "M2", "M3", "M3+"}
    assert any(loan.status == "closed" for loan in loans)
    collector = session.scalar(select(Staff.id).where(Staff.username == "collector"))
    assert all(loan.collector_staff_id == collector for loan in loans if loan.bucket != "C")
    assert _count(session, Repayment) >= 15
    assert _count(session, LoanInstallment, LoanInstallment.status == "overdue") >= 4
    oldest = session.scalar(select(func.min(Loan.start_date)))
    assert (clock.today() - oldest).days > 180  # months of history, not one day's
    # the clock travelled back and came home: nothing happened after "now", and it is frozen where it was
    assert clock.now() == NOW
    for column in (audit.AuditLog.at, Application.updated_at, Repayment.created_at):
        assert clock.ensure_aware(session.scalar(select(func.max(column)))) <= NOW, column

    assert _count(session, TagGroup) == 4 and _count(session, CustomerTag) > 100
    assert _count(session, MpConsentDocument) == 2
    assert _count(session, MpConsent, MpConsent.action == "grant") >= 2  # who consented, for the console page

    assert lending_demo.seed(session) == [] and mp_demo.seed(session) == []  # once per database
    assert _count(session, Loan) == 9


def test_clock_travel_puts_a_running_clock_back_running():
    with clock.travel(NOW):
        assert clock.now() == NOW
    assert clock.now() != NOW
    clock.freeze(NOW)
    with clock.travel(datetime(2026, 1, 1, tzinfo=UTC)):
        pass
    assert clock.now() == NOW


def test_demo_collections_open_a_case_per_overdue_loan_with_the_collectors_first_calls(session):
    from postloan import demo as postloan_demo
    from postloan.models import CollectionAction, CollectionCase

    clock.freeze(NOW)
    crm_demo.seed(session)
    lending_demo.seed(session)
    lines = postloan_demo.seed(session)
    assert lines and lines[0].startswith("演示催收：4 笔") and "2 条话术" in lines[0], lines
    overdue = set(session.scalars(select(Loan.id).where(Loan.bucket != "C")))
    assert set(session.scalars(select(CollectionCase.loan_id).where(CollectionCase.status == "open"))) == overdue
    calls = list(session.scalars(select(CollectionAction).where(CollectionAction.kind == "call")))
    assert len(calls) == 4 and sum(1 for c in calls if c.outcome == "承诺还款") == 1
    assert postloan_demo.seed(session) == []  # once
