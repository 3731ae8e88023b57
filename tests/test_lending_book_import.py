"""Loan-book import (存量贷款导入): good and bad loans in one file (.csv and .xlsx); every bad row reported with its
row number and reason, a loan with a broken schedule row refused whole, the good ones kept beside them, customers
matched through the CRM's dedup, paid amounts posted so the balances, buckets and overdue days are right, and a
second import of the same book duplicating nothing."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from core.errors import PermissionDenied
from crm.importer.errors import ImportFileInvalid, ImportHeadersInvalid
from crm.models import Customer
from lending.models import Application, Loan, Repayment, ScheduleVersion
from lending.servicing import book_import, state
from tests.factories import make_customer
from tests.lending_flow_support import V, make_world
from tests.servicing_support import on

HEADER = ["贷款编号", "姓名", "手机号", "身份证号", "产品", "本金（元）", "期数", "年利率", "放款日期",
          "期次", "到期日", "应还本金", "应还利息", "应还费用", "已还金额", "还款日期"]


def _book(code: str) -> list[list[object]]:
    return [
        ["存量贷款导入模板"],  # a title row above the header
        HEADER,
        # L001: its own schedule, two bills paid on time, the third (2026-11-01) unpaid: 22 days overdue today
        ["L001", "王五", "13900001111", "", code, "3,000", 3, "12%", "2026-08-01", 1, "2026-09-01", "1000", "30", "0",
         "1030", "2026-09-01"],
        ["L001", "", "", "", "", "", "", "", "", 2, "2026-10-01", "1000", "20", "0", "1020", "2026-10-01"],
        ["L001", "", "", "", "", "", "", "", "", 3, "2026/11/1", "1000", "10", "0", "", ""],
        # L002: terms only (the product generates the schedule); the borrower is an existing customer by phone
        ["L002", "赵六", "13900002222", "", code, "12000", 12, "", "2026-10-15", "", "", "", "", "", "", ""],
        # L003: schedule row 2 due before row 1: refused as a whole, row 1 is not imported either
        ["L003", "钱七", "13900003333", "", code, "2000", 2, "", "2026-08-01", 1, "2026-09-01", "1000", "10", "0",
         "", ""],
        ["L003", "", "", "", "", "", "", "", "", 2, "2026-08-15", "1000", "5", "0", "", ""],
        # a row with no loan number
        ["", "孙八", "13900004444", "", code, "1000", 1, "", "2026-08-01", "", "", "", "", "", "", ""],
        # L004: an amount that is no amount
        ["L004", "周九", "13900005555", "", code, "五千", 6, "", "2026-08-01", "", "", "", "", "", "", ""],
        # L005: a product nobody has
        ["L005", "吴十", "13900006666", "", "没有这个产品", "5000", 6, "", "2026-08-01", "", "", "", "", "", "", ""],
        # L006: paid in the future
        ["L006", "郑一", "13900007777", "", code, "5000", 6, "", "2026-08-01", "", "", "", "", "", "100",
         "2027-01-01"],
    ]


def _write(path: Path, rows: list[list[object]]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerows(rows)
    else:
        wb = Workbook()
        ws = wb.active
        for row in rows:
            ws.append(row)
        wb.save(path)
    return path


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_mixed_book_imports_the_good_loans_and_reports_every_bad_row(session, tmp_path, suffix):
    on(date(2026, 11, 23))
    w = make_world(session, penalty_rate=Decimal("0.0005"))
    existing = make_customer(session, phone="13900002222", name="赵六")
    customers_before = _count(session, Customer)
    path = _write(tmp_path / f"book{suffix}", _book(w.product.code))

    report = book_import.import_book(session, path, viewer=V(w.finance))

    status = {r.loan_number: r.status for r in report.loans}
    assert status == {"L001": "created", "L002": "created", "L003": "refused", "L004": "refused",
                      "L005": "refused", "L006": "refused"}
    errors = {(e.row, e.loan_number): e.reason for e in report.errors}
    assert "到期日 2026-08-15 须晚于上一期到期日 2026-09-01" in errors[(8, "L003")]
    assert errors[(9, None)] == "缺少贷款编号"
    assert "本金格式不正确" in errors[(10, "L004")]
    assert "找不到产品“没有这个产品”" in errors[(11, "L005")]
    assert "晚于今天" in errors[(12, "L006")]
    assert _count(session, Loan) == 2  # nothing of L003 (its good row 1 included), L004, L005, L006

    l1 = session.get(Loan, next(r.loan_id for r in report.loans if r.loan_number == "L001"))
    rows = state.installments(session, l1.id)
    assert [(r.number, r.due_date, r.principal_amount, r.interest_amount) for r in rows] == [
        (1, date(2026, 9, 1), 100_000, 3_000), (2, date(2026, 10, 1), 100_000, 2_000),
        (3, date(2026, 11, 1), 100_000, 1_000)]  # kept as given
    assert [r.status for r in rows] == ["paid", "paid", "overdue"]
    assert (l1.status, l1.overdue_days, l1.bucket) == ("active", 22, "M1")
    assert rows[2].penalty_amount == 100_000 * 5 * 22 // 10_000  # 0.05% a day on the overdue principal, 22 days
    assert sum(r.amount for r in session.scalars(select(Repayment).where(Repayment.loan_id == l1.id))) == 205_000
    assert session.scalar(select(ScheduleVersion.version).where(ScheduleVersion.loan_id == l1.id)) == 1

    l2 = session.get(Loan, next(r.loan_id for r in report.loans if r.loan_number == "L002"))
    assert l2.customer_id == existing.id  # matched by phone, not a twin
    assert len(state.installments(session, l2.id)) == 12  # generated by the product
    assert sum(r.principal_amount for r in state.installments(session, l2.id)) == 1_200_000
    assert (l2.status, l2.overdue_days, l2.bucket) == ("active", 8, "M1")  # the 2026-11-15 bill is unpaid
    assert _count(session, Customer) == customers_before + 1  # 王五 only: the refused loans create nobody

    again = book_import.import_book(session, path, viewer=V(w.finance))
    assert {r.loan_number: r.status for r in again.loans if r.status != "refused"} == {"L001": "skipped",
                                                                                       "L002": "skipped"}
    assert _count(session, Loan) == 2
    assert _count(session, Application) == 2


def test_a_paid_amount_above_what_was_due_refuses_the_loan_with_the_reason(session, tmp_path):
    on(date(2026, 11, 23))
    w = make_world(session)
    path = _write(tmp_path / "b.csv", [HEADER, [
        "X1", "王五", "13900001111", "", w.product.name, "2000", 2, "", "2026-08-01", 1, "2026-09-01", "1000", "10", "0",
        "5000", "2026-09-01"], ["X1", "", "", "", "", "", "", "", "", 2, "2026-10-01", "1000", "5", "0", "", ""]])
    report = book_import.import_book(session, path, viewer=V(w.finance))
    assert report.loans[0].status == "refused" and "已还金额无法入账" in report.loans[0].reason
    assert report.errors[0].row == 2
    assert _count(session, Loan) == 0 and _count(session, Repayment) == 0


def test_principal_not_adding_up_is_refused(session, tmp_path):
    on(date(2026, 11, 23))
    w = make_world(session)
    path = _write(tmp_path / "b.csv", [HEADER, [
        "X2", "王五", "13900001111", "", w.product.code, "3000", "", "", "2026-08-01", 1, "2026-09-01", "1000", "0",
        "0", "", ""], ["X2", "", "", "", "", "", "", "", "", 2, "2026-10-01", "1000", "0", "0", "", ""]])
    report = book_import.import_book(session, path, viewer=V(w.finance))
    assert "不等于本金" in report.loans[0].reason
    assert _count(session, Loan) == 0


def test_a_file_without_the_columns_or_from_a_salesperson_is_refused(session, tmp_path):
    on(date(2026, 11, 23))
    w = make_world(session)
    with pytest.raises(ImportHeadersInvalid, match="贷款编号"):
        book_import.import_book(session, _write(tmp_path / "h.csv", [["姓名", "手机号"], ["王五", "13900001111"]]),
                                viewer=V(w.finance))
    bad = tmp_path / "x.xlsx"
    bad.write_bytes(b"PK\x03\x04not really a zip")
    with pytest.raises(ImportFileInvalid):
        book_import.import_book(session, bad, viewer=V(w.finance))
    with pytest.raises(PermissionDenied):
        book_import.import_book(session, tmp_path / "h.csv", viewer=V(w.sales))
    assert _count(session, Loan) == 0


def test_the_cli_imports_and_prints_the_report_in_chinese_or_json(session, tmp_path):
    import json

    from click.testing import CliRunner

    from core.cli import main

    on(date(2026, 11, 23))
    w = make_world(session)
    path = _write(tmp_path / "book.csv", _book(w.product.code))
    runner = CliRunner()
    first = runner.invoke(main, ["loan", "import", str(path), "--by", w.finance.username], catch_exceptions=False)
    assert first.exit_code == 1  # some loans were refused
    assert "新建 2 笔" in first.stdout and "第 8 行（L003）：到期日 2026-08-15 须晚于上一期到期日" in first.stdout
    again = runner.invoke(main, ["loan", "import", str(path), "--json"], catch_exceptions=False)
    body = json.loads(again.stdout)
    assert (body["created"], body["skipped"], body["refused"]) == (0, 2, 4)
    assert {"row": 9, "loan_number": None, "reason": "缺少贷款编号"} in body["errors"]
    missing = runner.invoke(main, ["loan", "import", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "文件不存在" in missing.stderr
    assert _count(session, Loan) == 2


def test_the_console_page_under_loans_imports_and_shows_the_bad_rows(session, tmp_path, monkeypatch):
    from core.settings import reset_settings_cache
    from tests.test_admin_support import console_client, log_in

    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    on(date(2026, 11, 23))
    w = make_world(session)
    content = _write(tmp_path / "book.xlsx", _book(w.product.code)).read_bytes()
    client = console_client()
    csrf = log_in(client, session, w.finance)
    page = client.get("/console/lending/book-import")
    assert page.status_code == 200 and "存量贷款导入" in page.text and "贷款编号" in page.text
    no_csrf = client.post("/console/lending/book-import", files={"file": ("book.xlsx", content, "application/x")})
    assert no_csrf.status_code == 403 and _count(session, Loan) == 0
    done = client.post("/console/lending/book-import", data={"csrf_token": csrf},
                       files={"file": ("book.xlsx", content, "application/octet-stream")})
    assert done.status_code == 200
    assert "新建 2 笔" in done.text and "未导入 4 笔" in done.text
    assert "缺少贷款编号" in done.text and "找不到产品“没有这个产品”" in done.text
    assert _count(session, Loan) == 2
    assert not list((tmp_path / "imports" / "uploads").iterdir())  # the upload is not kept
    imported = session.scalar(select(Loan).order_by(Loan.id))
    loan_page = client.get(f"/console/lending/loans/{imported.id}")
    assert loan_page.status_code == 200 and "逾期" in loan_page.text
    app_page = client.get(f"/console/lending/applications/{imported.application_id}")
    assert app_page.status_code == 200 and "存量贷款导入" in app_page.text
    bad = client.post("/console/lending/book-import", data={"csrf_token": csrf},
                      files={"file": ("book.pdf", b"%PDF", "application/pdf")})
    assert bad.status_code == 422 and "只支持" in bad.text
    sales = console_client()
    log_in(sales, session, w.sales)
    assert sales.get("/console/lending/book-import").status_code == 403
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()
