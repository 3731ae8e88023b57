"""Background Excel exports (导出任务): the loan list exported through the outbox task, streamed through
core.exports, with the list's own rows; only the requester can see or download it; a real browser follows the
progress page to the download."""

from __future__ import annotations

import io
import os
from urllib.parse import urlparse

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from analytics import export_jobs
from analytics.models import ExportJob
from core.db import unit_of_work
from crm.models import Customer
from lending.contracts import mask_name
from tests.analytics_support import seed
from tests.browser_harness import chromium_page, live_server, require_chromium
from tests.factories import PASSWORD
from tests.lending_flow_support import V
from tests.test_admin_support import console_client, log_in
from tests.test_exports_formula_injection import assert_no_formula_in_xlsx

SHOTS = os.environ.get("SCRM_SCREENSHOT_DIR", "/tmp/analytics-shots")


def _sheet_rows(data: bytes) -> list[tuple]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    return list(book.worksheets[0].iter_rows(values_only=True))


def test_an_export_job_writes_the_lists_rows_for_its_requester_only(committed, task_runner):
    with unit_of_work() as session:
        s = seed(session)  # one loan, of 李四 (owned by sales)
        # a name that a spreadsheet would run as a formula: it must stay text
        session.execute(update(Customer).where(Customer.id == s.loan.customer_id).values(name="=HYPERLINK(1)"))
        manager, far, loan_id = s.w.manager, s.far, s.loan.id
        job = export_jobs.request(session, V(manager), "loans", {"status": "active"})
        job_id = job.id
    task_runner.drain()  # the outbox sent analytics.run_export after the commit
    with unit_of_work() as session:
        job = session.get(ExportJob, job_id)
        assert (job.status, job.total_rows, job.done_rows) == ("done", 1, 1)
        session.expunge(job)
    client = console_client()
    with unit_of_work() as session:
        log_in(client, session, manager)
    assert "下载 Excel" in client.get(f"/console/exports/{job_id}").text
    file = client.get(f"/console/exports/{job_id}/file")
    assert file.status_code == 200
    rows = _sheet_rows(file.content)
    assert rows[0][0] == "合同编号" and len(rows) == 2
    assert rows[1][1] == mask_name("=HYPERLINK(1)") and isinstance(rows[1][2], (int, float))  # masked, written as text
    assert_no_formula_in_xlsx(file.content)
    # a second delivery of the task does nothing; someone else is told the job does not exist
    assert export_jobs.run(job_id) == "skipped"
    other = console_client()
    with unit_of_work() as session:
        log_in(other, session, session.merge(far))
    assert other.get(f"/console/exports/{job_id}").status_code == 404
    assert other.get(f"/console/exports/{job_id}/file").status_code == 404
    assert loan_id


@pytest.mark.browser
def test_the_loan_list_exports_in_the_background_and_the_file_has_its_rows(committed, task_runner):
    from playwright.sync_api import expect

    require_chromium()
    with unit_of_work() as session:
        s = seed(session)
        username = s.w.manager.username
    with live_server() as base_url, chromium_page() as page:
        host = urlparse(base_url).netloc
        foreign: list[str] = []
        page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).netloc not in (host, "") else None)
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/console/")
        page.goto(f"{base_url}/console/lending/loans?status=active")
        listed = page.locator("table.grid tbody tr a[href^='/console/lending/loans/']").count()
        page.click("text=导出 Excel")
        page.wait_for_url(f"{base_url}/console/exports/*")
        expect(page.locator("#export-progress")).to_contain_text("排队中")
        task_runner.drain()
        link = page.locator("a[data-download]")
        expect(link).to_be_visible(timeout=10_000)  # the progress fragment polls itself until the job is done
        expect(page.locator(".export-percent")).to_have_text("100%")
        os.makedirs(SHOTS, exist_ok=True)
        for name, (width, height) in {"desktop": (1366, 900), "phone": (390, 844)}.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{SHOTS}/export-job-{name}.png", full_page=True)
        with page.expect_download() as info:
            link.click()
        data = open(info.value.path(), "rb").read()
    assert len(_sheet_rows(data)) - 1 == listed == 1
    assert foreign == []


@pytest.mark.browser
def test_the_customer_list_exports_in_the_background_and_the_file_has_its_rows(committed, task_runner):
    """A salesperson exports their customer list (own scope) from the list page: the job page shows the progress,
    the download opens with openpyxl and has the list's rows; the list pages with the button are photographed."""
    from playwright.sync_api import expect

    require_chromium()
    with unit_of_work() as session:
        s = seed(session)  # sales owns 李四, 王五, 赵六 and 周九; others own 钱七 and 孙八
        username = s.w.sales.username
    with live_server() as base_url, chromium_page() as page:
        host = urlparse(base_url).netloc
        foreign: list[str] = []
        page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).netloc not in (host, "") else None)
        page.goto(f"{base_url}/console/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/console/")
        page.goto(f"{base_url}/console/customers?stage=")
        listed = page.locator("table.grid tbody tr a[href^='/console/customers/']").count()
        os.makedirs(SHOTS, exist_ok=True)
        for name, (width, height) in {"desktop": (1366, 900), "phone": (390, 844)}.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{SHOTS}/export-customers-list-{name}.png", full_page=False)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        page.set_viewport_size({"width": 1366, "height": 900})
        page.click(".page-head .export-form button")
        page.wait_for_url(f"{base_url}/console/exports/*")
        expect(page.locator("#export-progress")).to_contain_text("排队中")
        task_runner.drain()
        link = page.locator("a[data-download]")
        expect(link).to_be_visible(timeout=10_000)
        expect(page.locator(".export-percent")).to_have_text("100%")
        expect(page.locator("#export-progress")).to_contain_text(f"已写入 {listed} / {listed} 行")
        with page.expect_download() as info:
            link.click()
        data = open(info.value.path(), "rb").read()
    rows = _sheet_rows(data)
    assert rows[0][:2] == ("客户编号", "姓名")
    assert len(rows) - 1 == listed == 4
    assert sorted(r[1] for r in rows[1:]) == sorted(["李四", "王五", "赵六", "周九"])
    assert foreign == []
