"""Chat commands: the parser and the Chinese time expressions (Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.commands.parser import CommandInvalid, parse, parse_when, split_followup, split_tags
from core import clock

# Thursday 2025-11-20 10:00 in Shanghai
NOW = datetime(2025, 11, 20, 2, 0, tzinfo=UTC)


def local(instant: datetime) -> str:
    return instant.astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(("expr", "expected"), [
    ("明天10点", "2025-11-21 10:00"),
    ("后天", "2025-11-22 09:00"),
    ("3天后", "2025-11-23 09:00"),
    ("三天后", "2025-11-23 09:00"),
    ("下周一 14:00", "2025-11-24 14:00"),
    ("11月25日 9:30", "2025-11-25 09:30"),
    ("2026-12-01 10:00", "2026-12-01 10:00"),
    ("明天下午3点半", "2025-11-21 15:30"),
    ("下午3点", "2025-11-20 15:00"),
    ("9点", "2025-11-21 09:00"),
    ("2小时后", "2025-11-20 12:00"),
    ("明晚", "2025-11-21 20:00"),
    ("周五", "2025-11-21 09:00"),
    ("11月1日", "2026-11-01 09:00"),
])
def test_chinese_time_expressions_read_in_shanghai(expr, expected):
    assert local(parse_when(expr, NOW)) == expected


def test_parsed_time_is_aware_utc():
    assert parse_when("明天10点", NOW) == datetime(2025, 11, 21, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["随便什么时候", "明天25点", "13月5日", "0天后", "2025-02-30"])
def test_unparseable_time_is_a_clear_refusal(expr):
    with pytest.raises(CommandInvalid, match="无法识别时间"):
        parse_when(expr, NOW)


def test_time_defaults_to_the_frozen_clock():
    with clock.frozen(NOW):
        assert local(parse_when("明天10点")) == "2025-11-21 10:00"


@pytest.mark.parametrize(("text", "name", "rest"), [
    ("查 张三", "lookup", "张三"),
    ("查张三", "lookup", "张三"),
    ("去标签 张三 高意向", "untag", "张三 高意向"),
    ("标签 张三 高意向", "tag", "张三 高意向"),
    ("今日", "reminders", ""),
    ("提醒", "reminders", ""),
    ("领取 #12", "claim", "#12"),
    ("进件 张三 信用贷", "apply", "张三 信用贷"),
    ("帮助", "help", ""),
    ("", "help", ""),
    ("你好", "unknown", "你好"),
])
def test_command_words(text, name, rest):
    command = parse(text)
    assert (command.name, command.rest) == (name, rest)


def test_followup_splits_customer_content_and_next_time():
    assert split_followup("张三 电话沟通，有意向 下次 明天10点") == ("张三", "电话沟通，有意向", "明天10点")
    assert split_followup("#12 客户说下次再说") == ("#12", "客户说下次再说", None)


def test_tags_split_on_chinese_and_latin_commas():
    assert split_tags("高意向,有房，有车、 公积金 ") == ["高意向", "有房", "有车", "公积金"]


@pytest.mark.parametrize(("text", "fen"), [("5万", 5_000_000), ("5.5w", 5_500_000), ("50000", 5_000_000),
                                          ("50000元", 5_000_000), ("1234.56", 123_456)])
def test_application_amounts_become_integer_fen(text, fen):
    from bot.commands.apply import parse_amount_fen

    assert parse_amount_fen(text) == fen


@pytest.mark.parametrize("text", ["五万", "-5", "1.001", "abc"])
def test_bad_application_amounts_are_refused(text):
    from bot.commands.apply import parse_amount_fen

    with pytest.raises(CommandInvalid):
        parse_amount_fen(text)
