"""Drill-down from the snapshot charts (overdue trend, roll rates, vintage curves): each point and each table link
opens the loan list filtered to the snapshot rows behind it — as many loans as the figure counts and, where the
figure is a balance, their principal on that day summing to it — within the viewer's scope."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from analytics import dashboards, loan_history, snapshot_drill, snapshots
from analytics.metrics import Filters
from lending import applications, disbursement
from lending.models import Loan
from lending.servicing import loans
from tests.analytics_support import seed
from tests.lending_flow_support import AMOUNT, V, advance_to
from tests.test_admin_support import console_client, log_in

NOV_END, DEC_END = date(2026, 11, 30), date(2026, 12, 31)
DEC = Filters(date(2026, 12, 1), DEC_END)


def _bucket(session, loan, bucket):
    session.execute(update(Loan).where(Loan.id == loan.id).values(bucket=bucket, overdue_days=0 if bucket == "C" else 8))


@pytest.fixture
def book(session):
    """Three November loans: 李四's (sales, AMOUNT), 王五's (sales, 30,000) and 孙八's (far, 20,000).
    On Nov 30: C, M1, M1. On Dec 31: M1, M2, C (李四 rolled C→M1, 王五 M1→M2, 孙八 cured)."""
    s = seed(session)
    made = {"李四": s.loan}
    for name, amount in (("王五", 3_000_000), ("孙八", 2_000_000)):
        app = applications.start_application(session, s.customers[name].id, s.w.version_id, amount, 12,
                                             viewer=V(s.w.manager))
        advance_to(session, s.w, app, "disbursement")
        made[name] = disbursement.disburse(session, app.id, viewer=V(s.w.finance), funder_reference=f"FR-{app.id}")
    session.flush()
    for name, bucket in (("李四", "C"), ("王五", "M1"), ("孙八", "M1")):
        _bucket(session, made[name], bucket)
    snapshots.take(session, NOV_END)
    for name, bucket in (("李四", "M1"), ("王五", "M2"), ("孙八", "C")):
        _bucket(session, made[name], bucket)
    snapshots.take(session, DEC_END)
    for loan in made.values():  # today every loan is current again: the history does not move
        _bucket(session, loan, "C")
    session.flush()
    return s, made


def _behind(session, viewer, url: str) -> tuple[int, int, list[int]]:
    """(count, principal on the snapshot day, loan ids) of the loan list the link opens, as the page reads it."""
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert urlsplit(url).path == "/console/lending/loans"
    snap = snapshot_drill.from_params(q)
    n, amount = snapshot_drill.summary(session, viewer, loans.LoanFilter(), snap)
    ids = [r.loan.id for r in loans.list_loans(session, viewer, extra=snapshot_drill.clauses(snap))]
    assert len(ids) == n
    return n, amount, ids


def test_each_point_of_the_overdue_trend_opens_its_loans(session, book):
    s, made = book
    for staff in (s.w.risk, s.w.sales, s.far):
        viewer = V(staff)
        trend = loan_history.overdue_trend(session, viewer, NOV_END, DEC_END)
        chart = dashboards.build(session, viewer, DEC)  # risk gets the chart; the others' lists are checked below
        for day, by_bucket in trend.items():
            for bucket in ("M1", "M2", "M3", "M3+"):
                url = snapshot_drill.url(snapshot_drill.SnapshotFilter(as_of=day, snapshot_bucket=bucket))
                _, amount, _ = _behind(session, viewer, url)
                assert amount == by_bucket.get(bucket, 0), (staff.role, day, bucket)
        if staff is s.w.risk:
            series = chart.charts["overdue_trend"]["series"]
            m1 = next(x for x in series if x["name"].startswith("M1"))
            assert m1["data"] == [AMOUNT] and _behind(session, viewer, m1["urls"][0])[2] == [made["李四"].id]
    # November's M1 balance: 王五 and 孙八 for risk (all), 王五 only for sales, 孙八 only for far
    url = snapshot_drill.url(snapshot_drill.SnapshotFilter(as_of=NOV_END, snapshot_bucket="M1"))
    assert _behind(session, V(s.w.risk), url)[:2] == (2, 5_000_000)
    assert _behind(session, V(s.w.sales), url)[2] == [made["王五"].id]
    assert _behind(session, V(s.far), url)[2] == [made["孙八"].id]


def test_a_roll_rate_opens_the_loans_that_rolled(session, book):
    s, made = book
    board = dashboards.build(session, V(s.w.risk), DEC)
    items = {label: (rate, url, n) for label, rate, url, n in board.charts["roll_rates"]["items"]}
    rolls = {r.bucket: r for r in loan_history.roll_rates(session, V(s.w.risk), NOV_END, DEC_END)}
    for label, bucket in (("C→M1", "C"), ("M1→M2", "M1")):
        _, url, n = items[label]
        count, amount, _ = _behind(session, V(s.w.risk), url)
        assert (count, amount) == (n, rolls[bucket].rolled_principal) == (1, rolls[bucket].rolled_principal)
    assert _behind(session, V(s.w.risk), items["M1→M2"][1])[2] == [made["王五"].id]  # 孙八 was cured
    # the salesperson of another department: no roll of theirs (孙八 cured), so their list of the link is empty
    assert _behind(session, V(s.far), items["M1→M2"][1])[0] == 0


def test_a_vintage_point_opens_the_overdue_loans_of_that_month(session, book):
    s, made = book
    board = dashboards.build(session, V(s.w.risk), DEC)
    curve = board.charts["vintages"]["series"]
    assert [c["name"] for c in curve] == ["2026-11"]
    count, amount, ids = _behind(session, V(s.w.risk), curve[0]["urls"][0])
    disbursed = AMOUNT + 3_000_000 + 2_000_000
    assert curve[0]["data"] == [loan_history.rate(amount, disbursed)]  # the plotted share is this sum over it
    assert (count, amount, sorted(ids)) == (2, AMOUNT + 3_000_000, sorted([made["李四"].id, made["王五"].id]))
    # the salesperson's own curve and list: their two loans only
    own = dashboards._vintages(session, V(s.w.sales), DEC)  # noqa: SLF001 - the chart as a salesperson's scope draws it
    assert _behind(session, V(s.w.sales), own["series"][0]["urls"][0])[:2] == (2, AMOUNT + 3_000_000)


def test_the_loan_list_shows_the_snapshot_filter_as_a_chip_and_its_figure(session, book):
    s, made = book
    client = console_client()
    log_in(client, session, s.w.risk)
    page = client.get(f"/console/lending/loans?as_of={NOV_END}&snapshot_bucket=M1")
    assert page.status_code == 200
    assert "2026-11-30 快照：M1" in page.text
    assert re.search(r'data-count="2" data-amount="5000000"', page.text)
    assert len(re.findall(r'<tr><td><a href="/console/lending/loans/\d+">', page.text)) == 2
    roll = client.get(f"/console/lending/loans?as_of={NOV_END}&snapshot_bucket=M1&to_as_of={DEC_END}&to_bucket=worse")
    assert "2026-12-31 快照：更差账期" in roll.text and 'data-count="1"' in roll.text
    vintage = client.get(f"/console/lending/loans?vintage=2026-11&as_of={DEC_END}&snapshot_bucket=overdue")
    assert "2026-11 放款 · MOB1" in vintage.text and "2026-12-31 快照：M1 及以上" in vintage.text
    # the same filter in the export's stored parameters
    from admin.console import lending_loans
    stored = lending_loans.export_params(session, None, {"as_of": NOV_END.isoformat(), "snapshot_bucket": "M1"})
    assert stored == {"as_of": "2026-11-30", "snapshot_bucket": "M1"}


@pytest.mark.parametrize(("query", "message"), [
    ("as_of=2026-13-01", "快照日期格式不正确"), ("as_of=2026-11-30&snapshot_bucket=M9", "未知的账期"),
    ("snapshot_bucket=M1", "快照筛选缺少快照日期"),
    ("as_of=2026-11-30&snapshot_bucket=M1&to_bucket=worse", "迁徙筛选需要截止快照日期和账期"),
])
def test_a_bad_snapshot_filter_is_refused_in_chinese(session, query, message):
    s = seed(session)
    client = console_client()
    log_in(client, session, s.w.risk)
    page = client.get(f"/console/lending/loans?{query}")
    assert page.status_code in (400, 422) and message in page.text


def test_the_loan_export_of_a_snapshot_drill_down_has_the_same_loans(session, book, tmp_path, monkeypatch):
    from core.settings import reset_settings_cache
    from tests.test_analytics_export_kinds import export

    s, made = book
    monkeypatch.setenv("SCRM_EXPORT_DIR", str(tmp_path / "exports"))
    reset_settings_cache()
    try:
        _, rows = export(session, V(s.w.sales), "loans", {"as_of": NOV_END.isoformat(), "snapshot_bucket": "M1"})
    finally:
        reset_settings_cache()
    assert len(rows) - 1 == _behind(session, V(s.w.sales), snapshot_drill.url(
        snapshot_drill.SnapshotFilter(as_of=NOV_END, snapshot_bucket="M1")))[0] == 1
