"""crm.customer_queries (the scoped, filtered, paginated customer list) and crm.customer_bulk."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from core import clock
from core.errors import ValidationFailed
from crm import customer_bulk, customers, tags
from crm.customer_queries import CustomerFilter, search, visible_ids
from crm.models import Customer, CustomerCollaborator, CustomerEvent, OwnerChange
from crm.scope import Viewer
from tests.factories import make_customer, make_org, make_staff
from tests.test_admin_support import audit_count


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def people(session, org):
    return {
        "admin": make_staff(session, role="admin", department=org["company"], password=None),
        "supervisor": make_staff(session, role="supervisor", department=org["team_a"], password=None),
        "manager": make_staff(session, role="manager", department=org["branch"], password=None),
        "a": make_staff(session, department=org["team_a"], password=None),
        "a2": make_staff(session, department=org["team_a"], password=None),
        "b": make_staff(session, department=org["team_b"], password=None),
    }


def v(staff):
    return Viewer.of(staff)


def names(session, viewer, **kw):
    return sorted(c.name for c in search(session, viewer, CustomerFilter(**kw), page_size=200).items)


def test_sales_sees_own_and_co_handled(session, people):
    make_customer(session, owner=people["a"], name="自己")
    shared = make_customer(session, owner=people["a2"], name="协作")
    make_customer(session, owner=people["a2"], name="同事")
    session.add(CustomerCollaborator(customer_id=shared.id, staff_id=people["a"].id, added_at=clock.now()))
    session.flush()
    assert names(session, v(people["a"])) == ["协作", "自己"]


def test_a_supervisor_who_starts_co_handling_sees_that_customer_too(session, people):
    """The list drops the co-handling half of the scope only while the viewer co-handles nobody."""
    make_customer(session, owner=people["a"], name="一组")
    outside = make_customer(session, owner=people["b"], name="二组")
    found = search(session, v(people["supervisor"]), CustomerFilter(), count_bound=10)
    assert [c.name for c in found.items] == ["一组"] and found.total == 1
    session.add(CustomerCollaborator(customer_id=outside.id, staff_id=people["supervisor"].id, added_at=clock.now()))
    session.flush()
    found = search(session, v(people["supervisor"]), CustomerFilter(), count_bound=10)
    assert sorted(c.name for c in found.items) == ["一组", "二组"] and found.total == 2


def test_supervisor_sees_their_department_and_admin_everything(session, people):
    make_customer(session, owner=people["a"], name="一组")
    make_customer(session, owner=people["b"], name="二组")
    make_customer(session, name="公海")
    assert names(session, v(people["supervisor"])) == ["一组"]
    assert names(session, v(people["manager"])) == ["一组", "二组"]
    assert names(session, v(people["admin"])) == ["一组", "二组", "公海"]


def test_pool_customers_are_listed_only_when_asked_for(session, people):
    make_customer(session, name="公海客户")
    make_customer(session, owner=people["a"], name="私海客户")
    assert names(session, v(people["a"])) == ["私海客户"]
    assert names(session, v(people["a"]), status="pool") == ["公海客户"]


@pytest.mark.parametrize("q, expected", [
    ("李", ["李四", "李小龙"]), ("ls", ["李四"]), ("LXL", ["李小龙"]), ("13800001111", ["李四"]),
    ("+86 138-0000-1111", ["李四"]), ("2222", ["李小龙"]), ("13899999999", []),
])
def test_search_by_name_initials_phone_and_last_four(session, people, q, expected):
    make_customer(session, owner=people["a"], name="李四", phone="13800001111")
    make_customer(session, owner=people["a"], name="李小龙", phone="13800002222")
    make_customer(session, owner=people["a"], name="王五", phone="13800003333")
    assert names(session, v(people["a"]), q=q) == expected


def test_latin_letters_find_initials_and_latin_names_both(session, people):
    make_customer(session, owner=people["a"], name="Tom 张", phone="13800004444")  # initials "tz"
    make_customer(session, owner=people["a"], name="汤姆", phone="13800005555")  # initials "tm"
    make_customer(session, owner=people["a"], name="王五", phone="13800006666")
    assert names(session, v(people["a"]), q="om") == ["Tom 张"]
    assert names(session, v(people["a"]), q="tm") == ["汤姆"]
    assert names(session, v(people["a"]), q="t") == ["Tom 张", "汤姆"]


@pytest.mark.parametrize("q, expected", [
    ("zhangwei", ["张伟", "张伟强"]), ("ZhangWeiQ", ["张伟强"]), ("zhangw", ["张伟", "张伟强"]), ("zw", ["张伟", "张伟强", "赵文"]),
    ("lvbu", ["吕布"]), ("zhangsan", []),
])
def test_full_pinyin_finds_names_as_initials_do(session, people, q, expected):
    for name, phone in (("张伟", "13800007771"), ("张伟强", "13800007772"), ("吕布", "13800007773"),
                        ("赵文", "13800007774")):
        make_customer(session, owner=people["a"], name=name, phone=phone)
    assert names(session, v(people["a"]), q=q) == expected


def test_a_renamed_customer_is_found_by_the_new_names_pinyin(session, people):
    c = make_customer(session, owner=people["a"], name="张三", phone="13800007775")
    customers.update_profile(session, v(people["a"]), c.id, {"name": "李四"})
    assert names(session, v(people["a"]), q="lisi") == ["李四"]
    assert names(session, v(people["a"]), q="zhangsan") == []


def test_search_by_id_number_uses_the_blind_index(session, people):
    make_customer(session, owner=people["a"], name="有证", id_number="11010519491231002X")
    make_customer(session, owner=people["a"], name="无证")
    assert names(session, v(people["a"]), q="11010519491231002x") == ["有证"]


def test_search_by_tag_name(session, people):
    vip = make_customer(session, owner=people["a"], name="贵宾")
    make_customer(session, owner=people["a"], name="普通")
    group = tags.create_group(session, None, "意向")
    tag = tags.create_tag(session, None, group.id, "有房产")
    tags.tag_customer(session, None, vip.id, [tag.id])
    assert names(session, v(people["a"]), q="房产") == ["贵宾"]


def test_search_never_crosses_the_scope(session, people):
    make_customer(session, owner=people["b"], name="李四", phone="13800001111")
    assert names(session, v(people["a"]), q="13800001111") == []


def test_filters_combine(session, people):
    make_customer(session, owner=people["a"], name="命中", region="杭州", customer_type="mortgage", grade="A",
                  source="抖音")
    make_customer(session, owner=people["a"], name="地区不对", region="上海", customer_type="mortgage", grade="A",
                  source="抖音")
    make_customer(session, owner=people["a"], name="类型不对", region="杭州", customer_type="car", grade="A",
                  source="抖音")
    make_customer(session, owner=people["a"], name="来源不对", region="杭州", customer_type="mortgage", grade="A")
    assert names(session, v(people["a"]), region="杭州", customer_type="mortgage", grade="A", source="抖音") == ["命中"]


def test_filter_by_stage_and_status(session, people):
    c = make_customer(session, owner=people["a"], name="有意向")
    make_customer(session, owner=people["a"], name="新的")
    customers.set_stage(session, c.id, "intent")
    assert names(session, v(people["a"]), stage="intent") == ["有意向"]
    assert names(session, v(people["a"]), status="owned") == ["新的", "有意向"]


def test_filter_by_owner_and_department_subtree(session, people, org):
    make_customer(session, owner=people["a"], name="甲的")
    make_customer(session, owner=people["a2"], name="甲二的")
    make_customer(session, owner=people["b"], name="乙的")
    admin = v(people["admin"])
    assert names(session, admin, owner_id=people["a2"].id) == ["甲二的"]
    assert names(session, admin, department_id=org["team_a"].id) == ["甲二的", "甲的"]
    assert names(session, admin, department_id=org["branch"].id) == ["乙的", "甲二的", "甲的"]
    assert names(session, admin, department_id=999_999) == []


def test_created_date_range_uses_shanghai_business_days(session, people):
    clock.freeze(datetime(2025, 3, 1, 15, 30, tzinfo=UTC))  # 2025-03-01 23:30 in Shanghai
    make_customer(session, owner=people["a"], name="三月一日")
    clock.freeze(datetime(2025, 3, 1, 16, 30, tzinfo=UTC))  # 2025-03-02 00:30 in Shanghai
    make_customer(session, owner=people["a"], name="三月二日")
    viewer = v(people["a"])
    assert names(session, viewer, created_from=date(2025, 3, 2)) == ["三月二日"]
    assert names(session, viewer, created_to=date(2025, 3, 1)) == ["三月一日"]


def test_next_followup_date_range(session, people):
    due = make_customer(session, owner=people["a"], name="明天跟进")
    make_customer(session, owner=people["a"], name="未排期")
    due.next_followup_at = datetime(2025, 5, 2, 2, 0, tzinfo=UTC)
    session.flush()
    assert names(session, v(people["a"]), next_followup_from=date(2025, 5, 2),
                 next_followup_to=date(2025, 5, 2)) == ["明天跟进"]


@pytest.mark.parametrize("kw", [{"stage": "bogus"}, {"status": "gone"}, {"customer_type": "boat"},
                                {"sort": "random"}, {"created_from": date(2025, 2, 1), "created_to": date(2025, 1, 1)}])
def test_bad_filters_are_refused_in_chinese(session, people, kw):
    with pytest.raises(ValidationFailed) as err:
        search(session, v(people["a"]), CustomerFilter(**kw))
    assert err.value.message


def test_pagination_with_total(session, people):
    for i in range(5):
        make_customer(session, owner=people["a"], name=f"客户{i}")
    first = search(session, v(people["a"]), CustomerFilter(sort="created_asc"), page=1, page_size=2)
    third = search(session, v(people["a"]), CustomerFilter(sort="created_asc"), page=3, page_size=2)
    assert first.total == 5 and [c.name for c in first.items] == ["客户0", "客户1"]
    assert [c.name for c in third.items] == ["客户4"]


def test_sort_by_amount_puts_missing_amounts_last(session, people):
    make_customer(session, owner=people["a"], name="小", demand_amount=100)
    make_customer(session, owner=people["a"], name="无")
    make_customer(session, owner=people["a"], name="大", demand_amount=100_000)
    items = search(session, v(people["a"]), CustomerFilter(sort="amount_desc")).items
    assert [c.name for c in items] == ["大", "小", "无"]


def test_sort_by_grade_rank(session, people):
    make_customer(session, owner=people["a"], name="C级", grade="C")
    make_customer(session, owner=people["a"], name="A级", grade="A")
    make_customer(session, owner=people["a"], name="未定级")
    items = search(session, v(people["a"]), CustomerFilter(sort="grade_asc")).items
    assert [c.name for c in items] == ["A级", "C级", "未定级"]


def test_visible_ids_is_the_list_scope(session, people):
    mine = make_customer(session, owner=people["a"])
    theirs = make_customer(session, owner=people["b"])
    assert visible_ids(session, v(people["a"]), [mine.id, theirs.id, 424242]) == {mine.id}


# --- bulk ------------------------------------------------------------------------------------------------

def test_bulk_grade_reports_refused_and_unchanged(session, people):
    a1 = make_customer(session, owner=people["a"], grade="B")
    a2 = make_customer(session, owner=people["a"])
    theirs = make_customer(session, owner=people["b"])
    result = customer_bulk.bulk_set_grade(session, v(people["a"]), [a1.id, a2.id, theirs.id, a2.id], "B")
    assert result.done == [a2.id] and result.unchanged == [a1.id] and list(result.refused) == [theirs.id]
    assert result.succeeded == 2
    session.expire_all()
    assert session.get(Customer, theirs.id).grade is None
    assert session.scalar(select(func.count()).select_from(CustomerEvent).where(
        CustomerEvent.kind == "grade", CustomerEvent.customer_id == a2.id)) == 1
    assert audit_count(session, "customer.grade") == 1


def test_bulk_grade_refuses_an_unknown_grade_and_changes_nothing(session, people):
    c = make_customer(session, owner=people["a"])
    with pytest.raises(ValidationFailed):
        customer_bulk.bulk_set_grade(session, v(people["a"]), [c.id], "Z")
    assert session.get(Customer, c.id).grade is None


def test_bulk_needs_a_selection(session, people):
    with pytest.raises(ValidationFailed, match="请先勾选客户"):
        customer_bulk.bulk_set_grade(session, v(people["a"]), [], "A")


def test_bulk_blacklist_records_owner_history_and_timeline(session, people):
    c = make_customer(session, owner=people["a"])
    pooled = make_customer(session)
    result = customer_bulk.bulk_blacklist(session, v(people["admin"]), [c.id, pooled.id], "资料造假 13812345678")
    assert sorted(result.done) == sorted([c.id, pooled.id])
    session.expire_all()
    row = session.get(Customer, c.id)
    assert (row.status, row.owner_id, row.pool_id, row.previous_owner_id) == ("blacklist", None, None, people["a"].id)
    assert row.blacklist_reason == "资料造假 138****5678"
    change = session.scalar(select(OwnerChange).where(OwnerChange.customer_id == c.id,
                                                      OwnerChange.reason == "blacklist"))
    assert change.from_owner_id == people["a"].id and change.by_staff_id == people["admin"].id
    again = customer_bulk.bulk_blacklist(session, v(people["admin"]), [c.id], "再次")
    assert again.done == [] and again.unchanged == [c.id]


# --- the bounded count (the console list: "1万+" past the bound) ---------------------------------------------

def test_a_bounded_count_says_more_than_the_bound_and_keeps_pagination_right(session, people):
    for i in range(7):
        make_customer(session, owner=people["a"], name=f"客户{i}")
    viewer, flt = v(people["a"]), CustomerFilter()
    exact = search(session, viewer, flt, page_size=2)
    assert (exact.total, exact.more_than) == (7, None)
    first = search(session, viewer, flt, page_size=2, count_bound=3)
    assert first.more_than == 3 and first.total > 2 * 1  # more than the bound, and a next page exists
    # page 3 lies beyond the bound: the count reaches one row past the page, so the next page is still known
    third = search(session, viewer, flt, page_size=2, page=3, count_bound=3)
    assert third.more_than == 3 and third.total > 3 * 2 and len(third.items) == 2
    last = search(session, viewer, flt, page_size=2, page=4, count_bound=3)
    assert last.total == 7 and len(last.items) == 1  # 7 == 4 * 2 - 1: no page after it
    assert [c.name for p in (1, 2, 3, 4) for c in search(session, viewer, flt, page=p, page_size=2,
                                                         count_bound=3).items] == \
        [c.name for c in search(session, viewer, flt, page_size=200).items]


def test_a_count_within_its_bound_is_exact(session, people):
    for i in range(3):
        make_customer(session, owner=people["a"], name=f"客户{i}")
    found = search(session, v(people["a"]), CustomerFilter(), page_size=2, count_bound=3)
    assert (found.total, found.more_than) == (3, None)


def test_the_last_four_digits_search_can_use_its_index(session, people):
    """``phone_last4() = '1111'`` is the expression of ix_customer_phone_last4 in both databases (the old
    ``LIKE '%1111'`` could use no index: a manager's search read the whole department)."""
    from sqlalchemy import text

    from crm.customer_queries import search_clause

    make_customer(session, owner=people["a"], name="李四", phone="13800001111")
    stmt = select(Customer.id).where(search_clause("1111"))
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(session.scalars(text("EXPLAIN " + str(stmt.compile(
            session.bind, compile_kwargs={"literal_binds": True})))))
    else:
        plan = "\n".join(str(row) for row in session.execute(text("EXPLAIN QUERY PLAN " + str(stmt.compile(
            session.bind, compile_kwargs={"literal_binds": True})))))
    assert "ix_customer_phone_last4" in plan
    assert list(session.scalars(stmt)) == [session.scalar(select(Customer.id).where(Customer.name == "李四"))]
