"""Import jobs whose run died: the heartbeat, the interrupted state (shown failed, written down by
the periodic sweep) and the re-run of the same file."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from core.settings import reset_settings_cache
from crm.importer import jobs, service, writer
from crm.importer.jobs import ImportNotRerunnable
from crm.models import Customer, ImportJob
from crm.scope import Viewer
from tests.factories import make_org, make_staff
from tests.import_support import csv_file


@pytest.fixture(autouse=True)
def import_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRM_IMPORT_DIR", str(tmp_path / "imports"))
    reset_settings_cache()
    yield tmp_path / "imports"
    monkeypatch.delenv("SCRM_IMPORT_DIR")
    reset_settings_cache()


@pytest.fixture
def manager(session):
    org = make_org(session)
    return make_staff(session, role="manager", department=org["company"])


def _viewer(session, staff) -> Viewer:
    return Viewer.of(staff)


def _rows(n: int) -> list[list[str]]:
    return [[f"客户{i}", f"1370000{i:04d}"] for i in range(n)]


def _crash_in_second_batch(monkeypatch) -> None:
    """The process dies while writing the second batch (nothing after it runs, not even the
    failure handling): the job is left running, its first batch committed."""
    real = writer.insert_new
    calls = []

    def dying(session_, rows, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for SIGKILL: no `except Exception` sees it
        return real(session_, rows, **kw)

    monkeypatch.setattr(writer, "insert_new", dying)


def _crashed_job(session, tmp_path, monkeypatch, manager) -> ImportJob:
    path = csv_file(tmp_path / "a.csv", _rows(6))
    real = writer.insert_new
    _crash_in_second_batch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        service.import_file(path, batch_size=3, created_by=manager.id)
    monkeypatch.setattr(writer, "insert_new", real)  # the process that comes next is a healthy one
    return session.scalar(select(ImportJob))


def test_a_crashed_run_leaves_its_job_running_with_its_first_batch(session, tmp_path, monkeypatch, manager):
    job = _crashed_job(session, tmp_path, monkeypatch, manager)
    assert (job.status, job.created) == ("running", 3)
    assert session.scalar(select(func.count()).select_from(Customer)) == 3


def test_a_running_job_whose_heartbeat_stopped_shows_as_failed_interrupted(session, tmp_path, monkeypatch, manager):
    job = _crashed_job(session, tmp_path, monkeypatch, manager)
    assert jobs.shown_status(job) == "running"
    later = clock.now() + timedelta(minutes=16)
    assert jobs.shown_status(job, later) == "failed" and "导入中断" in jobs.shown_message(job, later)


def test_the_sweep_writes_down_only_the_interrupted_jobs(session, tmp_path, monkeypatch, manager):
    job = _crashed_job(session, tmp_path, monkeypatch, manager)
    fresh = service.create_job(session, filename="b.csv", file_path=csv_file(tmp_path / "b.csv", _rows(1)))
    fresh.status = "running"
    session.flush()
    clock.freeze(clock.now() + timedelta(minutes=16))
    fresh.updated_at = clock.now()  # its heartbeat is recent
    session.flush()
    assert jobs.mark_interrupted(session) == [job.id]
    session.refresh(job)
    session.refresh(fresh)
    assert (job.status, fresh.status) == ("failed", "running")
    assert "导入中断" in job.message and job.finished_at is not None
    assert jobs.mark_interrupted(session) == []


def test_the_sweep_is_a_periodic_task():
    from core import tasks

    assert tasks.is_registered(jobs.EXPIRE_TASK) and jobs.EXPIRE_TASK in tasks.PERIODIC


def test_an_interrupted_job_is_rerun_and_creates_only_what_was_missing(session, tmp_path, monkeypatch, manager,
                                                                       task_runner):
    job = _crashed_job(session, tmp_path, monkeypatch, manager)
    clock.freeze(clock.now() + timedelta(minutes=16))
    assert jobs.can_rerun(job)
    new = jobs.rerun(session, _viewer(session, manager), job.id)
    session.commit()
    assert new.id != job.id and (new.status, new.sha256, new.file_path) == ("queued", job.sha256, job.file_path)
    assert session.get(ImportJob, job.id).status == "failed"
    assert task_runner.drain() == [service.TASK]
    session.refresh(new)
    assert (new.status, new.created, new.duplicates_existing) == ("done", 3, 3)
    assert session.scalar(select(func.count()).select_from(Customer)) == 6


def test_a_stalled_run_declared_interrupted_stops_without_writing_its_batch(session, tmp_path, monkeypatch,
                                                                           manager):
    from core.db import unit_of_work

    real = service._Run._write
    calls = []

    def stalls_then_resumes(self, pending):
        calls.append(1)
        if len(calls) == 2:  # the run stalled long enough for the sweep to declare it interrupted
            clock.freeze(clock.now() + timedelta(minutes=16))
            with unit_of_work() as other:
                assert jobs.mark_interrupted(other) == [self.job.id]
        return real(self, pending)

    monkeypatch.setattr(service._Run, "_write", stalls_then_resumes)
    result = service.import_file(csv_file(tmp_path / "a.csv", _rows(6)), batch_size=3, created_by=manager.id)
    assert (result.status, result.counts["created"]) == ("failed", 3)
    assert "导入中断：处理进程已停止" in result.message
    assert session.scalar(select(func.count()).select_from(Customer)) == 3


def test_a_done_job_is_not_rerun(session, tmp_path, manager):
    result = service.import_file(csv_file(tmp_path / "a.csv", _rows(1)), created_by=manager.id)
    with pytest.raises(ImportNotRerunnable, match="只有失败或中断"):
        jobs.rerun(session, _viewer(session, manager), result.job_id)


def test_a_failed_upload_whose_file_was_deleted_asks_for_the_file_again(session, tmp_path, manager, import_dir):
    uploads_dir = import_dir / "uploads"
    uploads_dir.mkdir(parents=True)
    path = csv_file(uploads_dir / "x.csv", [], header=["无关列"])
    job = service.create_job(session, filename="x.csv", file_path=path, created_by=manager.id)
    session.flush()
    service.run_job(job.id)
    session.refresh(job)
    assert job.status == "failed" and not path.exists()
    assert not jobs.can_rerun(job)
    with pytest.raises(ImportNotRerunnable, match="重新上传"):
        jobs.rerun(session, _viewer(session, manager), job.id)


def test_the_upload_of_an_interrupted_job_is_kept_for_a_day_then_deleted(session, tmp_path, monkeypatch, manager,
                                                                         import_dir):
    uploads_dir = import_dir / "uploads"
    uploads_dir.mkdir(parents=True)
    path = csv_file(uploads_dir / "u.csv", _rows(6))
    job = service.create_job(session, filename="u.csv", file_path=path, created_by=manager.id)
    session.flush()
    real = writer.insert_new
    _crash_in_second_batch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        service.run_job(job.id, batch_size=3)
    monkeypatch.setattr(writer, "insert_new", real)
    assert path.exists()  # the run was cut short: its file stays for a re-run
    clock.freeze(clock.now() + timedelta(minutes=16))
    assert jobs.mark_interrupted(session) == [job.id] and jobs.discard_old_uploads(session) == 0
    clock.advance(timedelta(days=1, minutes=1))
    assert jobs.discard_old_uploads(session) == 1 and not path.exists()


def test_database_gone_mid_run_fails_the_job_keeps_the_upload_and_a_rerun_completes_it(session, tmp_path, monkeypatch,
                                                                                     manager, task_runner):
    """PostgreSQL restarted under the worker's run: the first batch stays, the job is failed with a clear message
    as soon as the database answers (no 15-minute wait for a stale heartbeat), the upload is kept, and the re-run
    creates only what was missing: every row once."""
    from sqlalchemy.exc import OperationalError

    from crm.importer import uploads

    path = csv_file(tmp_path / "a.csv", _rows(6))
    with path.open("rb") as fh:
        job = uploads.start(session, _viewer(session, manager), fh, "a.csv")
    session.commit()
    task_runner.sent.clear()  # the worker's task is this test's run_job call
    real = writer.insert_new
    calls = []

    def database_restarts(session_, rows, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("INSERT", {}, Exception("terminating connection due to administrator command"))
        return real(session_, rows, **kw)

    monkeypatch.setattr(writer, "insert_new", database_restarts)
    service.run_job(job.id, batch_size=3)
    monkeypatch.setattr(writer, "insert_new", real)
    session.expire_all()
    failed = session.get(ImportJob, job.id)
    assert failed.status == "failed" and failed.message == service.DATABASE_DOWN_MESSAGE
    assert "数据库暂时不可用" in failed.message and failed.created == 3
    assert jobs.can_rerun(failed)  # the upload is still there, at once
    new = jobs.rerun(session, _viewer(session, manager), job.id)
    session.commit()
    assert task_runner.drain() == [service.TASK]
    session.refresh(new)
    assert (new.status, new.created, new.duplicates_existing) == ("done", 3, 3)
    assert session.scalar(select(func.count()).select_from(Customer)) == 6
    assert session.scalar(select(func.count(func.distinct(Customer.phone_index)))) == 6


def _sweep() -> dict[str, int]:
    from crm import import_tasks

    return import_tasks.expire_import_jobs()


def test_the_sweep_resumes_a_job_whose_process_died_and_it_finishes_every_row_once(session, tmp_path, monkeypatch,
                                                                                    manager, task_runner):
    """A worker SIGKILLed mid-import: once its heartbeat is stale the sweep declares the job interrupted and
    re-runs it by itself (no one has to click 重新导入); the re-run creates only what was missing."""
    job = _crashed_job(session, tmp_path, monkeypatch, manager)
    session.commit()
    assert _sweep()["resumed"] == 0  # heartbeat still fresh: the run may be alive
    clock.freeze(clock.now() + timedelta(minutes=16))
    assert _sweep() == {"interrupted": 1, "resumed": 1, "uploads_deleted": 0}
    assert task_runner.drain() == [service.TASK]
    session.expire_all()
    old, new = session.scalars(select(ImportJob).order_by(ImportJob.id)).all()
    assert old.id == job.id and old.status == "failed" and f"已自动重新导入（任务 #{new.id}）" in old.message
    assert (new.status, new.created, new.duplicates_existing, new.created_by) == ("done", 3, 3, manager.id)
    assert session.scalar(select(func.count(func.distinct(Customer.phone_index)))) == 6
    assert _sweep()["resumed"] == 0  # re-run once: never again


def test_a_job_the_database_outage_interrupted_resumes_by_itself(session, tmp_path, manager, task_runner):
    path = csv_file(tmp_path / "a.csv", _rows(2))
    job = service.create_job(session, filename="a.csv", file_path=path, created_by=manager.id)
    job.status, job.message, job.finished_at = "failed", service.DATABASE_DOWN_MESSAGE, clock.now()
    session.commit()
    assert _sweep()["resumed"] == 1
    assert task_runner.drain() == [service.TASK]
    assert session.scalar(select(func.count()).select_from(Customer)) == 2


def test_a_job_that_failed_on_its_file_or_our_error_is_left_to_a_person(session, tmp_path, manager, task_runner):
    for n, message in enumerate(["表头缺少手机号码列", "导入中断：KeyError。已完成的批次已保存，修正后可重新导入同一文件"]):
        job = service.create_job(session, filename=f"{n}.csv", file_path=csv_file(tmp_path / f"{n}.csv", _rows(1)),
                                 created_by=manager.id)
        job.status, job.message, job.finished_at = "failed", message, clock.now()
    session.commit()
    assert _sweep()["resumed"] == 0 and task_runner.drain() == []


def test_a_file_whose_runs_keep_dying_is_resumed_twice_then_left(session, tmp_path, manager, task_runner):
    path = csv_file(tmp_path / "a.csv", _rows(1))
    job = service.create_job(session, filename="a.csv", file_path=path, created_by=manager.id)
    job.status, job.message, job.finished_at = "failed", service.DATABASE_DOWN_MESSAGE, clock.now()
    session.commit()
    for expected in (1, 1, 0):
        assert _sweep()["resumed"] == expected
        task_runner.sent.clear()  # each re-run dies too
        latest = session.scalars(select(ImportJob).order_by(ImportJob.id.desc())).first()
        latest.status, latest.message, latest.finished_at = "failed", service.DATABASE_DOWN_MESSAGE, clock.now()
        session.commit()
    assert session.scalar(select(func.count()).select_from(ImportJob)) == 3


def test_a_changed_or_deleted_file_is_not_resumed(session, tmp_path, manager, task_runner):
    path = csv_file(tmp_path / "a.csv", _rows(1))
    job = service.create_job(session, filename="a.csv", file_path=path, created_by=manager.id)
    job.status, job.message, job.finished_at = "failed", service.DATABASE_DOWN_MESSAGE, clock.now()
    session.commit()
    path.write_text("手机号码\n13900000000\n", encoding="utf-8")  # not the file that was uploaded
    assert _sweep()["resumed"] == 0
    path.unlink()
    assert _sweep()["resumed"] == 0 and task_runner.drain() == []
