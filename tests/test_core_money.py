from decimal import Decimal

import pytest

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
