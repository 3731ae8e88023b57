"""Imports of legacy Excel (.xls) and OpenDocument (.ods) through python-calamine (issue 17), and the
limits that refuse spreadsheet bombs before any reader opens them (issue 20.3): the archive's
directory (sizes, ratio), the grid a grid reader would materialise, the rows of one import."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import pii
from core.settings import reset_settings_cache
from crm.importer import limits, service, sources
from crm.importer.errors import ImportFileInvalid
from crm.models import Customer, ImportJob
from tests.factories import make_org, make_staff
from tests.import_support import csv_file, ods, ods_cell, valid_id, xls, xlsx, xlsx_bomb
from tests.test_admin_import import _upload
from tests.test_admin_support import console_client, log_in

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield tmp_path / "imports"
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


def _customers(session) -> int:
    return session.scalar(select(func.count()).select_from(Customer))


def _by_phone(session, phone: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.phone_index == pii.blind_index(pii.PHONE, phone)))


# --- .xls and .ods read like .xlsx -------------------------------------------------------------

HEADER = ["客户姓名", "手机号码", "身份证号", "城市", "贷款金额（万元）", "期限"]
ROWS = [["张三", 13812340001, valid_id(1), "上海", 5, "3年"],
        ["李四", "+86 139 1234 0002", None, "北京", 12.5, 24],
        ["王五", "1381234", None, None, None, None]]  # a bad phone: a report line, as for .xlsx


@pytest.mark.parametrize("write", [xls, ods, xlsx], ids=["xls", "ods", "xlsx"])
def test_xls_and_ods_import_like_xlsx(session, tmp_path, write):
    path = write(tmp_path / f"leads.{write.__name__}", ROWS, header=HEADER)
    result = service.import_file(path)
    assert result.status == "done", result.message
    assert (result.counts["created"], result.counts["errors"]) == (2, 1)
    zhang, li = _by_phone(session, "13812340001"), _by_phone(session, "13912340002")
    assert zhang.name == "张三" and zhang.region == "上海" and zhang.demand_amount == 5_000_000  # 5 万元 in fen
    assert zhang.id_number_index == pii.blind_index(pii.ID_NUMBER, valid_id(1))
    assert li.demand_amount == 12_500_000 and li.demand_term_months == 24
    assert [p.row_number for p in result.sample] == [4]
    assert "手机号" in result.sample[0].message


def test_an_xls_with_a_title_row_and_a_blank_row_numbers_rows_as_excel_does(session, tmp_path):
    path = xls(tmp_path / "t.xls", [["姓名", "手机号"], [None, None], ["张三", "1381234"]], header=["客户导入"])
    result = service.import_file(path)
    assert result.counts["errors"] == 1 and result.sample[0].row_number == 4


def test_a_broken_xls_fails_with_a_clear_message(session, tmp_path):
    path = tmp_path / "broken.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    result = service.import_file(path)
    assert result.status == "failed" and ".xls" in result.message and re.search(r"[\u4e00-\u9fff]", result.message)


# --- bombs ------------------------------------------------------------------------------------

def test_xlsx_whose_shared_strings_expand_hugely_is_refused_before_it_is_opened(session, tmp_path, monkeypatch):
    path = xlsx_bomb(tmp_path / "bomb.xlsx")
    assert path.stat().st_size < 1024 * 1024
    opened = []
    import openpyxl

    real = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: opened.append(a) or real(*a, **k))
    with pytest.raises(limits.ImportFileTooLarge) as refused:
        sources.inspect(path)
    assert not opened  # refused from the archive's directory alone
    assert "sharedStrings.xml" in refused.value.message and "拆分" in refused.value.message
    result = service.import_file(path)
    assert result.status == "failed" and "解压后过大" in result.message
    assert _customers(session) == 0


def test_a_part_compressed_far_beyond_any_spreadsheet_is_refused(tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"]])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/media/blob.bin", b"\x00" * (8 * 1024 * 1024))  # 8 MiB of zeros: ~1000x
    with pytest.raises(limits.ImportFileTooLarge, match="压缩比异常"):
        sources.inspect(path)


def test_ods_with_repeated_rows_and_columns_is_refused_before_calamine(session, tmp_path):
    repeated = (f'<table:table-row table:number-rows-repeated="100000">{ods_cell("x", repeat=100)}'
                "</table:table-row>")
    path = ods(tmp_path / "bomb.ods", [], header=["姓名", "手机号"], raw_rows=repeated)
    assert path.stat().st_size < 2048
    result = service.import_file(path)
    assert result.status == "failed" and "表格范围过大（100,001 行 × 100 列）" in result.message
    assert _customers(session) == 0


def test_ods_whose_grid_is_huge_but_rows_few_is_refused(tmp_path):
    far = ('<table:table-row table:number-rows-repeated="1000"><table:table-cell/></table:table-row>'
           f'<table:table-row><table:table-cell table:number-columns-repeated="16000"/>{ods_cell("x")}'
           "</table:table-row>")
    path = ods(tmp_path / "far.ods", [["张三", "13800138000"]], header=["姓名", "手机号"], raw_rows=far)
    with pytest.raises(limits.ImportFileTooLarge, match="表格范围过大"):
        sources.inspect(path)


def test_ods_trailing_blank_rows_as_libreoffice_writes_them_are_fine(session, tmp_path):
    blank = ('<table:table-row table:number-rows-repeated="1048573">'
             '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>')
    path = ods(tmp_path / "lo.ods", [["张三", "13800138000"]], header=["姓名", "手机号"], raw_rows=blank)
    result = service.import_file(path)
    assert result.status == "done" and result.counts["created"] == 1


def test_sparse_xls_spanning_the_whole_sheet_is_refused(session, tmp_path):
    path = xls(tmp_path / "sparse.xls", [], header=["姓名", "手机号"])
    import xlwt

    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    ws.write(0, 0, "姓名")
    ws.write(65535, 255, "x")  # one cell at IV65536: a 65,536 x 256 grid in a 6 KB file
    wb.save(str(path))
    assert path.stat().st_size < 16 * 1024
    result = service.import_file(path)
    assert result.status == "failed" and "表格范围过大" in result.message


def test_an_xls_over_the_size_cap_is_refused(tmp_path, monkeypatch):
    path = xls(tmp_path / "a.xls", [["张三", "13800138000"]])
    monkeypatch.setattr(limits, "MAX_XLS_BYTES", 1024)
    with pytest.raises(limits.ImportFileTooLarge, match="MB 上限"):
        sources.inspect(path)


# --- the row cap ------------------------------------------------------------------------------

@pytest.fixture
def cap_five(monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_MAX_ROWS", "5")
    reset_settings_cache()
    yield 5
    monkeypatch.delenv("SCRM_IMPORT_MAX_ROWS")
    reset_settings_cache()


def _rows(n: int) -> list[list[object]]:
    return [[f"客户{i}", f"1380000{i:04d}"] for i in range(n)]


@pytest.mark.parametrize("write", [csv_file, xlsx, xls, ods], ids=["csv", "xlsx", "xls", "ods"])
def test_more_rows_than_the_cap_are_refused_before_any_is_imported(session, tmp_path, cap_five, write):
    path = write(tmp_path / f"many.{write.__name__.replace('_file', '')}", _rows(6), header=["姓名", "手机号"])
    result = service.import_file(path)
    assert result.status == "failed" and "超过单次导入上限 5 行" in result.message, result.message
    assert _customers(session) == 0
    ok = write(tmp_path / f"five.{write.__name__.replace('_file', '')}", _rows(5), header=["姓名", "手机号"])
    assert service.import_file(ok).counts["created"] == 5


def test_csv_whose_quoted_cells_span_lines_is_counted_by_rows_not_lines(session, tmp_path, cap_five):
    path = csv_file(tmp_path / "notes.csv", [[f"客户{i}", f"1380000{i:04d}", "第一行\n第二行\n第三行"] for i in range(5)],
                    header=["姓名", "手机号", "备注"])
    assert service.import_file(path).counts["created"] == 5


def test_an_xlsx_that_states_no_dimension_is_stopped_while_it_is_read(session, tmp_path, cap_five):
    path = xlsx(tmp_path / "nodim.xlsx", _rows(40), header=["姓名", "手机号"])
    with zipfile.ZipFile(path) as src:
        parts = {n: src.read(n) for n in src.namelist()}
    sheet, dropped = re.subn(rb'<dimension ref="[^"]*"\s*/>', b"", parts["xl/worksheets/sheet1.xml"])
    assert dropped == 1
    parts["xl/worksheets/sheet1.xml"] = sheet
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    result = service.import_file(path)
    assert result.status == "failed" and "超过单次导入上限 5 行" in result.message
    assert _customers(session) == 0  # the first batch had not been written yet


def _with_shared_strings(path: Path, count: int) -> Path:
    """``path`` (as openpyxl wrote it, inline strings) given a shared strings table of ``count`` distinct
    entries, declared as Excel declares it: what a large file saved by Excel carries."""
    with zipfile.ZipFile(path) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    ns = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    parts["xl/sharedStrings.xml"] = (b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="' + ns + b'">'
                                     + b"".join(f"<si><t>客户{i}号的一段备注文字</t></si>".encode() for i in range(count))
                                     + b"</sst>")
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
                     b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rIdSST" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                             b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


def test_inspecting_an_xlsx_does_not_load_its_shared_strings(tmp_path):
    """The row estimate is read from the sheet's <dimension>: inspecting a file with a large shared strings
    table (within the limits) costs next to nothing; through openpyxl it held every string in memory."""
    import tracemalloc

    path = _with_shared_strings(xlsx(tmp_path / "wide.xlsx", _rows(3), header=["姓名", "手机号"]), 150_000)
    tracemalloc.start()
    try:
        info = sources.inspect(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.kind == "xlsx" and info.estimated_rows == 4
    assert peak < 8 * 1024 * 1024, f"inspect peaked at {peak / 1024 / 1024:.1f} MiB"


@pytest.fixture
def manager_client(session):
    org = make_org(session)
    manager = make_staff(session, role="manager", department=org["company"], display_name="经理")
    client = console_client()
    return client, log_in(client, session, manager)


def test_the_import_page_shows_the_formats_and_the_row_cap(session, manager_client):
    client, _ = manager_client
    page = client.get("/console/imports")
    assert page.status_code == 200
    assert "单次最多 200,000 行数据" in page.text and ".xls" in page.text and ".ods" in page.text


# --- the console upload ------------------------------------------------------------------------

def test_console_upload_of_a_bomb_is_refused_on_the_form(session, manager_client, tmp_path):
    client, csrf = manager_client
    path = xlsx_bomb(tmp_path / "bomb.xlsx")
    response = _upload(client, csrf, path.read_bytes(), "名单.xlsx")
    assert response.status_code == 422 and "解压后过大" in response.text
    assert session.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert not list((tmp_path / "imports" / "uploads").glob("*"))  # the stored upload was removed


def test_console_upload_of_an_xls_is_imported(session, manager_client, tmp_path, task_runner):
    client, csrf = manager_client
    path = xls(tmp_path / "a.xls", [["张三", 13800138000]], header=["姓名", "手机号"])
    response = _upload(client, csrf, path.read_bytes(), "名单.xls")
    assert response.status_code == 303, response.text
    task_runner.drain()
    job = session.scalar(select(ImportJob).order_by(ImportJob.id.desc()))
    session.refresh(job)
    assert job.status == "done" and job.created == 1


# --- memory: the real `scrm leads import` on bombs, in a process of its own --------------------

@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    env = dict(os.environ)
    env.update(SCRM_DATABASE_URL=f"sqlite:///{folder}/cli.db", SCRM_REDIS_URL="", SCRM_IMPORT_DIR=str(folder / "imp"))
    subprocess.run([sys.executable, "-m", "core.cli", "db", "upgrade"], env=env, check=True, capture_output=True,
                   timeout=300, cwd=ROOT)
    return env


PEAK_RSS = """
import json, resource, sys
from core.cli import main
try:
    main(["leads", "import", sys.argv[1], "--json"])
except SystemExit:
    pass
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _cli_import(env: dict[str, str], path: Path) -> tuple[dict, int]:
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    out = done.stdout
    peak = int(re.search(r"PEAK_RSS_KB (\d+)", out).group(1))
    result = json.loads(out[out.index("{"):out.rindex("}") + 1])
    return result, peak


def test_scrm_leads_import_of_bombs_stays_small_in_memory(cli_env, tmp_path):
    """Each bomb, opened, would take a gigabyte or more (measured: 1.2 GB for the .ods, 1.0 GB for the
    .xls, several GB for the .xlsx); refused, the whole command stays near its usual size."""
    import xlwt

    sparse = tmp_path / "sparse.xls"
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    ws.write(0, 0, "姓名")
    ws.write(65535, 255, "x")
    wb.save(str(sparse))
    repeated = (f'<table:table-row table:number-rows-repeated="100000">{ods_cell("x", repeat=100)}'
                "</table:table-row>")
    bombs = [xlsx_bomb(tmp_path / "bomb.xlsx"), sparse,
             ods(tmp_path / "bomb.ods", [], header=["姓名", "手机号"], raw_rows=repeated)]
    baseline, base_peak = _cli_import(cli_env, csv_file(tmp_path / "ok.csv", [["张三", "13800138000"]]))
    assert baseline["status"] == "done"
    for bomb in bombs:
        result, peak = _cli_import(cli_env, bomb)
        assert result["status"] == "failed" and re.search(r"[\u4e00-\u9fff]", result["message"]), result
        assert peak < base_peak + 150 * 1024, (bomb.name, peak, base_peak)  # KiB: within 150 MiB of a tiny import


def test_a_sheet_stated_as_wide_as_excel_allows_is_read_to_a_bounded_width(session, tmp_path):
    path = xlsx(tmp_path / "wide.xlsx", [["张三", "13800138000"]], header=["姓名", "手机号"])
    with zipfile.ZipFile(path) as src:
        parts = {n: src.read(n) for n in src.namelist()}
    parts["xl/worksheets/sheet1.xml"] = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:XFD2"/>',
                                               parts["xl/worksheets/sheet1.xml"])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    info = sources.inspect(path)
    rows = list(sources.iter_rows(path, info))
    assert [len(cells) for _, cells in rows] == [limits.MAX_COLUMNS] * 2
    assert service.import_file(path).counts["created"] == 1


def test_grid_of_an_xls_is_measured_from_its_cell_records(tmp_path):
    path = xls(tmp_path / "a.xls", [["张三", 13800138000, None, Decimal("1.5")]], header=["姓名", "手机号", "x", "y"])
    grid = limits.check_xls(path)
    assert (grid.rows, grid.height, grid.width) == (2, 2, 4)


def test_a_file_that_is_no_spreadsheet_with_an_xls_name_is_refused_at_upload(tmp_path):
    from io import BytesIO

    from crm.importer import uploads

    with pytest.raises(ImportFileInvalid, match=".xls"):
        uploads.store(BytesIO(b"hello"), "a.xls")
