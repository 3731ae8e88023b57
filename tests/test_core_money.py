from decimal import Decimal

import pytest

from core import money
from core.errors import ValidationFailed
from core.money import Rounding, fen_to_yuan, format_yuan, parse_rate, quantize, yuan_to_fen


def test_yuan_strings_convert_to_fen_exactly():
    assert yuan_to_fen("1234.56") == 123456
    assert yuan_to_fen("1,000") == 100000
    assert yuan_to_fen(Decimal("0.105")) == 11  # half-up by default
    assert yuan_to_fen(Decimal("0.105"), Rounding.HALF_EVEN) == 10


def test_floats_are_refused():
    with pytest.raises(TypeError):
        yuan_to_fen(0.1)
    with pytest.raises(TypeError):
        parse_rate(0.12)


@pytest.mark.parametrize("bad", ["abc", "", "NaN", "Infinity"])
def test_malformed_amounts_are_a_validation_error(bad):
    with pytest.raises(ValidationFailed):
        yuan_to_fen(bad)


def test_one_formatter_for_yuan():
    assert format_yuan(123456) == "¥1,234.56"
    assert format_yuan(-5) == "-¥0.05"
    assert format_yuan(100, symbol=False) == "1.00"
    assert fen_to_yuan(1) == Decimal("0.01")


def test_rounding_modes_differ_on_ties():
    assert quantize(Decimal("2.345"), Rounding.HALF_UP) == Decimal("2.35")
    assert quantize(Decimal("2.345"), Rounding.HALF_EVEN) == Decimal("2.34")


def test_rates_parse_as_fractions_or_percent():
    assert parse_rate("0.12") == Decimal("0.12")
    assert parse_rate("12%") == Decimal("0.12")


@pytest.mark.parametrize(("text", "fen"), [
    ("120000", 12_000_000), ("1,200,000元", 120_000_000), ("20万", 20_000_000), ("3.5万元", 3_500_000),
    ("¥8,000", 800_000), ("１２００００", 12_000_000), ("0.01", 1), (" ", None), (None, None),
])
def test_typed_amounts_read_as_the_importer_reads_them(text, fen):
    assert money.parse_yuan_text(text) == fen


@pytest.mark.parametrize(("text", "message"), [
    ("12.345", "申请金额最多保留两位小数"), ("-5", "申请金额不能为负数"), ("abc", "申请金额格式不正确"),
    ("1e5", "格式不正确"), ("2000000000万", "超出范围"), (1.5, "格式不正确"),
])
def test_bad_typed_amounts_are_refused_naming_the_field(text, message):
    with pytest.raises(ValidationFailed) as refused:
        money.parse_yuan_text(text, label="申请金额", field="amount")
    assert message in refused.value.message and refused.value.details.get("field") == "amount"
