"""`scrm leads import`: one JSON object with --json, a Chinese message and a non-zero exit for a broken file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from core.cli import main
from core.settings import reset_settings_cache
from tests.factories import make_org, make_staff
from tests.import_support import csv_file, xlsx


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


def run(*args: str):
    return CliRunner().invoke(main, ["leads", "import", *args], catch_exceptions=False)


def test_json_output_is_one_object_with_the_counters(session, tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["张三", "13800138000"], ["坏", "1"], ["张三", "13800138000"]])
    result = run(str(path), "--json", "--source", "抖音")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {"created", "duplicates_in_file", "duplicates_existing", "collisions", "errors", "report",
            "job_id"} <= set(body)
    assert (body["created"], body["duplicates_in_file"], body["errors"]) == (1, 1, 1)
    assert body["report"].endswith(".xlsx")
    assert result.stderr == ""  # no progress bar with --json


def test_without_json_a_summary_in_chinese_and_a_progress_bar_on_stderr(session, tmp_path):
    result = run(str(csv_file(tmp_path / "a.csv", [["张三", "13800138000"]])))
    assert result.exit_code == 0
    assert "导入完成" in result.stdout and "新建 1" in result.stdout
    assert "行" in result.stderr


def test_broken_file_exits_non_zero_with_a_chinese_message(session, tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\x00\x01\x02garbage")
    result = run(str(path), "--json")
    assert result.exit_code != 0
    assert "导入失败" in result.stderr and "不是表格" in result.stderr
    assert json.loads(result.stdout)["status"] == "failed"


def test_missing_file_exits_non_zero(session, tmp_path):
    result = run(str(tmp_path / "nope.xlsx"))
    assert result.exit_code != 0 and "文件不存在" in result.stderr


def test_wrong_headers_exit_non_zero_naming_the_columns(session, tmp_path):
    result = run(str(csv_file(tmp_path / "w.csv", [["a"]], header=["微信号"])))
    assert result.exit_code == 1 and "缺少必需的列" in result.stderr and "微信号" in result.stderr


def test_by_names_the_importer(session, tmp_path):
    org = make_org(session)
    make_staff(session, role="manager", department=org["company"], username="boss")
    result = run(str(csv_file(tmp_path / "a.csv", [["张三", "13800138000"]])), "--by", "boss", "--json")
    assert result.exit_code == 0, result.output
    assert run(str(tmp_path / "a.csv"), "--by", "nobody").exit_code != 0


def test_database_down_is_a_clear_message_not_a_traceback(session, tmp_path):
    """PostgreSQL stopped or restarting: the command says so at once and exits 1; nothing is imported."""
    from core import db

    dead = db.make_engine("postgresql+psycopg://postgres@127.0.0.1:1/scrm_down?connect_timeout=2")
    before = db.get_session_factory()
    db.set_session_factory(db.sessionmaker(bind=dead, expire_on_commit=False))
    try:
        result = CliRunner().invoke(main, ["leads", "import", str(csv_file(tmp_path / "a.csv", [["张三", "13800138000"]]))])
    finally:
        db.set_session_factory(before)
        dead.dispose()
    assert result.exit_code == 1
    assert "数据库暂时不可用" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
