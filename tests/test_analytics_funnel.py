"""The funnel rollup (analytics_customer_funnel): kept by the database's triggers for every event kind and every
write path, rebuilt by the migration's backfill; the funnel by cohort and by activity, the median time between
steps, and each figure's drill-down list equal to it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from analytics import dashboards, funnel, metrics
from analytics.metrics import Filters
from analytics.models import CustomerFunnel
from core import clock
from core.errors import ValidationFailed
from core.migrations import funnel_rollup
from crm import visits
from crm.models import Customer, FollowUp
from lending.models import Application, ApplicationTransition, Contract
from tests.analytics_support import PERIOD, PREVIOUS, seed
from tests.factories import make_customer, make_staff
from tests.lending_flow_support import NOW, V
from tests.test_analytics_drilldown import _check_board

NOV = Filters(*PERIOD)
COLUMNS = [getattr(CustomerFunnel, f"{s}_at") for s in funnel_rollup.STEPS]


def _rollup(session, customer_id):
    row = session.execute(select(*COLUMNS).where(CustomerFunnel.customer_id == customer_id)).one_or_none()
    return None if row is None else dict(zip(funnel_rollup.STEPS, row, strict=True))


def _all_rows(session):
    return sorted(session.execute(select(CustomerFunnel.customer_id, CustomerFunnel.lead_at, *COLUMNS)).all())


def _followup(session, customer, staff, at):
    """A follow-up written by a plain Core insert (no ORM, no service): the trigger still sees it."""
    session.execute(insert(FollowUp).values(customer_id=customer.id, staff_id=staff.id, kind="call", content="电话",
                                            created_at=at))


def test_the_rollup_follows_every_event_kind(session):
    s = seed(session)
    li = _rollup(session, s.customers["李四"].id)
    # follow-up, arrived visit, application, approval, signing, loan: all at the frozen NOW of the seed
    assert li is not None and all(li[step] == NOW for step in funnel_rollup.STEPS), li
    wang = _rollup(session, s.customers["王五"].id)
    assert (wang["contacted"], wang["applied"], wang["approved"], wang["signed"]) == (NOW, NOW, None, None)
    assert _rollup(session, s.customers["赵六"].id) is None  # no event, no row

    # a visit only counts once arrived (the UPDATE of its status)
    zhao = s.customers["赵六"]
    visit = visits.schedule_visit(session, zhao.id, NOW + timedelta(hours=3), department_id=s.w.sales.department_id,
                                  viewer=V(s.w.sales))
    assert _rollup(session, zhao.id) is None
    clock.freeze(NOW + timedelta(hours=3))
    visits.mark_arrived(session, V(s.w.sales), visit.id)
    assert _rollup(session, zhao.id)["visited"] == NOW + timedelta(hours=3)

    # plain Core inserts: an earlier follow-up moves the step back, a later one does not
    _followup(session, zhao, s.w.sales, NOW + timedelta(hours=5))
    assert _rollup(session, zhao.id)["contacted"] == NOW + timedelta(hours=5)
    _followup(session, zhao, s.w.sales, NOW + timedelta(hours=1))
    _followup(session, zhao, s.w.sales, NOW + timedelta(hours=9))
    assert _rollup(session, zhao.id)["contacted"] == NOW + timedelta(hours=1)

    # a transition into signed (Core insert) is both an approval and a signing, looked up through the application
    qian = s.customers["钱七"]
    app_id = session.scalar(select(Application.id).where(Application.customer_id == qian.id))
    session.execute(insert(ApplicationTransition).values(
        application_id=app_id, event="approve", from_status="approved", to_status="signed", actor_label="测试",
        at=NOW + timedelta(days=1)))
    qian_row = _rollup(session, qian.id)
    assert (qian_row["approved"], qian_row["signed"], qian_row["disbursed"]) == (
        NOW + timedelta(days=1), NOW + timedelta(days=1), None)
    session.execute(insert(ApplicationTransition).values(
        application_id=app_id, event="reject", from_status="reviewing", to_status="rejected", actor_label="测试",
        at=NOW - timedelta(days=1)))  # not a step
    assert _rollup(session, qian.id) == qian_row

    # the rollup's copy of the lead's creation follows the customer
    assert session.scalar(select(CustomerFunnel.lead_at).where(CustomerFunnel.customer_id == zhao.id)) == NOW
    session.execute(update(Customer).where(Customer.id == zhao.id).values(created_at=NOW - timedelta(days=30)))
    assert session.scalar(select(CustomerFunnel.lead_at).where(CustomerFunnel.customer_id == zhao.id)) == (
        NOW - timedelta(days=30))

    # a contract signed (imported with its contract, no transition): its signed_at counts
    earlier = NOW - timedelta(days=2)
    session.execute(update(Contract).where(Contract.application_id == s.loan.application_id).values(signed_at=earlier))
    assert _rollup(session, s.customers["李四"].id)["signed"] == earlier


def test_the_backfill_rebuilds_what_the_triggers_kept(session):
    s = seed(session)
    _followup(session, s.customers["周九"], s.w.sales, NOW - timedelta(days=40))
    kept = _all_rows(session)
    assert len(kept) == 4  # 李四 王五 钱七 周九
    conn = session.connection()
    conn.execute(CustomerFunnel.__table__.delete())
    assert _all_rows(session) == []
    assert funnel_rollup.rebuild(conn) == 4
    assert _all_rows(session) == kept


def _counts(session, staff, flt, mode):
    counts = metrics.funnel_counts(session, V(staff), flt, mode)
    return [counts[step] for step in funnel.STEPS]


def test_cohort_and_activity_count_different_customers(session):
    s = seed(session)
    # 周九 (a lead of October) is contacted in November
    _followup(session, s.customers["周九"], s.w.sales, NOW)
    mgr = s.w.manager
    assert _counts(session, mgr, NOV, "cohort") == [5, 3, 1, 3, 1, 1, 1]
    assert _counts(session, mgr, NOV, "activity") == [5, 4, 1, 3, 1, 1, 1]
    october = Filters(*PREVIOUS)
    assert _counts(session, mgr, october, "cohort") == [1, 1, 0, 0, 0, 0, 0]  # 周九, contacted later
    assert _counts(session, mgr, october, "activity") == [1, 0, 0, 0, 0, 0, 0]
    # the viewer's scope holds in both
    assert _counts(session, s.w.other_sales, NOV, "activity") == [1, 1, 0, 1, 0, 0, 0]
    assert _counts(session, s.far, NOV, "activity") == [1, 0, 0, 0, 0, 0, 0]
    # and the filters
    assert _counts(session, mgr, Filters(*PERIOD, owner_id=s.w.other_sales.id), "activity") == [1, 1, 0, 1, 0, 0, 0]


@pytest.mark.parametrize("mode", ["cohort", "activity"])
def test_each_funnel_figure_opens_a_list_of_exactly_its_customers(session, mode):
    s = seed(session)
    _followup(session, s.customers["周九"], s.w.sales, NOW)
    for staff in (s.w.manager, s.w.sales):
        board = dashboards.build(session, V(staff), NOV, mode)
        assert [c.key for c in board.funnel] == [f"funnel_{step}" for step in funnel.STEPS]
        assert all(c.url for c in board.funnel)
        if mode == "activity":
            assert "funnel_mode=activity&funnel_from=2026-11-01&funnel_to=2026-11-30" in board.funnel[1].url
    assert _check_board(session, s.w.manager, mode) >= len(funnel.STEPS) + 2  # the seven steps and the cards


def test_medians_between_steps_on_known_times(session):
    clock.freeze(NOW)
    manager = make_staff(session, role="manager", data_scope="all")
    sales = make_staff(session)
    start = datetime(2026, 11, 9, 16, 0, tzinfo=UTC)  # 2026-11-10 00:00 in Shanghai
    hours = {"甲": 2, "乙": 4, "丙": 10, "丁": 30, "戊": -1}  # 戊 was followed up before it was entered
    people = {}
    for name, h in hours.items():
        c = make_customer(session, owner=sales, name=name)
        c.created_at = start
        session.flush()
        _followup(session, c, sales, start + timedelta(hours=h))
        people[name] = c
    hour = timedelta(hours=1).total_seconds()
    cohort = metrics.funnel_medians(session, V(manager), NOV, "cohort")
    assert cohort["contacted"] == pytest.approx(7 * hour)  # 2, 4, 10, 30: (4 + 10) / 2, 戊 left out
    assert cohort["visited"] is None and cohort["disbursed"] is None
    nov10 = Filters(date(2026, 11, 10), date(2026, 11, 10))
    assert metrics.funnel_medians(session, V(manager), nov10, "activity")["contacted"] == pytest.approx(4 * hour)
    nov11 = Filters(date(2026, 11, 11), date(2026, 11, 11))
    assert metrics.funnel_medians(session, V(manager), nov11, "activity")["contacted"] == pytest.approx(30 * hour)
    assert metrics.funnel_medians(session, V(manager), nov11, "cohort")["contacted"] is None  # no lead that day
    board = dashboards.build(session, V(manager), NOV)
    contacted = board.funnel[1]
    assert (contacted.value, contacted.conversion, contacted.median_seconds) == (5, 1, pytest.approx(7 * hour))


def test_the_seeded_steps_take_no_time_and_convert(session):
    s = seed(session)
    board = dashboards.build(session, V(s.w.manager), NOV)
    figures = [(c.value, c.conversion, c.median_seconds) for c in board.funnel]
    assert figures[0] == (5, None, None)
    assert [f[0] for f in figures] == [5, 3, 1, 3, 1, 1, 1]
    assert [str(f[1]) for f in figures[1:]] == ["0.6000", "0.3333", "3.0000", "0.3333", "1.0000", "1.0000"]
    # every event of the seed happens at the frozen NOW, the instant its November leads were entered
    assert [f[2] for f in figures[1:]] == [0.0] * 6


def test_a_bad_funnel_drill_down_is_refused_in_chinese(session):
    seed(session)
    for params, message in (({"funnel": "signed", "funnel_mode": "weekly"}, "未知的漏斗统计方式"),
                            ({"funnel": "signed", "funnel_mode": "activity", "funnel_from": "2026-13-01",
                              "funnel_to": "2026-11-30"}, "漏斗开始日期无效"),
                            ({"funnel": "signed", "funnel_mode": "activity", "funnel_from": "2026-11-30",
                              "funnel_to": "2026-11-01"}, "漏斗开始日期不能晚于结束日期")):
        with pytest.raises(ValidationFailed, match=message):
            funnel.customer_list_clauses(session, params)
    assert len(funnel.customer_list_clauses(session, {"funnel": "signed", "funnel_mode": "activity",
                                                      "funnel_from": "2026-11-01", "funnel_to": "2026-11-30"})) == 1


def test_the_migration_backfills_the_events_already_recorded(committed):
    from alembic import command

    from core.cli import alembic_config

    with committed() as session:
        s = seed(session)
        _followup(session, s.customers["周九"], s.w.sales, NOW - timedelta(days=40))
        session.commit()
        kept = _all_rows(session)
    assert len(kept) == 4
    engine = committed.kw["bind"]
    # down to the revision before the rollup's and up again; a connection outside a transaction, as `scrm db`
    # gives one (on SQLite, env.py turns foreign keys off for the table rebuilds of later revisions' downgrades)
    for step, target in ((command.downgrade, "0031_finfix_charged_version"), (command.upgrade, "heads")):
        with engine.connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            step(cfg, target)
    with committed() as session:
        assert _all_rows(session) == kept  # rebuilt from the events by the upgrade
        _followup(session, s.customers["赵六"], s.w.sales, NOW)  # and the triggers are back
        assert _rollup(session, s.customers["赵六"].id)["contacted"] == NOW
        session.rollback()
