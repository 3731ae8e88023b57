"""The form condition builder's server side (lending.risk.condition_builder): rows -> expression -> rows for
every operator and unit, yuan typed -> fen written, and what the builder cannot express is left alone."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from lending.risk.condition_builder import (
    FALSE,
    TRUE,
    Built,
    Field,
    FieldSet,
    Row,
    automation_conditions,
    automation_fields,
    parse,
    render,
    risk_fields,
)
from lending.risk.expressions import BOOL, compile_expression, evaluate

RISK = risk_fields()
# one field of every unit; "days" has no applicant fact today, so a field set of its own covers it
EVERY_UNIT = FieldSet((
    Field("amount", "申请金额", "fen"), Field("overdue_days", "逾期天数", "days"), Field("age", "年龄", "count"),
    Field("debt_ratio", "负债率", "rate"), Field("customer_type", "客户类型", "choice", (("credit", "信用贷"),
                                                                                  ("car", "车抵贷"))),
    Field("region", "地区", "text"), Field("blacklisted", "是否黑名单", "choice", ((TRUE, "是"), (FALSE, "否")), ("eq",)),
))
NUMBER_CASES = [  # (field, typed, written)
    ("amount", "200000", "200000_00"), ("overdue_days", "30", "30"), ("age", "55", "55"),
    ("debt_ratio", "45", "0.45"),
]


@pytest.mark.parametrize("op,symbol", [("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("eq", "=="),
                                       ("ne", "!=")])
@pytest.mark.parametrize("field,typed,written", NUMBER_CASES)
def test_a_number_row_round_trips_for_every_ordering_operator(field, typed, written, op, symbol):
    built = Built("and", [Row(field, op, typed)])
    expression = render(EVERY_UNIT, built)
    assert expression == f"{field} {symbol} {written}"
    assert parse(EVERY_UNIT, expression) == built


@pytest.mark.parametrize("op,symbol", [("eq", "=="), ("ne", "!=")])
def test_a_choice_and_a_text_row_round_trip_with_one_value(op, symbol):
    built = Built("or", [Row("customer_type", op, "", ["car"]), Row("region", op, "广东")])
    expression = render(EVERY_UNIT, built)
    assert expression == f'customer_type {symbol} "car" or region {symbol} "广东"'
    assert parse(EVERY_UNIT, expression) == built


@pytest.mark.parametrize("op,word", [("in", "in"), ("not_in", "not in")])
def test_belongs_to_takes_a_list_for_every_unit(op, word):
    built = Built("and", [Row("customer_type", op, "", ["credit", "car"]), Row("region", op, "广东、上海"),
                          Row("amount", op, "10000、20000.5"), Row("debt_ratio", op, "50")])
    expression = render(EVERY_UNIT, built)
    assert expression == (f'customer_type {word} ["credit", "car"] and region {word} ["广东", "上海"] '
                          f"and amount {word} [10000_00, 20000_50] and debt_ratio {word} [0.5]")
    assert parse(EVERY_UNIT, expression) == built


def test_a_yes_no_fact_is_written_as_itself_or_its_negation():
    built = Built("and", [Row("blacklisted", "eq", "", [TRUE]), Row("blacklisted", "eq", "", [FALSE])])
    assert render(EVERY_UNIT, built) == "blacklisted and not blacklisted"
    assert parse(EVERY_UNIT, "blacklisted and not blacklisted") == built
    assert parse(EVERY_UNIT, "blacklisted == False") == Built("and", [Row("blacklisted", "eq", "", [FALSE])])


@pytest.mark.parametrize("typed,fen", [("20万", 20_000_000), ("1,200,000元", 120_000_000), ("¥8,000.5", 800_050),
                                       ("３．５万", 3_500_000)])
def test_money_is_typed_in_yuan_and_written_in_fen(typed, fen):
    expression = render(RISK, Built("and", [Row("amount", "gt", typed)]))
    compiled = compile_expression(expression, expect=BOOL)
    assert evaluate(compiled, {"amount": fen + 1}) is True
    assert evaluate(compiled, {"amount": fen}) is False
    shown = parse(RISK, expression).rows[0].value
    assert Decimal(shown) * 100 == fen  # read back in yuan


@pytest.mark.parametrize("expression", [
    "min(income_monthly * 12, 200000_00) > 100000_00",  # arithmetic
    "age < 22 or (age > 55 and blacklisted)",  # two levels
    "22 < age < 55",  # a chain
    "amount > income_monthly * 10",  # a field on both sides
    "unknown_fact > 3",  # not a builder field
    'customer_type == "spaceship"',  # not one of the choices
    'region == "广东、上海"',  # one text value that would read back as two
    "recent_applications(7) > 2",  # a window the builder does not offer
    "age <",  # not even an expression
])
def test_an_expression_beyond_the_builder_is_not_turned_into_rows(expression):
    assert parse(RISK, expression) is None


def test_every_risk_field_renders_to_an_expression_the_engine_accepts():
    for fld in RISK.fields:
        for op in fld.operators:
            if fld.unit == "choice":
                row = Row(fld.key, op, "", [fld.choices[0][0]])
            else:
                row = Row(fld.key, op, "广东" if fld.unit == "text" else "3")
            expression = render(RISK, Built("and", [row]))
            compile_expression(expression, expect=BOOL)  # raises if the engine refuses it
            assert parse(RISK, expression) == Built("and", [row]), expression


@pytest.mark.parametrize("row,message", [
    (Row("amount", "gt", "二十万"), "格式不正确"),
    (Row("amount", "gt", "-5"), "不能为负数"),
    (Row("age", "gt", "3.5"), "须是整数"),
    (Row("age", "gt", "abc"), "须是数字"),
    (Row("amount", "eq", "1、2"), "只能填一个值"),
    (Row("customer_type", "gt", "", ["credit"]), "可用的比较"),
    (Row("customer_type", "eq", "", ["spaceship"]), "没有这个选项"),
    (Row("customer_type", "eq", "", []), "请填写或选择"),
    (Row("nope", "eq", "1"), "请选择字段"),
])
def test_bad_rows_are_refused_in_chinese(row, message):
    with pytest.raises(ValidationFailed) as caught:
        render(RISK, Built("and", [row]))
    assert message in caught.value.message and "第 1 个条件" in caught.value.message


def test_blank_rows_are_skipped_and_no_rows_is_no_expression():
    assert render(RISK, Built("and", [Row(), Row("age", "gt", "55"), Row()])) == "age > 55"
    assert render(RISK, Built("or", [Row()])) == ""


def test_automation_conditions_are_built_as_data_and_read_back():
    fields = automation_fields([("A", "A 高意向"), ("B", "B 一般")])
    built = Built("and", [Row("grade", "in", "", ["A", "B"]), Row("stage", "eq", "", ["new"]),
                          Row("region", "ne", "上海")])
    conditions = automation_conditions(fields, built)
    assert conditions == [{"field": "grade", "op": "in", "value": ["A", "B"]},
                          {"field": "stage", "op": "eq", "value": "new"},
                          {"field": "region", "op": "ne", "value": "上海"}]
    assert parse(fields, render(fields, built)) == built
    with pytest.raises(ValidationFailed, match="并且"):
        automation_conditions(fields, Built("or", built.rows))
    assert parse(fields, 'grade == "A" or stage == "new"') is None  # automation conditions are all 并且


def test_the_warning_fields_are_the_post_loan_facts_and_compile_there():
    from lending.risk.condition_builder import warning_fields
    from postloan.rerating import FACTS

    fields = warning_fields()
    assert {f.key for f in fields.fields} == set(FACTS)
    built = Built("or", [Row("overdue_days", "gt", "30天"), Row("overdue_amount", "ge", "5000"),
                         Row("bucket", "in", "", ["M2", "M3+"])])
    expression = render(fields, built)
    assert expression == 'overdue_days > 30 or overdue_amount >= 5000_00 or bucket in ["M2", "M3+"]'
    compiled = compile_expression(expression, expect=BOOL, facts=FACTS)
    assert evaluate(compiled, {"overdue_days": 31, "overdue_amount": 0, "bucket": "M1"}) is True
    assert evaluate(compiled, {"overdue_days": 30, "overdue_amount": 499_999, "bucket": "M1"}) is False
    assert parse(fields, expression) == Built("or", [Row("overdue_days", "gt", "30"), *built.rows[1:]])
