"""The metric layer on a small seeded world: every figure equals the hand count, for each data scope."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from analytics import dashboards, metrics
from analytics.metrics import Filters
from core import clock
from lending.models import Disbursement, LoanInstallment
from tests.analytics_support import PERIOD, PREVIOUS, seed
from tests.factories import make_staff
from tests.lending_flow_support import AMOUNT, V

NOV = Filters(*PERIOD)


def _aggregates(statements: list[str]) -> list[str]:
    """The statements computing figures (the scope's department and staff lookups left out)."""
    return [q for q in statements if "count(" in q.lower() or "sum(" in q.lower() or "percentile" in q.lower()]


@contextmanager
def _statements(session):
    """The SQL statements sent while the block runs."""
    sent: list[str] = []
    bind = session.connection().engine

    def record(conn, cursor, statement, *args):  # noqa: ANN001, ANN002
        sent.append(statement)

    event.listen(bind, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(bind, "before_cursor_execute", record)

FUNNEL = ("funnel_lead", "funnel_contacted", "funnel_visited", "funnel_applied", "funnel_approved",
          "funnel_signed", "funnel_disbursed")


def _funnel(session, viewer, flt=NOV):
    return [metrics.value(session, viewer, key, flt) for key in FUNNEL]


def test_manager_sees_every_lead_of_the_period_through_the_funnel(session):
    s = seed(session)
    # 李四 王五 赵六 钱七 孙八 created in November; 周九 in October
    assert _funnel(session, V(s.w.manager)) == [5, 3, 1, 3, 1, 1, 1]
    assert metrics.value(session, V(s.w.manager), "conversion_rate", NOV) == Decimal("0.2000")


def test_salesperson_sees_only_own_customers(session):
    s = seed(session)
    assert _funnel(session, V(s.w.sales)) == [3, 2, 1, 2, 1, 1, 1]
    assert _funnel(session, V(s.w.other_sales)) == [1, 1, 0, 1, 0, 0, 0]
    assert _funnel(session, V(s.far)) == [1, 0, 0, 0, 0, 0, 0]
    assert metrics.value(session, V(s.w.other_sales), "disbursed_amount", NOV) == 0
    assert metrics.value(session, V(s.w.sales), "disbursed_amount", NOV) == AMOUNT
    assert metrics.value(session, V(s.w.sales), "followups_due", NOV) == 1  # 王五
    assert metrics.value(session, V(s.w.other_sales), "followups_due", NOV) == 0
    assert metrics.value(session, V(s.w.sales), "owned_customers", NOV) == 4  # 李四 王五 赵六, and 周九 of October


def test_supervisor_sees_the_team_not_other_departments(session):
    s = seed(session)
    supervisor = make_staff(session, role="supervisor", department=s.w.sales.department, data_scope="department")
    assert metrics.value(session, V(supervisor), "funnel_lead", NOV) == 4  # 孙八 is in another department
    assert metrics.value(session, V(supervisor), "applications", NOV) == 3


def test_previous_period_and_filters(session):
    s = seed(session)
    mgr = V(s.w.manager)
    assert NOV.previous() == Filters(*PREVIOUS)
    assert metrics.value(session, mgr, "funnel_lead", NOV.previous()) == 1  # 周九
    assert metrics.value(session, mgr, "funnel_lead", Filters(*PERIOD, owner_id=s.w.sales.id)) == 3
    assert metrics.value(session, mgr, "funnel_lead", Filters(*PERIOD, source="referral")) == 1
    assert metrics.value(session, mgr, "funnel_lead",
                         Filters(*PERIOD, department_id=s.w.sales.department_id)) == 4
    assert metrics.value(session, mgr, "disbursed_count", Filters(*PERIOD, product_id=s.w.product.id)) == 1
    assert metrics.value(session, mgr, "disbursed_count", Filters(*PERIOD, product_id=s.w.product.id + 999)) == 0
    assert metrics.value(session, mgr, "disbursed_count", NOV.previous()) == 0


def test_applications_and_approval_rate(session):
    s = seed(session)
    mgr = V(s.w.manager)
    assert metrics.value(session, mgr, "applications", NOV) == 3
    # decided: 李四 (disbursed) and 王五 (rejected); 钱七's is still open
    assert metrics.value(session, mgr, "approval_rate", NOV) == Decimal("0.5000")


def test_loan_book_figures(session):
    s = seed(session)
    mgr = V(s.w.manager)
    assert metrics.value(session, mgr, "active_loans", NOV) == 1
    assert metrics.value(session, mgr, "outstanding_principal", NOV) == AMOUNT
    assert metrics.value(session, mgr, "overdue_loans", NOV) == 0
    assert metrics.value(session, mgr, "overdue_rate", NOV) == Decimal("0.0000")
    assert metrics.value(session, mgr, "collection_rate", NOV) is None  # nothing fell due in November
    assert metrics.value(session, V(s.far), "overdue_rate", NOV) is None


def test_leaderboard_groups_by_salesperson_and_source(session):
    s = seed(session)
    mgr = V(s.w.manager)
    assert metrics.by_dimension(session, mgr, "disbursed_amount", "salesperson", NOV) == [(s.w.sales.id, AMOUNT)]
    by_source = dict(metrics.by_dimension(session, mgr, "funnel_lead", "source", NOV))
    assert by_source == {"manual": 4, "referral": 1}


def test_a_metric_refuses_a_filter_it_does_not_have(session):
    s = seed(session)
    with pytest.raises(ValueError, match="product"):
        metrics.value(session, V(s.w.manager), "funnel_lead", Filters(*PERIOD, product_id=1))


def test_dashboard_kind_follows_the_role(session):
    s = seed(session)
    assert dashboards.build(session, V(s.w.sales), NOV).kind == "sales"
    board = dashboards.build(session, V(s.w.manager), NOV)
    assert board.kind == "manager"
    leads = next(c for c in board.cards if c.key == "funnel_lead")
    assert (leads.value, leads.previous, leads.change) == (5, 1, Decimal("4.0000"))
    assert board.charts["leaderboard"]["items"][0][:2] == (s.w.sales.display_name, AMOUNT)
    assert dashboards.build(session, V(s.w.risk), NOV).kind == "risk"


def test_registering_a_metric_twice_is_refused():
    with pytest.raises(ValueError):
        metrics.register(metrics.get("funnel_lead"))


def test_an_overdue_loan_counts_in_its_bucket_and_in_the_collection_rate(session):
    from datetime import date

    from lending.servicing import rollover
    from tests.servicing_support import days, make_loan, on, pay

    w, loan = make_loan(session)  # 12,000.00 over 12 months, first due 2026-12-23
    on(date(2026, 12, 23) + days(10))
    rollover.roll_over(session)
    session.refresh(loan)
    mgr, december = V(w.manager), Filters(date(2026, 12, 1), date(2026, 12, 31))
    i = LoanInstallment
    first = session.scalar(select(i.principal_amount + i.interest_amount + i.fee_amount)
                           .where(i.loan_id == loan.id, i.number == 1))
    assert loan.bucket == "M1"
    assert metrics.by_dimension(session, mgr, "overdue_principal", "bucket", december) == [("M1", 1_200_000)]
    assert metrics.value(session, mgr, "overdue_rate", december) == Decimal("1.0000")
    assert metrics.value(session, mgr, "due_amount", december) == first
    assert metrics.value(session, mgr, "collection_rate", december) == Decimal("0.0000")
    pay(session, w, loan, first // 2)
    # the penalty is written off first, so a half payment covers less than half of principal, interest and fee
    assert Decimal("0") < metrics.value(session, mgr, "collection_rate", december) < Decimal("0.5")
    assert metrics.value(session, V(w.other_sales), "overdue_loans", december) == 0


def test_an_unknown_department_matches_nothing(session):
    s = seed(session)
    mgr = V(s.w.manager)
    assert metrics.value(session, mgr, "disbursed_count", Filters(*PERIOD, department_id=999_999)) == 0
    assert metrics.value(session, mgr, "disbursed_count", Filters(*PERIOD, department_id=s.w.sales.department_id)) == 1


def test_the_one_query_funnel_equals_each_steps_own_metric(session):
    s = seed(session)
    for staff in (s.w.manager, s.w.sales, s.far):
        counts = metrics.funnel_counts(session, V(staff), NOV)
        assert [counts[key.removeprefix("funnel_")] for key in FUNNEL] == _funnel(session, V(staff))
    assert list(metrics.funnel_counts(session, V(s.w.manager), NOV).values()) == [5, 3, 1, 3, 1, 1, 1]


def test_a_co_handler_and_the_collector_see_the_loan_in_own_scope(session):
    """Own scope reads the loan side alone (the viewer's customers' ids, or the loans assigned to them): a
    co-handler (协作人) of the borrower and the loan's collector count it, as the loan list lists it."""
    from crm import followups
    from lending.servicing import loans

    s = seed(session)
    far, other = V(s.far), V(s.w.other_sales)
    assert metrics.value(session, far, "disbursed_count", NOV) == 0 and not loans.list_loans(session, far)
    followups.add_collaborator(session, V(s.w.sales), s.customers["李四"].id, s.far.id)
    assert metrics.value(session, far, "disbursed_count", NOV) == 1
    assert metrics.value(session, far, "disbursed_amount", NOV) == AMOUNT
    assert [r.loan.id for r in loans.list_loans(session, far)] == [s.loan.id]
    assert metrics.value(session, other, "disbursed_count", NOV) == 0
    s.loan.collector_staff_id = s.w.other_sales.id
    session.flush()
    assert metrics.value(session, other, "disbursed_count", NOV) == 1
    assert [r.loan.id for r in loans.list_loans(session, other)] == [s.loan.id]


def test_figures_read_together_equal_each_figure_alone(session):
    """``metrics.values`` computes the metrics sharing a query in one SELECT: every figure equals ``value``'s,
    for each scope and period; the dashboards show their cards in the order they always had."""
    s = seed(session)
    s.loan.bucket, s.loan.overdue_days = "M1", 12
    session.flush()
    groups = [("funnel_lead", "conversion_rate"), ("applications", "approval_rate"),
              ("disbursed_count", "disbursed_amount"), ("active_loans", "outstanding_principal", "overdue_rate"),
              ("overdue_loans", "overdue_principal"), ("funnel_lead", "disbursed_amount", "approval_rate")]
    for staff in (s.w.manager, s.w.sales, s.w.other_sales, s.far, s.w.risk):
        for flt in (NOV, Filters(*PREVIOUS), Filters(*PERIOD, owner_id=s.w.sales.id)):
            for keys in groups:
                together = metrics.values(session, V(staff), keys, flt)
                assert together == {k: metrics.value(session, V(staff), k, flt) for k in keys}
    mgr = metrics.values(session, V(s.w.manager), groups[-1], NOV)
    assert mgr == {"funnel_lead": 5, "disbursed_amount": AMOUNT, "approval_rate": Decimal("0.5000")}
    board = dashboards.build(session, V(s.w.manager), NOV)
    assert [c.key for c in board.cards][:7] == ["funnel_lead", "applications", "disbursed_count", "disbursed_amount",
                                                "conversion_rate", "approval_rate", "overdue_rate"]
    assert [c.key for c in dashboards.build(session, V(s.w.risk), NOV).cards] == [
        "approval_rate", "active_loans", "outstanding_principal", "overdue_loans", "overdue_principal", "overdue_rate",
        "collection_rate"]
    assert [c.key for c in dashboards.build(session, V(s.w.sales), NOV).cards] == [
        "owned_customers", "followups_due", "funnel_lead", "disbursed_count", "disbursed_amount"]


def test_a_cube_reads_both_periods_and_its_groupings_in_one_select(session):
    """``metrics.cube`` (the manager dashboard's leads, applications and loans, each read once for the period and
    the previous one, grouped by salesperson and source): every total and grouping equals the figure computed on its
    own, for each scope, on periods whose boundary falls on the day of a lead, an application and the loan."""
    s = seed(session)
    paid_on = session.scalar(select(Disbursement.disbursement_date).where(Disbursement.id == s.loan.disbursement_id))
    created_on = clock.business_date(s.customers["李四"].created_at)
    periods = [NOV, Filters(*PREVIOUS)]
    for day in {paid_on, created_on}:
        periods += [Filters(day, day), Filters(day + timedelta(days=1), day + timedelta(days=1)),
                    Filters(day + timedelta(days=1), day + timedelta(days=30)), Filters(day - timedelta(days=2), day)]
    groups = [(("funnel_lead", "conversion_rate"), ("source",)), (("applications", "approval_rate"), ()),
              (("disbursed_count", "disbursed_amount"), ("salesperson", "source"))]
    checked = 0
    for staff in (s.w.manager, s.w.sales, s.w.other_sales, s.far, s.w.risk):
        for flt in periods:
            for keys, dims in groups:
                with _statements(session) as queries:
                    cube = metrics.cube(session, V(staff), keys, dims, flt, compare=True)
                assert len(_aggregates(queries)) == 1
                for key in keys:
                    assert cube.total(key) == metrics.value(session, V(staff), key, flt)
                    assert cube.total(key, "previous") == metrics.value(session, V(staff), key, flt.previous())
                    checked += bool(cube.total(key, "previous"))
                    for dim in dims:
                        if dim in metrics.get(key).dimensions:
                            alone = metrics.by_dimension(session, V(staff), key, dim, flt)
                            assert sorted(cube.by(key, dim), key=str) == sorted(alone, key=str)
    assert checked  # some previous period held figures (the boundary cases are not all empty)
    with pytest.raises(ValueError, match="share one query"):
        metrics.cube(session, V(s.w.manager), ("funnel_lead", "disbursed_count"), (), NOV)
    with pytest.raises(ValueError, match="grouped by bucket"):
        metrics.cube(session, V(s.w.manager), ("funnel_lead",), ("bucket",), NOV)
    with pytest.raises(ValueError, match="no period"):
        metrics.cube(session, V(s.w.manager), ("active_loans",), (), NOV, compare=True)


def test_the_manager_dashboard_reads_its_figures_in_few_queries(session):
    """The leads, the loans and their charts come from one SELECT each (with the previous period): the
    dashboard of a manager runs a handful of queries, and equals the one computed figure by figure."""
    s = seed(session)
    mgr = V(s.w.manager)
    with _statements(session) as queries:
        board = dashboards.build(session, mgr, NOV)
    figures = {c.key: (c.value, c.previous) for c in board.cards}
    for key in ("funnel_lead", "conversion_rate", "applications", "approval_rate", "disbursed_count",
                "disbursed_amount"):
        assert figures[key] == (metrics.value(session, mgr, key, NOV), metrics.value(session, mgr, key, NOV.previous()))
    assert board.charts["leaderboard"]["items"][0][:2] == (s.w.sales.display_name, AMOUNT)
    by_source = {label: n for label, n, _ in board.charts["leads_by_source"]["items"]}
    assert by_source == {metrics.SOURCE_LABELS["manual"]: 4, metrics.SOURCE_LABELS["referral"]: 1}
    assert list(board.charts)[:3] == ["leaderboard", "leads_by_source", "disbursed_by_source"]
    # leads, applications, loans, fee revenue (each with the previous period), the overdue rate, the funnel, the
    # channel costs, the other money cards and their chart (it was 6 more before the cubes); SQLite's funnel
    # medians are a query per step pair
    figures = [q for q in _aggregates(queries) if "row_number" not in q]
    assert len(figures) == 10, figures


def test_a_rate_is_cut_by_a_dimension_and_by_time_each_group_its_own_quotient(session):
    """转化率 by source, 审批通过率 by salesperson and by month, 回收率 by source: each group's rate equals the rate
    computed with that group's filter; a group without a base (nothing decided yet) has no rate."""
    s = seed(session)
    mgr = V(s.w.manager)
    by_source = dict(metrics.by_dimension(session, mgr, "conversion_rate", "source", NOV))
    assert by_source == {"manual": Decimal("0.2500"), "referral": Decimal("0.0000")}  # 李四 of 4 manual leads
    for source, figure in by_source.items():
        assert figure == metrics.value(session, mgr, "conversion_rate", Filters(*PERIOD, source=source))
    by_owner = dict(metrics.by_dimension(session, mgr, "approval_rate", "salesperson", NOV))
    assert by_owner == {s.w.sales.id: Decimal("0.5000"), s.w.other_sales.id: None}  # 钱七's is still in intake
    assert metrics.by_dimension(session, mgr, "approval_rate", "month", NOV) == [(date(2026, 11, 1), Decimal("0.5000"))]
    assert "bucket" not in metrics.dimensions_of(metrics.get("overdue_rate"))  # by bucket it would be 0% or 100%
    assert {"source", "day", "week", "month"} <= metrics.dimensions_of(metrics.get("collection_rate"))
