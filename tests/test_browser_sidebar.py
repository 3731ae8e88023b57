"""The chat sidebar in a real browser, inside the simulator's page that plays the WeCom client: OAuth,
the agentConfig signature checked by the simulated client, the customer card and the quick actions."""

from __future__ import annotations

import pytest

from core.db import unit_of_work
from tests.browser_harness import chromium_page, require_chromium
from tests.factories import PASSWORD, make_customer, make_org, make_staff
from tests.lending_product_factories import make_product

pytestmark = pytest.mark.browser


@pytest.fixture
def world(committed, wecom_server):
    require_chromium()
    with unit_of_work() as session:
        org = make_org(session)
        manager = make_staff(session, role="manager", department=org["company"], data_scope="all")
        sales = make_staff(session, department=org["team_a"], data_scope="own", wecom_userid="bw_sales",
                           display_name="王小明")
        other = make_staff(session, department=org["team_a"], data_scope="own", wecom_userid="bw_other")
        mine = make_customer(session, owner=sales, name="李秀英", phone="13900002222",
                             wecom_external_userid="wm_bw_mine", demand_amount=5_000_000, demand_term_months=12)
        theirs = make_customer(session, owner=other, name="赵六", wecom_external_userid="wm_bw_theirs")
        from bot.models import GroupChat, GroupChatMember
        from core import clock

        now = clock.now()
        session.add(GroupChat(chat_id="wr_bw_group", name="贷款咨询群", owner_userid="bw_sales",
                              owner_staff_id=sales.id, created_at=now, updated_at=now))
        session.flush()
        for customer in (mine, theirs):
            session.add(GroupChatMember(chat_id="wr_bw_group", member_id=customer.wecom_external_userid,
                                        member_type=2, customer_id=customer.id, joined_at=now))
        make_product(session, name="工薪信用贷")
        make_product(session, code="ZZ-HOUSE", name="房主贷", property_required=True)
        from crm import tags

        tags.create_tag(session, None, tags.create_group(session, None, "意向").id, "高意向")
        ids = {"manager": manager.username}
    wecom_server.admin("contact", {"userid": "bw_sales", "external_userid": "wm_bw_mine", "name": "李秀英"})
    return wecom_server.base_url, ids


def _login(page, base_url, username):
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_the_sidebar_shows_the_chat_customer_and_its_quick_actions_work(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        _login(page, base_url, ids["manager"])
        page.goto(f"{base_url}/_wecom_sim/sidebar?userid=bw_sales&external_userid=wm_bw_mine")
        bar = page.frame_locator("#sim-sidebar")
        expect(bar.locator("#c-name")).to_have_text("李秀英")
        expect(page.locator("body")).to_have_attribute("data-agent-config", "ok")  # signature accepted
        expect(bar.locator("#c-phone")).to_have_text("139****2222")
        expect(bar.locator(".me")).to_have_text("王小明")
        expect(bar.locator("#c-match-note")).to_have_text("需求 ¥50,000.00 · 12 个月")
        expect(bar.locator("#c-matching li.match-ok")).to_contain_text("工薪信用贷")
        expect(bar.locator("#c-matching li.match-needs")).to_contain_text("待补充：房产情况（产品要求有房产）")

        bar.locator("summary", has_text="打标签").click()
        bar.locator("#f-tag button").click()
        expect(bar.locator("#c-tags .tag")).to_have_text(["高意向"])

        bar.locator("summary", has_text="写跟进").click()
        bar.locator("#f-followup textarea").fill("微信沟通，客户需要 5 万周转")
        bar.locator("#f-followup button").click()
        expect(bar.locator("#c-followups li").first).to_contain_text("微信沟通，客户需要 5 万周转")

        bar.locator("summary", has_text="发送产品").click()
        bar.locator("#f-share button[value=news]").click()
        expect(page.locator("#sim-log li.sent")).to_contain_text(["[产品卡片] 工薪信用贷"])
        bar.locator("#f-share button[value=miniprogram]").click()
        expect(page.locator("#sim-log li.sent").nth(1)).to_contain_text("[小程序] 在线申请：工薪信用贷")

        bar.locator("summary", has_text="发起贷款申请").click()
        bar.locator("#f-apply input[name=amount]").fill("50000")
        bar.locator("#f-apply button").click()
        expect(bar.locator("#c-apps li").first).to_contain_text("工薪信用贷")
        expect(bar.locator("#c-apps li").first).to_contain_text("¥50,000.00 / 12 个月")
        page.screenshot(path="/tmp/sidebar_sim_1366.png", full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        expect(bar.locator("#c-name")).to_have_text("李秀英")
        width = page.locator("#sim-sidebar").evaluate("e => e.getBoundingClientRect().width")
        assert width <= 390
        overflow = bar.locator("body").evaluate("b => b.scrollWidth - b.clientWidth")
        assert overflow <= 0  # nothing wider than the narrow sidebar
        page.screenshot(path="/tmp/sidebar_sim_390.png", full_page=True)


def test_in_a_group_chat_the_sidebar_lists_the_groups_customers_and_opens_one(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        page.set_viewport_size({"width": 390, "height": 844})
        _login(page, base_url, ids["manager"])
        page.goto(f"{base_url}/_wecom_sim/sidebar?userid=bw_sales&chat_id=wr_bw_group")
        bar = page.frame_locator("#sim-sidebar")
        expect(bar.locator("#group-name")).to_have_text("贷款咨询群")
        expect(page.locator(".sim-window h2")).to_contain_text("「贷款咨询群」的群聊")
        expect(bar.locator("#group-note")).to_have_text("群内客户 2 位，您可查看 1 位")
        expect(bar.locator("#group-list li")).to_have_count(1)
        bar.locator("#group-list li", has_text="李秀英").click()
        expect(bar.locator("#c-name")).to_have_text("李秀英")
        page.screenshot(path="/tmp/sidebar_sim_group_390.png", full_page=True)


def test_another_salespersons_customer_is_not_shown(world):
    from playwright.sync_api import expect

    base_url, ids = world
    with chromium_page() as page:
        _login(page, base_url, ids["manager"])
        page.goto(f"{base_url}/_wecom_sim/sidebar?userid=bw_sales&external_userid=wm_bw_theirs")
        bar = page.frame_locator("#sim-sidebar")
        expect(bar.locator("#error")).to_contain_text("不在您的数据范围内")
        expect(bar.locator("#card")).to_be_hidden()
