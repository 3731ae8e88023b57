"""The rule expression language: an allow-list of ast nodes, checked at save time, evaluated by our walker."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lending.product_exceptions import InvalidRuleExpression
from lending.risk.expressions import BOOL, NUM, EvaluationError, MissingFact, compile_expression, evaluate


def run(source: str, expect: str | None = None, **facts):
    return evaluate(compile_expression(source, expect=expect), facts)


@pytest.mark.parametrize("source", [
    "__import__('os').system('echo hi')",
    "__import__('os')",
    "open('/etc/passwd')",
    "eval('1')",
    "age.__class__",
    "region.startswith('广东')",
    "(lambda: 1)()",
    "[x for x in (1, 2)]",
    "occupation[0] == 'a'",
    "age ** 2 > 1",
    "{'a': 1}",
    "f'{age}' == '1'",
])
def test_forbidden_constructs_are_refused(source):
    with pytest.raises(InvalidRuleExpression):
        compile_expression(source)


def test_import_is_refused_as_a_call_outside_the_allow_list():
    with pytest.raises(InvalidRuleExpression, match="不允许调用函数「__import__」"):
        compile_expression("__import__('os')")


def test_attribute_access_is_refused_with_the_column():
    with pytest.raises(InvalidRuleExpression, match=r"第 1 个字符「age.real」.*属性访问"):
        compile_expression("age.real > 1")


def test_unknown_fact_is_refused_naming_it():
    with pytest.raises(InvalidRuleExpression, match="未知的字段「salary」"):
        compile_expression("salary > 5000", expect=BOOL)


def test_syntax_error_is_refused_in_chinese():
    with pytest.raises(InvalidRuleExpression, match="语法错误"):
        compile_expression("age > ")


def test_type_mismatch_is_refused():
    with pytest.raises(InvalidRuleExpression, match="比较两边须是数值"):
        compile_expression("age > '18'")
    with pytest.raises(InvalidRuleExpression, match="算术运算"):
        compile_expression("region + 1 > 2")


def test_a_rule_must_be_a_condition_and_a_limit_a_number():
    with pytest.raises(InvalidRuleExpression, match="须是一个条件"):
        compile_expression("age + 1", expect=BOOL)
    with pytest.raises(InvalidRuleExpression, match="须是一个数值"):
        compile_expression("age > 1", expect=NUM)


def test_recent_applications_needs_a_literal_day_count():
    compile_expression("recent_applications(30) >= 2", expect=BOOL)
    with pytest.raises(InvalidRuleExpression, match="整数天数"):
        compile_expression("recent_applications(age) >= 2")


def test_comparisons_and_logic_evaluate():
    assert run("age < 18 or age > 60", age=65) is True
    assert run("age < 18 or age > 60", age=30) is False
    assert run("not blacklisted and credit_score >= 600", blacklisted=False, credit_score=650) is True
    assert run("18 <= age <= 60", age=60) is True
    assert run("region in ['新疆', '西藏']", region="西藏") is True
    assert run("occupation not in ('学生', '无业')", occupation="教师") is True


def test_decimal_literals_are_exact():
    assert run("debt_ratio > 0.7", debt_ratio=Decimal("0.70")) is False
    assert run("debt_ratio > 0.7", debt_ratio=Decimal("0.7000001")) is True
    assert run("0.1 + 0.2 == 0.3") is True  # not a float


def test_credit_limit_formula_yields_fen():
    limit = "min(income_monthly * 12, 200000_00)"
    assert run(limit, NUM, income_monthly=1_000_000) == 12_000_000
    assert run(limit, NUM, income_monthly=5_000_000) == 20_000_000
    assert run("income_monthly * 6 if credit_score >= 700 else income_monthly * 3", NUM,
               income_monthly=100, credit_score=650) == 300


def test_unknown_value_raises_missing_fact():
    with pytest.raises(MissingFact) as caught:
        run("income_monthly < 300000", income_monthly=None)
    assert caught.value.name == "income_monthly"


def test_short_circuit_skips_an_unknown_fact():
    assert run("blacklisted or income_monthly < 1", blacklisted=True) is True


def test_division_by_zero_is_an_evaluation_error():
    with pytest.raises(EvaluationError):
        run("amount / income_monthly > 10", amount=100, income_monthly=0)


def test_calls_go_to_the_functions_given():
    expression = compile_expression("recent_applications(30) >= 2", expect=BOOL)
    seen = []

    def count(days):
        seen.append(days)
        return 3

    assert evaluate(expression, {}, {"recent_applications": count}) is True
    assert seen == [30]
