"""``scrm loan schedule`` through the real command group."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from core.cli import main

REFERENCE = ["loan", "schedule", "--principal", "10000", "--annual-rate", "12", "--periods", "12",
             "--start", "2022-11-01"]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def run_json(*args: str) -> dict:
    result = run(*REFERENCE, *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_equal_installment_json_matches_the_reference():
    body = run_json("--method", "equal_installment")
    assert set(body) == {"periods", "totals", "apr"}
    first, last = body["periods"][0], body["periods"][-1]
    assert first == {"number": 1, "due_date": "2022-12-01", "principal": "788.49", "interest": "100.00",
                     "fee": "0.00", "total": "888.49", "balance": "9211.51"}
    assert (last["number"], last["total"], last["principal"], last["interest"], last["balance"]) == (
        12, "888.47", "879.67", "8.80", "0.00")
    assert body["totals"] == {"principal": "10000.00", "interest": "661.86", "fee": "0.00", "total": "10661.86"}
    assert body["apr"] == "12.00"


def test_equal_principal_json_matches_the_reference():
    body = run_json("--method", "equal_principal")
    assert [p["total"] for p in body["periods"]][:3] == ["933.33", "925.00", "916.66"]
    assert body["periods"][-1]["total"] == "841.70" and body["periods"][-1]["principal"] == "833.37"
    assert body["totals"]["interest"] == "650.00"


def test_interest_first_and_bullet_json():
    interest_first = run_json("--method", "interest_first")
    assert [p["total"] for p in interest_first["periods"]] == ["100.00"] * 11 + ["10100.00"]
    bullet = run_json("--method", "bullet")
    assert [p["total"] for p in bullet["periods"]] == ["11200.00"]
    daily = run_json("--method", "bullet", "--interest-period", "daily", "--days-in-year", "360")
    assert daily["periods"][0]["interest"] == "1216.67" and daily["totals"]["total"] == "11216.67"


def test_service_fee_rate_is_a_percent_of_the_principal_per_period():
    body = run_json("--method", "equal_installment", "--service-fee-rate", "0.5")
    assert {p["fee"] for p in body["periods"]} == {"50.00"}
    assert body["totals"]["fee"] == "600.00"
    assert Decimal(body["apr"]) > 20


def test_installment_multiple_in_yuan():
    body = run_json("--method", "equal_installment", "--installment-multiple", "1")
    assert {p["total"] for p in body["periods"][:-1]} == {"888.00"}


def test_table_is_readable_chinese_with_totals_and_cost():
    result = run(*REFERENCE, "--method", "equal_installment")
    assert result.exit_code == 0
    out = result.stdout
    assert "等额本息" in out and "合计" in out and "综合年化成本：12.00%" in out
    assert "888.47" in out and "10,661.86" in out


def test_table_warns_above_the_cap():
    result = run(*REFERENCE, "--method", "equal_installment", "--service-fee-rate", "1")
    assert result.exit_code == 0 and "超过上限 24.00%" in result.stdout


@pytest.mark.parametrize("args,words", [
    (["--method", "balloon"], "还款方式不正确"),
    (["--method", "bullet", "--annual-rate", "abc"], "年利率格式不正确"),
    (["--method", "bullet", "--periods", "1.5"], "期数须是整数"),
    (["--method", "bullet", "--periods", "0"], "期数不能小于 1"),
    (["--method", "bullet", "--principal", "-5"], "本金"),
    (["--method", "bullet", "--principal", "100.001"], "最多两位小数"),
    (["--method", "bullet", "--start", "2022-13-01"], "放款日期格式不正确"),
    (["--method", "equal_installment", "--grace-interest", "12"], "宽限期"),
    (["--method", "equal_installment", "--days-in-year", "364"], "年计息天数"),
    (["--method", "equal_installment", "--bogus", "1"], "未知参数"),
])
def test_bad_input_is_a_chinese_error_and_a_nonzero_exit(args, words):
    # later options win in click, so the REFERENCE values are overridden by ``args``
    result = run(*REFERENCE, *args, "--json")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert words in result.stderr
    assert "Usage" not in result.stderr and "Traceback" not in result.stderr


def test_a_missing_option_is_named():
    result = run("loan", "schedule", "--annual-rate", "12", "--periods", "12", "--method", "bullet")
    assert result.exit_code != 0 and result.stdout == ""
    assert "缺少参数 --principal" in result.stderr


def test_help_documents_the_units():
    result = run("loan", "schedule", "--help")
    assert result.exit_code == 0
    assert "12 表示 12%" in result.stdout and "每期按本金的百分比" in result.stdout
