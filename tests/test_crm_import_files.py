"""Lead import files: header variants, encodings, amounts, broken files, the problem-row report."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from core import pii
from core.errors import ValidationFailed
from core.settings import reset_settings_cache
from crm.importer import headers, rows, service
from crm.importer.errors import ImportHeadersInvalid
from crm.models import Customer, ImportJob
from tests.import_support import csv_file, valid_id, xlsx


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield tmp_path / "imports"
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


def _customers(session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0


@pytest.mark.parametrize(("name", "phone", "id_col"), [
    ("姓名", "手机号", "身份证号"), ("客户姓名", "手机", "身份证"), ("名字", "电话", "证件号码"),
    ("姓名*", "联系电话", "身份证号码"), (" 客户姓名 ", "手机号码*", "证件号码"),
])
def test_header_variants_are_recognised(session, tmp_path, name, phone, id_col):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000", valid_id(1)]], header=[name, phone, id_col])
    result = service.import_file(path)
    assert result.counts["created"] == 1


def test_a_title_row_above_the_header_is_skipped(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["姓名", "手机号"], ["张三", "13800138000"]], header=["2026年11月客户导入模板"])
    assert service.import_file(path).counts["created"] == 1


def test_amount_column_in_wan_is_multiplied_by_ten_thousand():
    header = headers.match_headers(["姓名", "手机号", "贷款金额（万元）"])
    assert header.amount_in_wan
    lead = rows.parse_row(header, 2, ["张三", "13800138000", "1.5"], default_source="x")
    assert lead.demand_amount == 1_500_000  # 15,000 yuan in fen


def test_amount_column_in_yuan_accepts_a_wan_suffix_in_the_cell():
    header = headers.match_headers(["姓名", "手机号", "贷款金额"])
    assert not header.amount_in_wan
    assert rows.parse_row(header, 2, ["张三", "13800138000", "50万"], default_source="x").demand_amount == 50_000_000
    assert rows.parse_row(header, 2, ["张三", "13800138000", "￥12,345.67"], default_source="x").demand_amount == 1_234_567


def test_excel_numbers_become_fen_exactly(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", 13800138000, None, None, 12345.67], ["李四", 13900139000, None, None, 0.1]])
    service.import_file(path)
    amounts = sorted(session.scalars(select(Customer.demand_amount)))
    assert amounts == [10, 1_234_567]


@pytest.mark.parametrize(("value", "message"), [
    ("12.345", "最多保留两位小数"), (-5, "不能为负数"), ("abc", "格式不正确"), (200_000_000, "超出范围"),
    (Decimal("1e400"), "超出范围"),
])
def test_bad_amounts_are_refused(value, message):
    with pytest.raises(ValidationFailed, match=message):
        rows.parse_amount(value, in_wan=False)


def test_amount_in_wan_with_more_than_six_decimals_is_refused():
    with pytest.raises(ValidationFailed, match="两位小数"):
        rows.parse_amount("1.0000001", in_wan=True)


@pytest.mark.parametrize(("value", "months"), [("12", 12), ("24个月", 24), ("3年", 36), (36, 36), ("１２期", 12)])
def test_terms_in_months_or_years(value, months):
    assert rows.parse_term(value) == months


def test_id_number_stored_as_an_excel_number_gets_a_clear_message():
    header = headers.match_headers(["姓名", "身份证号"])
    errors = rows.parse_row(header, 2, ["张三", 110105194912310020.0], default_source="x")
    assert "存成了数字" in errors[0]


def test_gb18030_csv_is_read(session, tmp_path):
    path = csv_file(tmp_path / "gbk.csv", [["张三", "13800138000", "", "广州"]], encoding="gb18030")
    service.import_file(path)
    assert session.scalar(select(Customer.region)) == "广州"


def test_utf8_csv_without_bom_is_read(session, tmp_path):
    path = csv_file(tmp_path / "u.csv", [["张三", "13800138000", "", "深圳"]], encoding="utf-8")
    service.import_file(path)
    assert session.scalar(select(Customer.region)) == "深圳"


def test_not_a_spreadsheet_fails_with_a_clear_message(session, tmp_path):
    path = tmp_path / "photo.xlsx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    result = service.import_file(path)
    assert result.status == "failed" and "不是表格" in result.message


def test_a_broken_xlsx_fails_with_a_clear_message(session, tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"not really a zip" * 10)
    result = service.import_file(path)
    assert result.status == "failed" and "不是有效的 Excel" in result.message


def test_a_broken_legacy_xls_is_refused_with_advice(session, tmp_path):
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    result = service.import_file(path)
    assert result.status == "failed" and "另存为 .xlsx" in result.message


def test_an_empty_file_fails(session, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = service.import_file(path)
    assert result.status == "failed" and "空的" in result.message


def test_a_header_without_data_rows_fails(session, tmp_path):
    result = service.import_file(csv_file(tmp_path / "h.csv", []))
    assert result.status == "failed" and "没有数据行" in result.message


def test_wrong_headers_say_what_is_missing_and_what_was_found(session, tmp_path):
    path = csv_file(tmp_path / "w.csv", [["a", "b"]], header=["客户名", "微信号", "金额"])
    result = service.import_file(path)
    assert result.status == "failed"
    assert "缺少必需的列" in result.message and "手机号或身份证号" in result.message
    assert "文件中的列：客户名、微信号、金额" in result.message
    job = select(ImportJob.message).where(ImportJob.id == result.job_id)
    assert "缺少必需的列" in session.scalar(job)


def test_find_header_names_the_missing_name_column():
    with pytest.raises(ImportHeadersInvalid, match="姓名"):
        headers.find_header([(1, ["手机号", "城市"])])


def test_a_file_of_garbage_rows_finishes_with_every_row_in_the_report(session, tmp_path, import_dir):
    path = tmp_path / "garbage.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("姓名,手机号\n")
        for i in range(3000):
            fh.write(f"x{i},{i}\n")
    result = service.import_file(path, batch_size=400)
    assert result.status == "done"
    assert (result.counts["errors"], result.counts["created"]) == (3000, 0)
    assert len(result.sample) <= 20  # only a bounded sample is kept in memory
    wb = load_workbook(result.report, read_only=True)
    assert wb["问题行"].max_row == 3001
    assert Path(result.report).parent == import_dir


def test_report_lists_row_number_masked_values_and_the_chinese_message(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000", valid_id(1)], ["坏号", "1380013800", valid_id(2)],
                                      ["张三", "13800138000"]])
    result = service.import_file(path)
    wb = load_workbook(result.report)
    lines = list(wb["问题行"].iter_rows(values_only=True))
    assert lines[0][:4] == ("行号", "类型", "问题说明", "姓名")
    bad = next(line for line in lines if line[0] == 3)
    assert bad[1] == "错误" and "手机号格式不正确" in bad[2]
    assert "1380013800" not in str(bad) and valid_id(2) not in str(bad)
    assert bad[5] == pii.mask_id_number(valid_id(2))
    dup = next(line for line in lines if line[0] == 4)
    assert dup[1] == "文件内重复" and dup[4] == "138****8000"
    summary = dict(wb["汇总"].iter_rows(values_only=True))
    assert summary["新建客户"] == 1 and summary["错误行"] == 1


def test_report_cells_are_never_formulas(session, tmp_path):
    path = csv_file(tmp_path / "f.csv", [["张三", "1", "", "=cmd|' /C calc'!A0"]])
    result = service.import_file(path)
    cell = load_workbook(result.report)["问题行"]["G2"]
    assert (cell.value, cell.data_type) == ("=cmd|' /C calc'!A0", "s")


def test_no_report_when_every_row_was_imported(session, tmp_path):
    result = service.import_file(xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"]]))
    assert result.report is None


def test_unknown_customer_type_and_grade_are_row_errors(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000", None, None, None, None, "火箭贷"]])
    result = service.import_file(path)
    assert result.counts["errors"] == 1 and "未知的客户类型" in result.sample[0].message
    header = headers.match_headers(["姓名", "手机号", "客户等级"])
    assert "未知的客户等级" in rows.parse_row(header, 2, ["张三", "13800138000", "Z"], default_source="x")[0]
