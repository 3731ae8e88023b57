"""The segment rule builder: every field and operator against a tiny known set, nesting, data scope,
refusals of bad rules, one SQL statement per count, and saved segments."""

from datetime import datetime

import pytest
from sqlalchemy import event, select

from core import clock
from core.clock import BUSINESS_TZ
from core.errors import ValidationFailed
from crm import customers, scope, segments, tags
from crm.models import Customer
from crm.tag_exceptions import InvalidRule, SegmentEditDenied, SegmentNameTaken
from tests.factories import make_customer, make_org, make_staff

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=BUSINESS_TZ)


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=BUSINESS_TZ)


@pytest.fixture
def world(session):
    """甲 (sales a, 上海, A), 乙 (sales b, 北京, B), 丙 (pool, 上海, no grade), 丁 (blacklisted, 广州)."""
    org = make_org(session)
    admin = scope.Viewer.of(make_staff(session, role="admin", department=org["company"]))
    sales_a = make_staff(session, department=org["team_a"])
    sales_b = make_staff(session, department=org["team_b"])
    group = tags.create_group(session, admin, "测试")
    t1, t2, t3 = (tags.create_tag(session, admin, group.id, n) for n in ("T1", "T2", "T3"))
    c1 = make_customer(session, name="甲", owner=sales_a, region="上海", grade="A", customer_type="credit",
                       source="抖音", demand_amount=10_000_000)
    c2 = make_customer(session, name="乙", owner=sales_b, region="北京", grade="B", customer_type="mortgage",
                       source="转介绍", demand_amount=50_000_000)
    c3 = make_customer(session, name="丙", region="上海", customer_type="car", source="抖音")
    c4 = make_customer(session, name="丁", owner=sales_a, region="广州", grade="C", customer_type="credit",
                       source="抖音", demand_amount=10_000_000)
    customers.blacklist(session, admin, c4.id, "测试")
    c1.stage, c2.stage, c3.stage = "new", "intent", "contacted"
    c1.created_at, c2.created_at, c3.created_at, c4.created_at = (
        at("2026-01-10T10:00"), at("2026-02-01T10:00"), at("2026-02-20T10:00"), at("2026-01-05T10:00"))
    c1.assigned_at, c2.assigned_at, c3.assigned_at = at("2026-01-10T10:00"), at("2026-02-01T10:00"), None
    c1.last_followup_at, c2.last_followup_at, c3.last_followup_at = at("2026-03-01T09:00"), None, None
    c1.next_followup_at, c2.next_followup_at, c3.next_followup_at = None, at("2026-03-05T09:00"), None
    session.flush()
    tags.tag_customers(session, admin, [c1.id, c2.id], [t1.id])
    tags.tag_customers(session, admin, [c1.id], [t2.id])
    tags.tag_customers(session, admin, [c3.id, c4.id], [t3.id])
    clock.freeze(NOW)
    return {"org": org, "admin": admin, "sales_a": sales_a, "sales_b": sales_b, "t1": t1.id, "t2": t2.id,
            "t3": t3.id}


def names(session, rule, viewer=None):
    tree = segments.parse_rule(rule, session)
    return sorted(c.name for c in session.scalars(segments.members(session, tree, viewer)))


def one(field, cmp, value=None):
    return {"op": "and", "rules": [{"field": field, "cmp": cmp, "value": value}]}


CASES = [
    ("grade", "in", ["A"], ["甲"]),
    ("grade", "in", ["a", "b"], ["乙", "甲"]),
    ("grade", "not_in", ["A"], ["丙", "乙"]),  # no grade counts as "not A"
    ("stage", "in", ["intent"], ["乙"]),
    ("stage", "not_in", ["new"], ["丙", "乙"]),
    ("region", "in", ["上海", "广州"], ["丙", "甲"]),  # 丁 (广州) is blacklisted: left out by default
    ("region", "equals", "北京", ["乙"]),
    ("customer_type", "in", ["car"], ["丙"]),
    ("source", "in", ["抖音"], ["丙", "甲"]),
    ("demand_amount", "gte", "200000", ["乙"]),
    ("demand_amount", "lte", 100000, ["甲"]),
    ("demand_amount", "gte", "100000.01", ["乙"]),
    ("demand_amount", "between", ["50000", "600000"], ["乙", "甲"]),
    ("created_at", "before", "2026-02-01", ["甲"]),
    ("created_at", "after", "2026-02-01", ["丙"]),
    ("created_at", "within_days", 20, ["丙"]),
    ("created_at", "older_than_days", 30, ["乙", "甲"]),
    ("assigned_at", "is_empty", None, ["丙"]),
    ("assigned_at", "within_days", "40", ["乙"]),
    ("last_followup_at", "not_empty", None, ["甲"]),
    ("last_followup_at", "is_empty", None, ["丙", "乙"]),
    ("last_followup_at", "within_days", 3, ["甲"]),
    ("next_followup_at", "after", "2026-03-04", ["乙"]),
    ("next_followup_at", "before", "2026-03-05", []),
    ("status", "in", ["pool"], ["丙"]),
    ("status", "in", ["blacklist"], ["丁"]),
    ("status", "in", ["owned", "blacklist"], ["丁", "乙", "甲"]),
]


@pytest.mark.parametrize(("field", "cmp", "value", "expected"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_each_field_and_operator_selects_the_right_customers(session, world, field, cmp, value, expected):
    assert names(session, one(field, cmp, value)) == expected


def test_tags_has_any(session, world):
    assert names(session, one("tags", "has_any", [world["t1"], world["t3"]])) == ["丙", "乙", "甲"]


def test_tags_has_all(session, world):
    assert names(session, one("tags", "has_all", [world["t1"], world["t2"]])) == ["甲"]


def test_tags_has_none(session, world):
    assert names(session, one("tags", "has_none", [world["t1"]])) == ["丙"]


def test_owner_in(session, world):
    assert names(session, one("owner", "in", [world["sales_b"].id])) == ["乙"]


def test_department_covers_its_subtree(session, world):
    org = world["org"]
    assert names(session, one("department", "in", [org["team_a"].id])) == ["甲"]
    assert names(session, one("department", "in", [org["branch"].id])) == ["乙", "甲"]


def test_nested_and_inside_or(session, world):
    rule = {"op": "or", "rules": [
        {"field": "grade", "cmp": "in", "value": ["B"]},
        {"op": "and", "rules": [{"field": "region", "cmp": "equals", "value": "上海"},
                                {"field": "stage", "cmp": "in", "value": ["contacted"]}]}]}
    assert names(session, rule) == ["丙", "乙"]


def test_nested_or_inside_and(session, world):
    rule = {"op": "and", "rules": [
        {"field": "tags", "cmp": "has_any", "value": [world["t1"]]},
        {"op": "or", "rules": [{"field": "region", "cmp": "equals", "value": "北京"},
                               {"field": "grade", "cmp": "in", "value": ["A"]}]}]}
    assert names(session, rule) == ["乙", "甲"]


def test_a_salesperson_counts_only_their_own(session, world):
    rule = one("source", "in", ["抖音", "转介绍"])
    sales = scope.Viewer.of(world["sales_a"])
    tree = segments.parse_rule(rule, session)
    assert segments.count(session, tree, world["admin"]) == 3
    assert segments.count(session, tree, sales) == 1
    assert names(session, rule, sales) == ["甲"]


def test_a_manager_counts_their_department_subtree(session, world):
    manager = scope.Viewer.of(make_staff(session, role="manager", department=world["org"]["team_b"]))
    assert names(session, one("grade", "in", ["A", "B"]), manager) == ["乙"]


def test_a_count_is_one_sql_statement(session, world):
    tree = segments.parse_rule({"op": "and", "rules": [
        {"field": "tags", "cmp": "has_all", "value": [world["t1"], world["t2"]]},
        {"field": "department", "cmp": "in", "value": [world["org"]["branch"].id]},
        {"field": "demand_amount", "cmp": "between", "value": ["1", "900000"]}]}, session)
    statements = []
    bind = session.connection()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(bind, "before_cursor_execute", listener)
    try:
        assert segments.count(session, tree, scope.Viewer.of(world["sales_a"])) == 1
    finally:
        event.remove(bind, "before_cursor_execute", listener)
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")


def test_preview_counts_and_masks_phones(session, world):
    result = segments.preview(session, world["admin"], one("source", "in", ["抖音"]), page_size=1)
    assert result.total == 2 and len(result.members) == 1 and result.has_next
    assert result.members[0].phone_masked and "****" in result.members[0].phone_masked


BAD_RULES = [
    ({"op": "and", "rules": [{"field": "salary", "cmp": "in", "value": ["1"]}]}, "未知的字段「salary」"),
    ({"op": "and", "rules": [{"field": "grade", "cmp": "like", "value": ["A"]}]}, "不支持比较方式「like」"),
    ({"op": "xor", "rules": [{"field": "grade", "cmp": "in", "value": ["A"]}]}, "未知的组合方式「xor」"),
    ({"op": "and", "rules": []}, "条件组不能为空"),
    ({"op": "and", "rules": [{"field": "grade", "cmp": "in", "value": ["A"], "extra": 1}]}, "条件只能包含"),
    ({"op": "and", "rules": [{"field": "demand_amount", "cmp": "gte", "value": 1000.5}]}, "金额请填写数字"),
    ({"op": "and", "rules": [{"field": "demand_amount", "cmp": "gte", "value": "12.345"}]}, "金额格式不正确"),
    ({"op": "and", "rules": [{"field": "demand_amount", "cmp": "between", "value": ["9", "1"]}]},
     "最低金额不能高于最高金额"),
    ({"op": "and", "rules": [{"field": "created_at", "cmp": "before", "value": "2026/01/01"}]}, "YYYY-MM-DD"),
    ({"op": "and", "rules": [{"field": "created_at", "cmp": "within_days", "value": 0}]}, "1–3650"),
    ({"op": "and", "rules": [{"field": "tags", "cmp": "has_any", "value": ["高意向"]}]}, "编号（整数）列表"),
    ({"op": "and", "rules": [{"field": "stage", "cmp": "in", "value": ["won"]}]}, "未知的取值「won」"),
    ({"op": "and", "rules": [{"field": "grade", "cmp": "in", "value": []}]}, "请至少填写一个值"),
    ({"op": "and", "rules": [{"op": "or", "rules": [{"op": "and", "rules": [{"op": "or", "rules": [
        {"op": "and", "rules": [{"field": "grade", "cmp": "in", "value": ["A"]}]}]}]}]}]}, "最多嵌套 4 层"),
    (["not", "a", "group"], "必须是一个条件组"),
    ({"op": "and", "rules": [{"field": "tags", "cmp": "has_any", "value": [999999]}]}, "标签不存在：999999"),
    ({"op": "and", "rules": [{"field": "grade", "cmp": "in", "value": ["Z"]}]}, "客户等级不存在：Z"),
]


@pytest.mark.parametrize(("rule", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_invalid_rules_are_refused_in_chinese(session, rule, message):
    with pytest.raises(InvalidRule, match=message):
        segments.parse_rule(rule, session)


def test_rules_are_saved_normalised(session, world):
    segment = segments.create_segment(session, world["admin"], "高额", one("demand_amount", "gte", "200,000"))
    assert segment.rule == {"op": "and", "rules": [{"field": "demand_amount", "cmp": "gte", "value": "200000.00"}]}


def test_a_duplicate_segment_name_is_refused(session, world):
    segments.create_segment(session, world["admin"], "上海客户", one("region", "equals", "上海"))
    with pytest.raises(SegmentNameTaken):
        segments.create_segment(session, world["admin"], "上海客户", one("region", "equals", "北京"))


def test_a_segment_name_is_required(session, world):
    with pytest.raises(ValidationFailed, match="请填写分群名称"):
        segments.create_segment(session, world["admin"], " ", one("region", "equals", "上海"))


def test_only_the_creator_or_a_manager_edits_a_segment(session, world):
    segment = segments.create_segment(session, scope.Viewer.of(world["sales_a"]), "我的", one("grade", "in", ["A"]))
    with pytest.raises(SegmentEditDenied):
        segments.update_segment(session, scope.Viewer.of(world["sales_b"]), segment.id, name="改名")
    updated = segments.update_segment(session, world["admin"], segment.id, rule=one("grade", "in", ["B"]))
    assert updated.rule["rules"][0]["value"] == ["B"]


def test_members_query_follows_the_saved_rule_and_the_viewer(session, world):
    segment = segments.create_segment(session, world["admin"], "抖音", one("source", "in", ["抖音"]),
                                      for_mass_message=True)
    everyone = session.scalars(segments.members_query(session, segment).with_only_columns(Customer.name)).all()
    assert sorted(everyone) == ["丙", "甲"]
    assert segments.member_count(session, segment, scope.Viewer.of(world["sales_b"])) == 0
    assert [s.id for s in segments.list_segments(session, purpose="mass_message")] == [segment.id]
    assert segments.list_segments(session, purpose="group_routing") == []


def test_deleting_a_segment(session, world):
    segment = segments.create_segment(session, world["admin"], "临时", one("grade", "in", ["A"]))
    segments.delete_segment(session, world["admin"], segment.id)
    assert session.scalar(select(Customer.id).limit(1)) is not None  # customers untouched
    assert segments.list_segments(session) == []
