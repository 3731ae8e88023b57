"""The condition builder in the console forms: risk rules (风控规则) and automation conditions (自动化规则)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.models import AutomationRule
from lending.risk import rules as rule_sets
from lending.risk.evaluate import dry_run
from tests.factories import make_org, make_staff
from tests.lending_product_factories import make_funder, make_product
from tests.test_admin_support import console_client, log_in


@pytest.fixture
def manager(session):
    org = make_org(session)
    return make_staff(session, role="manager", department=org["company"])


def builder_rules(csrf, *, rows, join="and", mode="builder", expression=""):
    """One rule whose condition comes from the builder with prefix cbk1."""
    data = {"csrf_token": csrf, "rule_key": ["k1"], "rule_order": ["10"], "rule_name": ["大额信用贷"],
            "rule_expression": [expression], "rule_outcome": ["manual_review"], "rule_reason": ["金额较大"],
            "cbk1-mode": mode, "cbk1-join": join}
    for i, (field, op, value) in enumerate(rows):
        data[f"cbk1-{i}-field"], data[f"cbk1-{i}-op"] = field, op
        data[f"cbk1-{i}-choice" if isinstance(value, list) else f"cbk1-{i}-value"] = value
    return data


def test_a_rule_built_with_the_form_is_saved_as_its_expression_in_fen(session, manager):
    product = make_product(session, funder=make_funder(session, "甲银行"))
    client = console_client()
    csrf = log_in(client, session, manager)
    response = client.post(f"/console/lending/risk/{product.id}", data=builder_rules(csrf, rows=[
        ("amount", "gt", "20万"), ("customer_type", "in", ["credit", "business"])]))
    assert response.status_code == 303
    version = rule_sets.current_rule_version(session, product.id)
    assert version.rules[0]["expression"] == 'amount > 200000_00 and customer_type in ["credit", "business"]'
    hit = dry_run(version, {"amount": 20_000_001, "customer_type": "credit"})
    miss = dry_run(version, {"amount": 20_000_000, "customer_type": "credit"})
    assert hit.outcome == "manual_review" and miss.outcome == "pass"
    page = client.get(f"/console/lending/risk/{product.id}").text  # read back into rows, in yuan
    assert 'value="200000"' in page and '<option value="business" selected>' in page


def test_a_bad_amount_in_the_builder_is_refused_in_chinese_and_nothing_saved(session, manager):
    product = make_product(session, funder=make_funder(session, "甲银行"))
    client = console_client()
    csrf = log_in(client, session, manager)
    page = client.post(f"/console/lending/risk/{product.id}",
                       data=builder_rules(csrf, rows=[("amount", "gt", "二十万")]))
    assert page.status_code == 422
    assert "大额信用贷" in page.text and "申请金额" in page.text and "格式不正确" in page.text
    assert 'value="二十万"' in page.text  # the typed rows are shown again
    assert rule_sets.current_rule_version(session, product.id) is None


def test_an_expression_beyond_the_builder_is_shown_for_advanced_editing_and_kept(session, manager):
    product = make_product(session, funder=make_funder(session, "甲银行"))
    expression = "amount > income_monthly * 10 or (age > 55 and not has_property)"
    rule_sets.save_rule_set(session, product.id, [{"name": "负债", "expression": expression, "outcome": "reject",
                                                   "reason": "收入不足"}])
    client = console_client()
    csrf = log_in(client, session, manager)
    page = client.get(f"/console/lending/risk/{product.id}").text
    assert "超出了条件构建器能表达的范围" in page
    assert 'name="cbn0-mode" value="advanced" class="cb-mode-input" checked' in page
    data = builder_rules(csrf, rows=[], mode="advanced", expression=expression)
    assert client.post(f"/console/lending/risk/{product.id}", data=data).status_code == 303
    assert rule_sets.current_rule_version(session, product.id).rules[0]["expression"] == expression


def test_an_advanced_expression_is_still_checked_by_the_engine(session, manager):
    product = make_product(session, funder=make_funder(session, "甲银行"))
    client = console_client()
    csrf = log_in(client, session, manager)
    page = client.post(f"/console/lending/risk/{product.id}",
                       data=builder_rules(csrf, rows=[("age", "gt", "55")], mode="advanced",
                                          expression="__import__('os')"))
    assert page.status_code == 422 and "不允许调用函数" in page.text
    assert rule_sets.current_rule_version(session, product.id) is None


def test_an_automation_rule_takes_its_conditions_from_the_builder(session, manager):
    client = console_client()
    csrf = log_in(client, session, manager)
    form = {"csrf_token": csrf, "name": "新客分派提醒", "trigger": "customer_created", "action_type": "create_task",
            "title": "联系 {name}", "due_hours": "4", "cond-mode": "builder", "cond-join": "and",
            "cond-0-field": "stage", "cond-0-op": "in", "cond-0-choice": ["new", "contacted"],
            "cond-1-field": "region", "cond-1-op": "ne", "cond-1-value": "上海"}
    assert client.post("/console/work/rules", data=form).status_code == 303
    rule = session.scalar(select(AutomationRule))
    assert rule.conditions == [{"field": "stage", "op": "in", "value": ["new", "contacted"]},
                               {"field": "region", "op": "ne", "value": "上海"}]


def test_an_automation_expression_the_builder_cannot_read_is_refused(session, manager):
    client = console_client()
    csrf = log_in(client, session, manager)
    form = {"csrf_token": csrf, "name": "或者规则", "trigger": "customer_created", "action_type": "create_task",
            "title": "联系 {name}", "due_hours": "4", "cond-mode": "advanced",
            "cond_expression": 'stage == "new" or region == "上海"'}
    page = client.post("/console/work/rules", data=form)
    assert page.status_code == 422 and "条件表达式无法识别" in page.text
    assert session.scalar(select(AutomationRule)) is None
    form["cond_expression"] = 'stage == "new" and region != "上海"'
    assert client.post("/console/work/rules", data=form).status_code == 303
    assert session.scalar(select(AutomationRule)).conditions == [
        {"field": "stage", "op": "eq", "value": "new"}, {"field": "region", "op": "ne", "value": "上海"}]


def test_the_preview_shows_the_expression_or_the_refusal(session, manager):
    client = console_client()
    log_in(client, session, manager)
    query = {"prefix": "cbk1", "cbk1-0-field": "amount", "cbk1-0-op": "ge", "cbk1-0-value": "3.5万"}
    assert "amount &gt;= 35000_00" in client.get("/console/lending/risk/condition-preview", params=query).text
    query["cbk1-0-value"] = "三万"
    assert "格式不正确" in client.get("/console/lending/risk/condition-preview", params=query).text
    query = {"prefix": "cond", "cond-0-field": "stage", "cond-0-op": "eq", "cond-0-choice": "new"}
    assert 'stage == &#34;new&#34;' in client.get("/console/work/rules/condition-preview", params=query).text


def test_an_early_warning_rule_is_built_in_days_and_yuan(session, manager):
    from postloan.models import WarningRule

    client = console_client()
    csrf = log_in(client, session, manager)
    form = {"csrf_token": csrf, "name": "逾期加重", "raise_to": "high", "expression": "", "warn-mode": "builder",
            "warn-join": "and", "warn-0-field": "overdue_days", "warn-0-op": "ge", "warn-0-value": "15",
            "warn-1-field": "overdue_amount", "warn-1-op": "gt", "warn-1-value": "1.2万"}
    assert client.post("/console/collections/rules/warnings", data=form).status_code == 303
    rule = session.scalar(select(WarningRule))
    assert rule.expression == "overdue_days >= 15 and overdue_amount > 12000_00"
    form["name"], form["warn-1-value"] = "坏金额", "一万"
    page = client.post("/console/collections/rules/warnings", data=form)
    assert page.status_code == 422 and "逾期金额" in page.text and "格式不正确" in page.text
    assert session.scalar(select(WarningRule).where(WarningRule.name == "坏金额")) is None
