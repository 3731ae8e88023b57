"""Console and API of the lead import: upload (CSRF, size, type), the job page and its progress,
the report download, role gating and data scope."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from core.settings import reset_settings_cache
from crm import auth_service
from crm.importer import service, uploads
from crm.models import Customer, ImportJob
from tests.factories import make_org, make_staff
from tests.test_admin_support import bearer, console_client, log_in


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


@pytest.fixture
def org(session):
    return make_org(session)


@pytest.fixture
def manager(session, org):
    return make_staff(session, role="manager", department=org["company"], display_name="经理")


def _xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    wb.active.append(["姓名", "手机号"])
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _upload(client, csrf: str, content: bytes, name: str = "leads.xlsx", **fields: str):
    return client.post("/console/imports", data={"csrf_token": csrf, **fields},
                       files={"file": (name, content, "application/octet-stream")})


def test_manager_uploads_and_the_job_page_shows_the_result(session, manager, task_runner, tmp_path):
    client = console_client()
    csrf = log_in(client, session, manager)
    response = _upload(client, csrf, _xlsx_bytes([["张三", "13800138000"], ["坏", "123"]]), source="抖音")
    assert response.status_code == 303
    job_url = response.headers["location"]
    assert task_runner.drain() == [service.TASK]
    page = client.get(job_url).text
    assert "已完成" in page and "下载问题行报告" in page
    progress = client.get(f"{job_url}/progress").json()
    assert (progress["status"], progress["created"], progress["errors"], progress["finished"]) == ("done", 1, 1, True)
    report = client.get(f"{job_url}/report")
    assert report.status_code == 200
    sheet = load_workbook(io.BytesIO(report.content))["问题行"]
    assert sheet["A2"].value == 3 and "123" not in str(sheet["E2"].value)
    assert session.scalar(select(Customer.source)) == "抖音"
    assert not list((tmp_path / "imports" / "uploads").iterdir())  # the plaintext upload is gone


def test_the_request_does_not_wait_for_the_import(session, manager, task_runner):
    client = console_client()
    csrf = log_in(client, session, manager)
    response = _upload(client, csrf, _xlsx_bytes([["张三", "13800138000"]]))
    page = client.get(response.headers["location"]).text
    assert "排队中" in page and 'http-equiv="refresh"' in page
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_upload_without_csrf_is_refused(session, manager):
    client = console_client()
    log_in(client, session, manager)
    response = client.post("/console/imports", files={"file": ("a.xlsx", _xlsx_bytes([]), "application/octet-stream")})
    assert response.status_code == 403
    assert session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_wrong_extension_is_refused_on_the_form(session, manager):
    client = console_client()
    csrf = log_in(client, session, manager)
    response = _upload(client, csrf, b"hello", name="leads.pdf")
    assert response.status_code == 422 and "只支持 .xlsx、.xls、.ods 和 .csv" in response.text


def test_xlsx_name_with_other_content_is_refused(session, manager):
    client = console_client()
    csrf = log_in(client, session, manager)
    response = _upload(client, csrf, b"%PDF-1.4 not a workbook", name="leads.xlsx")
    assert response.status_code == 422 and "不是 Excel 文件" in response.text


def test_oversized_upload_is_refused(session, manager, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_BYTES", 1000)
    client = console_client()
    csrf = log_in(client, session, manager)
    response = _upload(client, csrf, b"a" * 5000, name="big.csv")
    assert response.status_code in (413, 422) and "上限" in response.text


def test_sales_cannot_open_the_import_page(session, org):
    sales = make_staff(session, department=org["team_a"])
    client = console_client()
    log_in(client, session, sales)
    assert client.get("/console/imports").status_code == 403


def test_supervisor_does_not_see_another_teams_job(session, org, task_runner):
    a = make_staff(session, role="supervisor", department=org["team_a"])
    b = make_staff(session, role="supervisor", department=org["team_b"])
    client = console_client()
    csrf = log_in(client, session, a)
    job_url = _upload(client, csrf, _xlsx_bytes([["张三", "13800138000"]])).headers["location"]
    other = console_client()
    log_in(other, session, b)
    assert other.get(job_url).status_code == 404
    assert other.get(f"{job_url}/report").status_code == 404
    assert "还没有导入记录" in other.get("/console/imports").text


def test_api_upload_then_poll(session, manager, task_runner):
    token = auth_service.issue_api_token(session, manager.id, "导入", 30)[0]
    client = console_client()
    response = client.post("/api/v1/imports", headers=bearer(token), data={"source": "API"},
                           files={"file": ("a.csv", "姓名,手机号\n张三,13800138000\n".encode(), "text/csv")})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    task_runner.drain()
    body = client.get(f"/api/v1/imports/{job_id}", headers=bearer(token)).json()
    assert (body["status"], body["created"], body["report_url"]) == ("done", 1, None)


def test_api_refuses_sales(session, org):
    sales = make_staff(session, department=org["team_a"])
    token = auth_service.issue_api_token(session, sales.id, "导入", 30)[0]
    response = console_client().post("/api/v1/imports", headers=bearer(token),
                                     files={"file": ("a.csv", b"x", "text/csv")})
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_a_failed_file_shows_why_on_the_job_page(session, manager, task_runner):
    client = console_client()
    csrf = log_in(client, session, manager)
    job_url = _upload(client, csrf, "微信号,备注\nabc,x\n".encode(), name="w.csv").headers["location"]
    task_runner.drain()
    page = client.get(job_url).text
    assert "失败" in page and "缺少必需的列" in page and "微信号" in page


def _interrupted_upload(session, client, csrf, task_runner, monkeypatch):
    """An upload whose run died (the process killed: the job left running, the file left behind)."""
    from crm.importer import writer

    def killed(*_a, **_k):
        raise KeyboardInterrupt

    job_url = _upload(client, csrf, _xlsx_bytes([["张三", "13800138000"]])).headers["location"]
    real = writer.insert_new
    monkeypatch.setattr(writer, "insert_new", killed)
    with pytest.raises(KeyboardInterrupt):
        task_runner.drain()
    monkeypatch.setattr(writer, "insert_new", real)
    return job_url


def test_an_interrupted_job_shows_as_failed_and_is_rerun_from_its_page(session, manager, task_runner, monkeypatch):
    from datetime import timedelta

    from core import clock

    client = console_client()
    csrf = log_in(client, session, manager)
    job_url = _interrupted_upload(session, client, csrf, task_runner, monkeypatch)
    assert client.get(f"{job_url}/progress").json()["status"] == "running"
    clock.freeze(clock.now() + timedelta(minutes=20))
    progress = client.get(f"{job_url}/progress").json()
    assert (progress["status"], progress["finished"], progress["can_rerun"]) == ("failed", True, True)
    page = client.get(job_url).text
    assert "导入中断" in page and "重新导入同一文件" in page
    assert "失败" in client.get("/console/imports").text
    response = client.post(f"{job_url}/rerun", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] != job_url
    task_runner.drain()
    done = client.get(f"{response.headers['location']}/progress").json()
    assert (done["status"], done["created"]) == ("done", 1)
    assert client.post(f"{job_url}/rerun", data={"csrf_token": csrf}).status_code == 409  # its file is gone now


def test_a_job_the_sweep_re_ran_links_to_its_successor_and_is_not_offered_again(session, manager, task_runner,
                                                                                monkeypatch):
    from datetime import timedelta

    from core import clock
    from crm import import_tasks

    client = console_client()
    csrf = log_in(client, session, manager)
    job_url = _interrupted_upload(session, client, csrf, task_runner, monkeypatch)
    clock.freeze(clock.now() + timedelta(minutes=20))
    assert import_tasks.expire_import_jobs()["resumed"] == 1
    task_runner.drain()
    page = client.get(job_url).text
    assert "已自动重新导入（任务 #" in page and 'id="job-rerun-by"' in page and "已完成" in page
    assert f'action="{job_url}/rerun"' not in page  # the button is gone
    assert client.get(f"{job_url}/progress").json()["can_rerun"] is False
    refused = client.post(f"{job_url}/rerun", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "该文件已重新导入" in refused.text


def test_api_reruns_an_interrupted_job(session, manager, task_runner, monkeypatch):
    from datetime import timedelta

    from core import clock

    token = auth_service.issue_api_token(session, manager.id, "导入", 30)[0]
    client = console_client()
    csrf = log_in(client, session, manager)
    job_id = int(_interrupted_upload(session, client, csrf, task_runner, monkeypatch).rsplit("/", 1)[1])
    early = client.post(f"/api/v1/imports/{job_id}/rerun", headers=bearer(token))
    assert early.status_code == 409 and early.json()["code"] == "import_not_rerunnable"  # still running
    clock.freeze(clock.now() + timedelta(minutes=20))
    assert client.get(f"/api/v1/imports/{job_id}", headers=bearer(token)).json()["status"] == "failed"
    response = client.post(f"/api/v1/imports/{job_id}/rerun", headers=bearer(token))
    assert response.status_code == 202 and response.json()["status"] == "queued"
