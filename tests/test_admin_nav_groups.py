"""The console menu: groups derived from URLs, per role; the console's own 404 page."""

from __future__ import annotations

from admin import nav
from admin.nav import NavItem, group_of
from tests.factories import make_org, make_staff
from tests.test_admin_support import console_client, log_in


def test_a_new_page_lands_in_its_group_by_its_url_alone():
    assert group_of(NavItem("fin", "收款", "/console/finance/receipts")) == "财务"
    assert group_of(NavItem("pay", "支付订单", "/console/payments")) == "财务"
    assert group_of(NavItem("loans", "贷后管理", "/console/lending/loans")) == "贷后"
    assert group_of(NavItem("queue", "催收队列", "/console/lending/collections")) == "贷后"
    assert group_of(NavItem("apps", "贷款申请", "/console/lending/applications")) == "贷款"
    assert group_of(NavItem("mass", "群发", "/wecom/mass")) == "企微运营"
    assert group_of(NavItem("rep", "报表", "/console/analytics/funnel")) == "报表"
    assert group_of(NavItem("home", "首页", "/console/")) is None
    assert group_of(NavItem("odd", "新页面", "/console/somewhere-new")) == nav.OTHER_GROUP
    assert group_of(NavItem("x", "指定", "/console/finance/x", group="设置")) == "设置"
    assert group_of(NavItem("financial", "不是财务", "/console/financials")) == nav.OTHER_GROUP  # a prefix is a path


def test_each_role_sees_its_groups_in_menu_order():
    top, groups = nav.grouped_nav_for("sales")
    assert [i.label for i in top] == ["首页"]
    labels = [g.label for g in groups]
    assert labels == [g for g in nav.GROUPS if g in labels]
    assert "企微运营" not in labels and "设置" in labels
    _, manager_groups = nav.grouped_nav_for("manager")
    assert {"客户", "贷款", "贷后", "企微运营"} <= {g.label for g in manager_groups}
    every = [i for g in manager_groups for i in g.items]
    assert len(every) + 1 == len(nav.nav_for("manager"))


def test_the_current_page_is_the_longest_matching_item():
    items = nav.nav_for("manager")
    assert nav.active_item(items, "/console/lending/loans/12").key == "lending_loans"
    assert nav.active_item(items, "/console/").key == "home"
    assert nav.active_item(items, "/console/work/rules").key == "rules"


def test_an_unknown_console_url_gets_the_console_404_page(session):
    client = console_client()
    anonymous = client.get("/console/no-such-page")
    assert anonymous.status_code == 404 and "页面不存在" in anonymous.text and "Not Found" not in anonymous.text
    staff = make_staff(session, role="manager", department=make_org(session)["company"])
    log_in(client, session, staff)
    page = client.get("/console/lending/no-such-page")
    assert page.status_code == 404 and "页面不存在" in page.text and 'id="sidenav"' in page.text
    assert client.get("/api/v1/no-such-thing").headers["content-type"].startswith("application/json")


def test_every_page_of_the_menu_has_a_named_group():
    # 其他 is the safety net for a URL nobody filed; every page the product ships is filed under its area.
    unfiled = [item.key for item in nav.NAV if nav.group_of(item) == nav.OTHER_GROUP]
    assert unfiled == []
