"""Form rows to rules and back: names become ids and codes, mistakes name their row, rules round-trip."""

import pytest

from crm import scope, segment_forms, tags
from crm.segment_forms import FormGroup, FormRow, FormRule
from crm.tag_exceptions import InvalidRule
from tests.factories import make_org, make_staff


@pytest.fixture
def lib(session):
    org = make_org(session)
    admin = scope.Viewer.of(make_staff(session, role="admin", department=org["company"]))
    g1, g2 = tags.create_group(session, admin, "意向"), tags.create_group(session, admin, "渠道")
    hot = tags.create_tag(session, admin, g1.id, "高意向")
    dup1, dup2 = tags.create_tag(session, admin, g1.id, "重复"), tags.create_tag(session, admin, g2.id, "重复")
    sales = make_staff(session, department=org["team_a"], username="zhangsan")
    return {"org": org, "hot": hot.id, "dup1": dup1.id, "dup2": dup2.id, "sales": sales}


def form(*rows, op="and"):
    return FormRule("and", [FormGroup(op, [FormRow(*r) for r in rows])])


def test_names_and_labels_become_ids_and_codes(session, lib):
    rule = segment_forms.rule_from_form(session, form(
        ("tags", "has_any", "高意向、意向/重复"), ("stage", "in", "有意向,new"), ("owner", "in", "zhangsan"),
        ("department", "in", "一组"), ("demand_amount", "between", "50000-200000"), ("grade", "in", "a b")))
    values = [r["value"] for r in rule["rules"]]
    assert values == [[lib["hot"], lib["dup1"]], ["intent", "new"], [lib["sales"].id], [lib["org"]["team_a"].id],
                      ["50000", "200000"], ["a", "b"]]


def test_an_ambiguous_tag_name_asks_for_the_group(session, lib):
    with pytest.raises(InvalidRule, match="请写成「组名/标签名」"):
        segment_forms.rule_from_form(session, form(("tags", "has_any", "重复")))


def test_a_mistake_names_its_group_and_row(session, lib):
    with pytest.raises(InvalidRule, match="第 1 组第 2 行.*员工登录名不存在：lisi"):
        segment_forms.rule_from_form(session, form(("grade", "in", "A"), ("owner", "in", "lisi")))


def test_rows_without_a_field_are_ignored_but_an_empty_form_is_refused(session, lib):
    with pytest.raises(InvalidRule, match="请至少添加一个条件"):
        segment_forms.rule_from_form(session, form(("", "", "")))


def test_two_groups_join_with_the_top_operator(session, lib):
    rule = segment_forms.rule_from_form(session, FormRule("or", [
        FormGroup("and", [FormRow("grade", "in", "A")]), FormGroup("and", [FormRow("region", "equals", "上海")])]))
    assert rule["op"] == "or" and [g["op"] for g in rule["rules"]] == ["and", "and"]


def test_a_rule_round_trips_through_the_form(session, lib):
    original = {"op": "or", "rules": [
        {"op": "and", "rules": [{"field": "tags", "cmp": "has_all", "value": [lib["hot"], lib["dup2"]]},
                                {"field": "demand_amount", "cmp": "between", "value": ["1.00", "2.00"]}]},
        {"op": "and", "rules": [{"field": "created_at", "cmp": "within_days", "value": 7}]}]}
    shown = segment_forms.form_from_rule(session, original)
    assert shown.groups[0].rows[0].value == "高意向、渠道/重复"
    again = segment_forms.rule_from_form(session, shown)
    assert again == {"op": "or", "rules": [
        {"op": "and", "rules": [{"field": "tags", "cmp": "has_all", "value": [lib["hot"], lib["dup2"]]},
                                {"field": "demand_amount", "cmp": "between", "value": ["1.00", "2.00"]}]},
        {"op": "and", "rules": [{"field": "created_at", "cmp": "within_days", "value": "7"}]}]}


def test_a_deeper_rule_is_marked_as_json_only(session, lib):
    deep = {"op": "and", "rules": [{"op": "or", "rules": [
        {"op": "and", "rules": [{"field": "grade", "cmp": "in", "value": ["A"]}]}]}]}
    assert segment_forms.form_from_rule(session, deep).fits is False
