"""Reports: per referrer and channel, leaderboard, per salesperson within the data scope, monthly
statements on Shanghai months."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from crm.scope import Viewer
from referral import ledger, reports
from tests.factories import make_customer, make_org, make_staff
from tests.referral_support import T0, make_agent, principal_rule, referred_customer
from tests.test_referral_ledger import disburse


def test_referrer_report_counts_invitees_loans_and_money(session):
    agent = make_agent(session, "甲")
    make_agent(session, "乙")
    principal_rule(session, level2="0")
    c1 = referred_customer(session, agent)
    referred_customer(session, agent)
    loan, _ = disburse(session, c1, 2_000_000)
    ledger.reverse_for_loan(session, loan, "退款")
    (row,) = [r for r in reports.referrer_report(session) if r.referrer_id == agent.id]
    assert (row.invitees, row.loans, row.principal, row.accrued, row.reversed, row.net) == (
        2, 1, 2_000_000, 20_000, -20_000, 0)


def test_channel_report_lists_only_channels(session):
    make_agent(session, "渠道A", kind="channel")
    make_agent(session, "经纪人B")
    assert [r.name for r in reports.referrer_report(session, kind="channel")] == ["渠道A"]


def test_leaderboard_ranks_by_net_commission_in_the_month(session):
    small, big = make_agent(session, "小"), make_agent(session, "大")
    principal_rule(session, level2="0")
    disburse(session, referred_customer(session, small), 1_000_000)
    disburse(session, referred_customer(session, big), 5_000_000)
    disburse(session, referred_customer(session, small), 9_000_000, at=T0 + timedelta(days=40))  # April
    assert [r.name for r in reports.leaderboard(session, month=date(2026, 3, 1))] == ["大", "小"]
    assert [r.name for r in reports.leaderboard(session, month=date(2026, 4, 1))] == ["小"]


def test_salesperson_report_stays_inside_the_viewers_scope(session):
    org = make_org(session)
    mine = make_staff(session, department=org["team_a"])
    other = make_staff(session, department=org["team_b"])
    lead = make_staff(session, role="manager", department=org["team_a"], data_scope="department")
    agent = make_agent(session)
    principal_rule(session, level2="0")
    from referral import attribution

    for owner in (mine, other):
        customer = make_customer(session, owner=owner)
        attribution.attribute(session, customer.id, agent.code)
        disburse(session, customer.id, 1_000_000)
    rows = reports.salesperson_report(session, Viewer.of(lead))
    assert [(r.staff_id, r.referred_customers, r.loans, r.referrer_commission) for r in rows] == [
        (mine.id, 1, 1, 10_000)]


def test_monthly_statement_uses_shanghai_months(session):
    from core import clock

    agent = make_agent(session)
    principal_rule(session, level2="0")
    clock.freeze(datetime(2026, 3, 31, 15, 0, tzinfo=UTC))  # 23:00 on 31 March in Shanghai
    disburse(session, referred_customer(session, agent), 1_000_000, at=clock.now())
    clock.freeze(datetime(2026, 3, 31, 17, 0, tzinfo=UTC))  # 01:00 on 1 April in Shanghai
    disburse(session, referred_customer(session, agent), 2_000_000, at=clock.now())
    march = reports.monthly_statement(session, agent.id, date(2026, 3, 1))
    april = reports.monthly_statement(session, agent.id, date(2026, 4, 15))
    assert (march.opening_total, [e.amount for e in march.entries], march.closing_total) == (0, [10_000], 10_000)
    assert (april.opening_total, [e.amount for e in april.entries], april.closing_total) == (10_000, [20_000], 30_000)
    assert reports.statement_xlsx(april)[:2] == b"PK"
