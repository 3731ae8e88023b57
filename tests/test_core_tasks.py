"""Outbox and task runners: sent after commit, dropped on rollback, same tasks in-process and on Celery."""

import time
import uuid

import pytest
from sqlalchemy import select

from core import audit, outbox, tasks
from core.audit import AuditLog
from core.db import unit_of_work
from tests.celery_worker import running_worker
from tests.conftest import redis_only


def test_tasks_go_out_only_after_commit(session, task_runner):
    outbox.enqueue(session, "core.ping", "m1")
    assert task_runner.sent == []
    session.commit()
    assert task_runner.sent == [("core.ping", ("m1",), {})]


def test_tasks_are_dropped_on_rollback(session, task_runner):
    outbox.enqueue(session, "core.ping", "m2")
    session.rollback()
    session.commit()
    assert task_runner.sent == []


def test_failed_unit_of_work_sends_nothing(session, task_runner):
    with pytest.raises(ZeroDivisionError), unit_of_work() as s:
        outbox.enqueue(s, "core.ping", "m3")
        1 / 0  # noqa: B018
    assert task_runner.sent == []


def test_drained_task_runs_its_body(session, task_runner):
    with unit_of_work() as s:
        outbox.enqueue(s, "core.ping", "m4")
    assert task_runner.drain() == ["core.ping"]
    assert session.scalar(select(AuditLog.detail).where(AuditLog.action == "task.ping")) == "m4"


def _wait_for_ping(factory, marker, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as s:
            if s.scalar(select(AuditLog.id).where(AuditLog.action == "task.ping", AuditLog.detail == marker)):
                return True
        time.sleep(0.05)
    return False


def test_inprocess_runner_runs_tasks_off_the_calling_thread(committed):
    runner = tasks.InProcessRunner(workers=2, periodic_jobs=False)
    runner.start()
    tasks.set_runner(runner)
    try:
        marker = uuid.uuid4().hex
        with unit_of_work() as s:
            outbox.enqueue(s, "core.ping", marker)
        assert _wait_for_ping(committed, marker)
    finally:
        runner.stop()


def test_inprocess_runner_retries_a_failing_task(committed, monkeypatch):
    calls = []

    def flaky(marker):
        calls.append(marker)
        if len(calls) < 2:
            raise RuntimeError("transient")
        with unit_of_work() as s:
            audit.record(s, "task.ping", detail=marker)

    monkeypatch.setattr(tasks.celery_app.tasks["core.ping"], "run", flaky)
    monkeypatch.setattr("core.tasks.InProcessRunner.backoff", lambda self, attempt: 0.05, raising=False)
    runner = tasks.InProcessRunner(workers=1, periodic_jobs=False)
    runner.start()
    tasks.set_runner(runner)
    try:
        marker = uuid.uuid4().hex
        tasks.dispatch("core.ping", (marker,))
        assert _wait_for_ping(committed, marker)
        assert len(calls) == 2
    finally:
        runner.stop()


@redis_only
@pytest.mark.worker
def test_real_celery_worker_runs_a_committed_task(committed, tmp_path):
    """PostgreSQL + Redis: the task goes through the broker to a real `scrm worker` process."""
    tasks.set_runner(None)
    with running_worker(tmp_path) as worker:
        marker = uuid.uuid4().hex
        with unit_of_work() as s:
            outbox.enqueue(s, "core.ping", marker)
        # The after-commit send, or failing it the relay (30 s later): both reach the worker.
        assert _wait_for_ping(committed, marker, timeout=120), "the worker did not run the task:\n" + worker.output()


def test_a_released_savepoint_does_not_send_the_outer_transactions_tasks(session, task_runner):
    with session.begin_nested():
        outbox.enqueue(session, "core.ping", "m5")
    assert task_runner.sent == []
    session.commit()
    assert task_runner.sent == [("core.ping", ("m5",), {})]


def test_tasks_of_a_rolled_back_transaction_with_savepoints_are_dropped(session, task_runner):
    with session.begin_nested():
        outbox.enqueue(session, "core.ping", "m6")
    session.rollback()
    session.commit()
    assert task_runner.sent == []


def test_a_killed_workers_task_comes_back_after_the_configured_visibility_timeout(monkeypatch):
    """Redis redelivers a task whose worker died unacknowledged after this timeout (Celery's default: an hour)."""
    from core.settings import reset_settings_cache

    monkeypatch.setenv("SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS", "120")
    reset_settings_cache()
    try:
        assert tasks.configure_celery().conf.broker_transport_options["visibility_timeout"] == 120
    finally:
        monkeypatch.delenv("SCRM_TASK_VISIBILITY_TIMEOUT_SECONDS")
        reset_settings_cache()
        tasks.configure_celery()
    assert tasks.celery_app.conf.broker_transport_options["visibility_timeout"] == 3600
