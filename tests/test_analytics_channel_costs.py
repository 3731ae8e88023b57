"""Channel costs (渠道成本) and the channel analysis: entered by channel and date, refused with a reason when
wrong (nothing stored), voided never edited, seen within the data scope, divided by leads and loans on the
manager's dashboard."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from analytics import channel_costs, dashboards
from analytics.metrics import Filters
from analytics.models import ChannelCost
from core import clock
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.models import AuditLog
from tests.analytics_support import PERIOD, seed
from tests.factories import make_org, make_staff
from tests.lending_flow_support import V

NOV = Filters(*PERIOD)


@pytest.fixture
def org(session):
    return make_org(session)


def _count(session) -> int:
    return session.scalar(select(func.count(ChannelCost.id)))


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"source": " "}, "source", "请填写渠道"),
    ({"spent_on": "2026-13-01"}, "spent_on", "日期无效"),
    ({"spent_on": "2099-01-01"}, "spent_on", "不能晚于今天"),
    ({"amount": "abc"}, "amount", "金额格式不正确"),
    ({"amount": "0"}, "amount", "大于 0"),
    ({"amount": "-5"}, "amount", "负数"),
    ({"amount": "1.005"}, "amount", "两位小数"),
    ({"amount": "100000001"}, "amount", "超出范围"),
    ({"department_id": 987654}, "department_id", "部门不存在"),
])
def test_a_bad_cost_is_refused_with_its_field_and_nothing_is_stored(session, org, fields, field, message):
    admin = make_staff(session, role="admin", department=org["company"])
    data = {"source": "抖音", "spent_on": "2026-11-03", "amount": "12,000", **fields}
    with pytest.raises(ValidationFailed, match=message) as refused:
        channel_costs.record(session, V(admin), **data)
    assert refused.value.details["field"] == field
    assert _count(session) == 0


def test_a_department_enters_only_its_own_costs_and_sees_only_them(session, org):
    admin = make_staff(session, role="admin", department=org["company"])
    manager = make_staff(session, role="manager", department=org["branch"], data_scope="department")
    sales = make_staff(session, role="sales", department=org["team_a"])
    company = channel_costs.record(session, V(admin), source="百度推广", spent_on="2026-11-02", amount="5000")
    team = channel_costs.record(session, V(manager), source="miniprogram", spent_on="2026-11-02", amount="3万元",
                                department_id=org["team_a"].id, note="  小程序投放 ")
    assert (team.source, team.amount, team.note) == ("小程序", 3_000_000, "小程序投放")  # a code is stored as its label
    with pytest.raises(ValidationFailed, match="只有全公司范围"):
        channel_costs.record(session, V(manager), source="抖音", spent_on="2026-11-02", amount="1")
    with pytest.raises(ValidationFailed, match="本部门及下级"):
        channel_costs.record(session, V(manager), source="抖音", spent_on="2026-11-02", amount="1",
                             department_id=org["center"].id)
    with pytest.raises(PermissionDenied):
        channel_costs.record(session, V(sales), source="抖音", spent_on="2026-11-02", amount="1")
    assert channel_costs.costs_by_source(session, V(admin), NOV) == {"百度推广": 500_000, "小程序": 3_000_000}
    assert channel_costs.costs_by_source(session, V(manager), NOV) == {"小程序": 3_000_000}
    assert channel_costs.costs_by_source(session, V(sales), NOV) == {}
    top = make_staff(session, role="manager", department=org["company"], data_scope="department")
    assert channel_costs.costs_by_source(session, V(top), NOV) == {"百度推广": 500_000, "小程序": 3_000_000}
    assert [c.id for c in channel_costs.listing(session, V(manager), *PERIOD)] == [team.id]
    assert {c.id for c in channel_costs.listing(session, V(admin), *PERIOD)} == {company.id, team.id}
    assert channel_costs.costs_by_source(session, V(admin), Filters(*PERIOD, department_id=org["team_b"].id)) == {}
    assert channel_costs.costs_by_source(session, V(admin), Filters(*PERIOD, source="小程序")) == {"小程序": 3_000_000}
    assert channel_costs.costs_by_source(session, V(admin), Filters(*PERIOD, owner_id=sales.id)) == {}
    october = Filters(date(2026, 10, 1), date(2026, 10, 31))
    assert channel_costs.costs_by_source(session, V(admin), october) == {}
    actions = session.scalars(select(AuditLog.action).where(AuditLog.entity_type == "channel_cost")).all()
    assert actions == ["analytics.channel_cost.record"] * 2


def test_a_voided_cost_leaves_the_figures_and_keeps_who_and_why(session, org):
    admin = make_staff(session, role="admin", department=org["company"])
    manager = make_staff(session, role="manager", department=org["branch"], data_scope="department")
    cost = channel_costs.record(session, V(admin), source="抖音", spent_on="2026-11-05", amount="8000")
    with pytest.raises(NotFound):  # a company cost is outside a department's scope
        channel_costs.void(session, V(manager), cost.id, "录错")
    with pytest.raises(ValidationFailed, match="作废原因"):
        channel_costs.void(session, V(admin), cost.id, "  ")
    channel_costs.void(session, V(admin), cost.id, "金额录错")
    assert (cost.voided_by_staff_id, cost.void_reason) == (admin.id, "金额录错") and cost.voided_at is not None
    assert channel_costs.costs_by_source(session, V(admin), NOV) == {}
    with pytest.raises(ValidationFailed, match="已作废"):
        channel_costs.void(session, V(admin), cost.id, "again")
    assert session.scalar(select(AuditLog.detail).where(AuditLog.action == "analytics.channel_cost.void")) == "金额录错"


def test_the_analysis_adds_a_code_and_its_label_and_divides_half_up():
    rows = channel_costs.analysis([("miniprogram", 3), ("小程序", 2), ("抖音", 4), (None, 1)],
                                  [("小程序", 1), ("抖音", 0)], {"小程序": 1_000_001, "地推": 300_000})
    by = {r.source: r for r in rows}
    assert [r.source for r in rows] == ["小程序", "抖音", "未知", "地推"]  # most leads first
    assert (by["小程序"].leads, by["小程序"].disbursed, by["小程序"].per_lead, by["小程序"].per_disbursed) == (
        5, 1, 200_000, 1_000_001)  # 1,000,001 / 5 = 200,000.2 → 200,000 fen
    assert (by["抖音"].cost, by["抖音"].per_lead) == (None, None)  # no cost recorded: no unit cost
    assert (by["地推"].leads, by["地推"].per_lead, by["地推"].per_disbursed) == (0, None, None)


def test_the_manager_dashboard_shows_cost_per_lead_and_per_loan(session):
    s = seed(session)  # November: 4 leads from 'manual' (手工录入), 1 from 'referral'; one loan, of a manual lead
    admin = make_staff(session, role="admin", department=s.w.manager.department)
    channel_costs.record(session, V(admin), source="manual", spent_on=PERIOD[0] + timedelta(days=2), amount="1000")
    channel_costs.record(session, V(admin), source="手工录入", spent_on=clock.today(), amount="0.02")
    channel_costs.record(session, V(admin), source="手工录入", spent_on=PERIOD[0] - timedelta(days=1), amount="99")
    assert PERIOD[0] <= clock.today() <= PERIOD[1]
    board = dashboards.build(session, V(admin), NOV)
    table = board.charts["channels"]
    assert table["kind"] == "table" and table["columns"][2] == "单线索成本"
    rows = {r[0]: r for r in table["rows"]}
    # 100,002 fen over 4 leads = 25,000.5 → 25,001; over the 1 loan = 100,002
    assert rows["手工录入"] == ["手工录入", 4, 25_001, 1, 100_002, 100_002]
    assert rows["转介绍"] == ["转介绍", 1, None, 0, None, None]
    url = table["urls"][[r[0] for r in table["rows"]].index("手工录入")]
    assert "source=manual" in url and "created_from=2026-11-01" in url


def test_the_console_page_enters_lists_and_voids_a_cost(session, org):
    from tests.test_admin_support import console_client, log_in

    manager = make_staff(session, role="manager", department=org["company"], data_scope="all", username="boss")
    c = console_client()
    csrf = log_in(c, session, manager)
    bad = c.post("/console/analytics/channel-costs",
                 data={"csrf_token": csrf, "source": "抖音", "spent_on": "2026-11-03", "amount": "12,00x"})
    assert bad.status_code == 422 and "金额格式不正确" in bad.text and _count(session) == 0
    assert 'value="抖音"' in bad.text  # what was typed stays in the form
    ok = c.post("/console/analytics/channel-costs", follow_redirects=False,
                data={"csrf_token": csrf, "source": "抖音", "spent_on": clock.today().isoformat(), "amount": "1.2万",
                      "note": "信息流"})
    assert ok.status_code == 303
    page = c.get("/console/analytics/channel-costs?done=saved")
    assert "成本已录入" in page.text
    assert "信息流" in page.text and "¥12,000.00" in page.text
    cost = session.scalar(select(ChannelCost))
    voided = c.post(f"/console/analytics/channel-costs/{cost.id}/void", data={"csrf_token": csrf, "reason": "重复"},
                    follow_redirects=False)
    assert voided.status_code == 303
    session.refresh(cost)
    assert cost.void_reason == "重复" and "已作废" in c.get("/console/analytics/channel-costs").text
    sales = console_client()
    log_in(sales, session, make_staff(session, department=org["team_a"]))
    assert sales.get("/console/analytics/channel-costs").status_code == 403
