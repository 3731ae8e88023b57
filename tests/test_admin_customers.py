"""Console customer pages: the scoped list, filters and search, bulk actions, new customer, Customer 360."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from crm import customers
from crm.models import Collision, Customer, CustomerCollaborator, CustomerEvent, Notification
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import audit_count, console_client, log_in


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def people(session, org):
    return {
        "admin": make_staff(session, role="admin", department=org["company"], display_name="管理员", password=None),
        "supervisor": make_staff(session, role="supervisor", department=org["team_a"], display_name="一组主管", password=None),
        "sales_a": make_staff(session, department=org["team_a"], display_name="一组销售", password=None),
        "sales_a2": make_staff(session, department=org["team_a"], display_name="一组销售乙", password=None),
        "sales_b": make_staff(session, department=org["team_b"], display_name="二组销售", password=None),
    }


def _client(session, staff):
    client = console_client()
    return client, log_in(client, session, staff)


def _count(session, model, *where):
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


# --- list, scope, search ---------------------------------------------------------------------------

def test_sales_sees_own_and_co_handled_customers_only(session, people):
    make_customer(session, owner=people["sales_a"], name="我的客户")
    other = make_customer(session, owner=people["sales_a2"], name="同事客户")
    make_customer(session, owner=people["sales_a2"], name="别人的客户")
    session.add(CustomerCollaborator(customer_id=other.id, staff_id=people["sales_a"].id,
                                     added_at=other.created_at))
    session.flush()
    client, _ = _client(session, people["sales_a"])
    page = client.get("/console/customers").text
    assert "我的客户" in page and "同事客户" in page
    assert "别人的客户" not in page


def test_supervisor_sees_their_department_subtree(session, people):
    make_customer(session, owner=people["sales_a"], name="一组客户")
    make_customer(session, owner=people["sales_b"], name="二组客户")
    client, _ = _client(session, people["supervisor"])
    page = client.get("/console/customers").text
    assert "一组客户" in page and "二组客户" not in page


def test_the_list_counts_up_to_its_bound_then_says_more_and_still_pages(session, people, monkeypatch):
    from admin.pagination import count_text
    from crm import customer_queries

    for i in range(5):
        make_customer(session, owner=people["sales_a"], name=f"客户{i}")
    client, _ = _client(session, people["sales_a"])
    assert "共 5 条" in client.get("/console/customers").text
    monkeypatch.setattr(customer_queries, "LIST_COUNT_BOUND", 3)
    page = client.get("/console/customers").text
    assert "共 3+ 条" in page and "第 1 页" in page and "第 1 /" not in page  # no page count past the bound
    assert "找到 3+ 位" in client.get("/console/customers?q=%E5%AE%A2%E6%88%B7").text
    assert count_text(12_345, 10_000) == "1万+" and count_text(12_345) == "12345"


def test_list_shows_the_masked_phone_only(session, people):
    make_customer(session, owner=people["sales_a"], phone="13812345678")
    client, _ = _client(session, people["sales_a"])
    page = client.get("/console/customers").text
    assert "138****5678" in page and "13812345678" not in page


@pytest.mark.parametrize("q", ["李四", "ls", "13812345678", "138 1234 5678"])
def test_search_by_name_initials_and_phone(session, people, q):
    make_customer(session, owner=people["sales_a"], name="李四", phone="13812345678")
    make_customer(session, owner=people["sales_a"], name="王五", phone="13912345678")
    client, _ = _client(session, people["sales_a"])
    page = client.get("/console/customers", params={"q": q}).text
    assert "李四" in page and "王五" not in page


def test_filters_by_grade_and_stage(session, people):
    a = make_customer(session, owner=people["sales_a"], name="甲客户", grade="A")
    make_customer(session, owner=people["sales_a"], name="乙客户", grade="B")
    customers.set_stage(session, a.id, "intent")
    client, _ = _client(session, people["sales_a"])
    assert "乙客户" not in client.get("/console/customers", params={"grade": "A"}).text
    by_stage = client.get("/console/customers", params={"stage": "intent"}).text
    assert "甲客户" in by_stage and "乙客户" not in by_stage


def test_a_bad_date_filter_is_a_clear_error(session, people):
    client, _ = _client(session, people["sales_a"])
    response = client.get("/console/customers", params={"created_from": "2025-13-40"})
    assert response.status_code == 422
    assert "录入开始日期格式不正确" in response.text


def test_another_salespersons_customer_is_404(session, people):
    theirs = make_customer(session, owner=people["sales_b"], name="二组的")
    client, _ = _client(session, people["sales_a"])
    assert client.get(f"/console/customers/{theirs.id}").status_code == 404


# --- bulk actions ------------------------------------------------------------------------------------

def test_bulk_grade_changes_visible_ones_and_reports_the_refused(session, people):
    mine = [make_customer(session, owner=people["sales_a"], name=f"批量{i}") for i in range(2)]
    theirs = make_customer(session, owner=people["sales_b"], name="外组")
    client, csrf = _client(session, people["sales_a"])
    response = client.post("/console/customers/bulk", data={
        "csrf_token": csrf, "action": "grade", "grade": "A", "ids": [mine[0].id, mine[1].id, theirs.id]})
    assert response.status_code == 200
    assert "成功 <strong>2</strong> 位" in response.text and "拒绝 <strong>1</strong> 位" in response.text
    assert f"#{theirs.id}" in response.text
    session.expire_all()
    assert [session.get(Customer, c.id).grade for c in mine] == ["A", "A"]
    assert session.get(Customer, theirs.id).grade is None
    assert _count(session, CustomerEvent, CustomerEvent.kind == "grade") == 2


def test_bulk_without_csrf_is_refused_and_changes_nothing(session, people):
    mine = make_customer(session, owner=people["sales_a"])
    client, _ = _client(session, people["sales_a"])
    response = client.post("/console/customers/bulk", data={"action": "grade", "grade": "A", "ids": [mine.id]})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Customer, mine.id).grade is None


def test_bulk_blacklist_is_for_managers(session, people):
    mine = make_customer(session, owner=people["sales_a"])
    client, csrf = _client(session, people["sales_a"])
    response = client.post("/console/customers/bulk", data={
        "csrf_token": csrf, "action": "blacklist", "reason": "骗贷", "ids": [mine.id]})
    assert "只有系统管理员、经理或主管可以拉黑客户" in response.text
    session.expire_all()
    assert session.get(Customer, mine.id).status == "owned"


def test_bulk_blacklist_needs_a_reason(session, people):
    mine = make_customer(session, owner=people["sales_a"])
    client, csrf = _client(session, people["supervisor"])
    response = client.post("/console/customers/bulk", data={
        "csrf_token": csrf, "action": "blacklist", "reason": " ", "ids": [mine.id]})
    assert response.status_code == 422 and "请填写拉黑原因" in response.text
    session.expire_all()
    assert session.get(Customer, mine.id).status == "owned"


def test_bulk_blacklist_by_supervisor_within_scope(session, people):
    inside = make_customer(session, owner=people["sales_a"], name="组内")
    outside = make_customer(session, owner=people["sales_b"], name="组外")
    client, csrf = _client(session, people["supervisor"])
    response = client.post("/console/customers/bulk", data={
        "csrf_token": csrf, "action": "blacklist", "reason": "多头借贷", "ids": [inside.id, outside.id]})
    assert "成功 <strong>1</strong> 位" in response.text
    session.expire_all()
    row = session.get(Customer, inside.id)
    assert (row.status, row.owner_id, row.previous_owner_id, row.blacklist_reason) == (
        "blacklist", None, people["sales_a"].id, "多头借贷")
    assert session.get(Customer, outside.id).status == "owned"
    assert audit_count(session, "customer.blacklist") == 1


# --- new customer ------------------------------------------------------------------------------------

def _new(client, csrf, **fields):
    data = {"csrf_token": csrf, "name": "新客户", "phone": "13700001111", "customer_type": "credit",
            "source": "manual", "destination": "mine", **fields}
    return client.post("/console/customers/new", data=data)


def test_a_salesperson_creates_a_customer_that_is_theirs(session, people):
    client, csrf = _client(session, people["sales_a"])
    response = _new(client, csrf, demand_amount="200,000.50")
    assert response.status_code == 303
    customer = session.scalar(select(Customer).where(Customer.name == "新客户"))
    assert customer.owner_id == people["sales_a"].id and customer.status == "owned"
    assert customer.demand_amount == 20_000_050
    assert response.headers["location"] == f"/console/customers/{customer.id}?done=created"


def test_a_new_customer_may_go_to_the_pool(session, people):
    client, csrf = _client(session, people["sales_a"])
    _new(client, csrf, destination="pool")
    customer = session.scalar(select(Customer).where(Customer.name == "新客户"))
    assert customer.owner_id is None and customer.status == "pool"


@pytest.mark.parametrize("amount", ["abc", "-5", "12.345", "1e5"])
def test_a_bad_amount_is_refused_and_nothing_is_created(session, people, amount):
    client, csrf = _client(session, people["sales_a"])
    response = _new(client, csrf, demand_amount=amount)
    assert response.status_code == 422
    assert "贷款金额" in response.text
    assert _count(session, Customer) == 0


def test_a_collision_outside_my_scope_says_only_that_someone_else_follows_the_customer(session, people):
    make_customer(session, owner=people["sales_b"], phone="13700001111", name="老客户")
    client, csrf = _client(session, people["sales_a"])
    response = _new(client, csrf)
    assert response.status_code == 200
    assert "撞单：该客户已有其他同事跟进" in response.text
    assert "二组销售" not in response.text and "老客户" not in response.text
    assert _count(session, Collision) == 1
    assert session.scalar(select(Customer.owner_id).where(Customer.name == "老客户")) == people["sales_b"].id
    told = {n.staff_id: n for n in session.scalars(select(Notification).where(Notification.kind == "collision"))}
    assert told[people["sales_b"].id].customer_id is not None  # the owner is told, with the customer
    mine = told[people["sales_a"].id]
    assert mine.customer_id is None and "二组销售" not in mine.body and "老客户" not in mine.body


def test_a_collision_inside_my_scope_names_the_owner(session, people):
    make_customer(session, owner=people["sales_a"], phone="13700001111", name="老客户")
    client, csrf = _client(session, people["supervisor"])
    response = _new(client, csrf)
    assert "撞单：该客户已由 一组销售 跟进" in response.text


def test_intakes_are_rate_limited_per_staff_member(session, people):
    from admin.customer_flows import INTAKE_LIMIT

    client, csrf = _client(session, people["sales_a"])
    for n in range(INTAKE_LIMIT[0]):
        assert _new(client, csrf, phone=f"1370000{n:04d}", name=f"客户{n}").status_code == 303
    refused = _new(client, csrf, phone="13799990000", name="再来一个")
    assert refused.status_code == 429 and "录入客户过于频繁" in refused.text
    assert session.scalar(select(Customer.id).where(Customer.name == "再来一个")) is None
    other, other_csrf = _client(session, people["sales_a2"])  # another salesperson is not held up
    assert _new(other, other_csrf, phone="13799990001", name="别人的").status_code == 303


def test_new_customer_without_csrf_is_refused(session, people):
    client, _ = _client(session, people["sales_a"])
    response = client.post("/console/customers/new", data={"name": "x", "phone": "13700001111"})
    assert response.status_code == 403
    assert _count(session, Customer) == 0


# --- Customer 360 --------------------------------------------------------------------------------------

def test_360_shows_profile_timeline_and_owner_history(session, people):
    c = make_customer(session, owner=people["sales_a"], name="三六零", phone="13812340000",
                      id_number="11010519491231002X", demand_amount=12_345_600)
    client, _ = _client(session, people["sales_a"])
    page = client.get(f"/console/customers/{c.id}").text
    assert "138****0000" in page and "13812340000" not in page
    assert "110105********002X" in page and "11010519491231002X" not in page
    assert "¥123,456.00" in page
    assert "新客户（来源：manual）" in page  # the timeline's creation event
    assert "新建" in page  # owner history


@pytest.mark.parametrize(("kind", "label"), [
    ("lending_application", "进件"), ("lending_contract", "合同"), ("lending_disbursement", "放款"),
    ("lending_servicing", "贷后"), ("risk.evaluation", "风控"), ("referral.attributed", "推荐"),
    ("commission.accrued", "佣金"), ("automation", "自动化"), ("pool.move", "公海"), ("task", "待办"),
    ("collaborator", "协作"), ("consent", "授权"), ("wecom.transfer.taken_over", "企业微信"),
])
def test_360_timeline_labels_every_kind_of_event_in_chinese(session, people, kind, label):
    c = make_customer(session, owner=people["sales_a"])
    customers.record_event(session, c.id, kind, "事件摘要")
    client, _ = _client(session, people["sales_a"])
    page = client.get(f"/console/customers/{c.id}").text
    assert f'title="{kind}">{label}</span> 事件摘要' in page


def test_reveal_phone_shows_it_once_and_is_audited(session, people):
    c = make_customer(session, owner=people["sales_a"], phone="13812340000")
    client, csrf = _client(session, people["sales_a"])
    response = client.post(f"/console/customers/{c.id}/reveal-phone", data={"csrf_token": csrf})
    assert response.status_code == 200 and "13812340000" in response.text
    assert response.headers["cache-control"] == "no-store"
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "pii.reveal"))
    assert entry.entity_id == str(c.id) and entry.actor_id == people["sales_a"].id
    assert "13812340000" not in client.get(f"/console/customers/{c.id}").text


def test_reveal_of_another_salespersons_customer_is_404_and_not_audited(session, people):
    c = make_customer(session, owner=people["sales_b"])
    client, csrf = _client(session, people["sales_a"])
    response = client.post(f"/console/customers/{c.id}/reveal-phone", data={"csrf_token": csrf})
    assert response.status_code == 404
    assert audit_count(session, "pii.reveal") == 0


def test_profile_edit_with_a_bad_amount_changes_nothing(session, people):
    c = make_customer(session, owner=people["sales_a"], name="原名", demand_amount=100_00)
    client, csrf = _client(session, people["sales_a"])
    response = client.post(f"/console/customers/{c.id}/profile", data={
        "csrf_token": csrf, "name": "新名", "customer_type": "credit", "demand_amount": "十万"})
    assert response.status_code == 422 and "贷款金额格式不正确" in response.text
    session.expire_all()
    row = session.get(Customer, c.id)
    assert (row.name, row.demand_amount) == ("原名", 100_00)


def test_profile_edit_saves_yuan_as_fen(session, people):
    c = make_customer(session, owner=people["sales_a"], name="原名")
    client, csrf = _client(session, people["sales_a"])
    response = client.post(f"/console/customers/{c.id}/profile", data={
        "csrf_token": csrf, "name": "新名", "customer_type": "mortgage", "demand_amount": "88000.8",
        "demand_term_months": "36"})
    assert response.status_code == 303
    session.expire_all()
    row = session.get(Customer, c.id)
    assert (row.name, row.customer_type, row.demand_amount, row.demand_term_months) == (
        "新名", "mortgage", 8_800_080, 36)


def test_grade_and_stage_editors(session, people):
    c = make_customer(session, owner=people["sales_a"])
    client, csrf = _client(session, people["sales_a"])
    assert client.post(f"/console/customers/{c.id}/grade", data={"csrf_token": csrf, "grade": "B"}).status_code == 303
    assert client.post(f"/console/customers/{c.id}/stage",
                       data={"csrf_token": csrf, "stage": "contacted"}).status_code == 303
    session.expire_all()
    row = session.get(Customer, c.id)
    assert (row.grade, row.stage) == ("B", "contacted")
    page = client.get(f"/console/customers/{c.id}").text
    assert "等级 - → B" in page and "阶段 新线索 → 已联系" in page


def test_an_unknown_stage_is_a_clear_error(session, people):
    c = make_customer(session, owner=people["sales_a"])
    client, csrf = _client(session, people["sales_a"])
    response = client.post(f"/console/customers/{c.id}/stage", data={"csrf_token": csrf, "stage": "bogus"})
    assert response.status_code == 422 and "未知的阶段" in response.text


def test_sales_cannot_blacklist_from_the_360_page(session, people):
    c = make_customer(session, owner=people["sales_a"])
    client, csrf = _client(session, people["sales_a"])
    response = client.post(f"/console/customers/{c.id}/blacklist", data={"csrf_token": csrf, "reason": "x"})
    assert response.status_code == 403
    assert "拉黑" not in re.sub(r"<h2[^>]*>[^<]*</h2>", "", client.get(f"/console/customers/{c.id}").text
                                 .split("<h2>标签</h2>")[1].split("</section>")[0])


def test_admin_blacklists_and_lifts_it_with_a_reason(session, people):
    c = make_customer(session, owner=people["sales_a"])
    client, csrf = _client(session, people["admin"])
    assert client.post(f"/console/customers/{c.id}/blacklist",
                       data={"csrf_token": csrf, "reason": "冒用身份"}).status_code == 303
    session.expire_all()
    assert session.get(Customer, c.id).status == "blacklist"
    assert "冒用身份" in client.get(f"/console/customers/{c.id}").text
    assert client.post(f"/console/customers/{c.id}/unblacklist", data={"csrf_token": csrf}).status_code == 303
    session.expire_all()
    assert session.get(Customer, c.id).status == "pool"


def test_customers_nav_entry_is_shown(session, people):
    client, _ = _client(session, people["sales_a"])
    assert 'href="/console/customers"' in client.get("/console/").text


def test_the_list_search_says_where_it_looked_and_can_include_the_pool(session):
    from tests.factories import make_customer as make_one
    from tests.factories import make_org as org_of
    from tests.factories import make_staff as staff_of
    from tests.test_admin_support import console_client as client_of
    from tests.test_admin_support import log_in as logged

    org = org_of(session)
    sales = staff_of(session, department=org["team_a"], data_scope="own")
    make_one(session, owner=sales, name="周建国")
    make_one(session, name="周晓峰")  # no owner: waiting in the public pool
    client = client_of()
    logged(client, session, sales)
    mine = client.get("/console/customers", params={"q": "zj"}).text
    assert "周建国" in mine and "周晓峰" not in mine
    assert "在我的客户（含协作）中按姓名拼音（首字母或全拼，或姓名中的字母）搜索「zj」，找到 1 位" in mine
    both = client.get("/console/customers", params={"q": "周", "with_pool": "1"}).text
    assert "周建国" in both and "周晓峰" in both
    assert "在我的客户（含协作）和可领取的公海客户中按姓名和标签名搜索「周」，找到 2 位" in both
